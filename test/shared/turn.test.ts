import { describe, expect, it } from 'vitest';
import { turnCredentials, turnPassword } from '../../shared/turn.ts';

const SECRET = 'geo-sfu-turn-test-secret';
// 1700000000 s + 600 s ttl → expiry 1700000600.
const NOW_MS = 1_700_000_000_123;

describe('TURN REST credentials (coturn use-auth-secret)', () => {
  it('matches a vector computed by hand with openssl', () => {
    // printf '%s' '1700000600:alice' | openssl dgst -sha1 -hmac 'geo-sfu-turn-test-secret' -binary | base64
    //   → MnRf7Fez5glyd9nfUQlPOQzpPZY=
    expect(turnCredentials({ secret: SECRET, ttlSeconds: 600, participantId: 'alice', nowMs: NOW_MS, urls: 'turn:turn.example.com:3478' })).toEqual({
      urls: ['turn:turn.example.com:3478'],
      username: '1700000600:alice',
      credential: 'MnRf7Fez5glyd9nfUQlPOQzpPZY=',
    });
  });

  it('keeps a participant id containing ":" after the expiry (coturn reads the expiry up to the first ":")', () => {
    // printf '%s' '1700000600:room:42/bob' | openssl dgst -sha1 -hmac 'geo-sfu-turn-test-secret' -binary | base64
    //   → Iw4+VpHD87fsNBk+sKt632cTKTs=
    const ice = turnCredentials({ secret: SECRET, ttlSeconds: 600, participantId: 'room:42/bob', nowMs: NOW_MS, urls: ['turn:a:3478', 'turns:a:5349?transport=tcp'] });
    expect(ice.username).toBe('1700000600:room:42/bob');
    expect(ice.credential).toBe('Iw4+VpHD87fsNBk+sKt632cTKTs=');
    expect(ice.urls).toEqual(['turn:a:3478', 'turns:a:5349?transport=tcp']);
  });

  it('is the HMAC of the username only: another secret, time or participant gives another credential', () => {
    const base = { secret: SECRET, ttlSeconds: 600, participantId: 'alice', nowMs: NOW_MS, urls: 'turn:x' };
    const a = turnCredentials(base);
    expect(turnPassword(SECRET, a.username)).toBe(a.credential);
    expect(turnCredentials({ ...base, secret: `${SECRET}-2` }).credential).not.toBe(a.credential);
    expect(turnCredentials({ ...base, participantId: 'bob' }).credential).not.toBe(a.credential);
    expect(turnCredentials({ ...base, nowMs: NOW_MS + 1000 }).username).toBe('1700000601:alice');
    // Sub-second changes of the clock do not change the credential (the expiry is in whole seconds).
    expect(turnCredentials({ ...base, nowMs: NOW_MS + 500 })).toEqual(a);
  });

  it('refuses unusable input instead of minting credentials coturn would reject', () => {
    const base = { secret: SECRET, ttlSeconds: 600, participantId: 'alice', nowMs: NOW_MS, urls: 'turn:x' };
    expect(() => turnCredentials({ ...base, secret: '' })).toThrow(/secret/);
    expect(() => turnCredentials({ ...base, ttlSeconds: 0 })).toThrow(/ttlSeconds/);
    expect(() => turnCredentials({ ...base, ttlSeconds: 1.5 })).toThrow(/ttlSeconds/);
    expect(() => turnCredentials({ ...base, participantId: '' })).toThrow(/participantId/);
    expect(() => turnCredentials({ ...base, nowMs: Number.NaN })).toThrow(/nowMs/);
    expect(() => turnCredentials({ ...base, urls: [] })).toThrow(/urls/);
    expect(() => turnCredentials({ ...base, urls: 'stun:x:3478' })).toThrow(/urls/);
  });
});
