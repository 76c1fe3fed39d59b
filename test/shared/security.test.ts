import { describe, expect, it } from 'vitest';
import { NonceCache, signRequest, verifySignedRequest } from '../../shared/signed-request.ts';
import type { TokenError} from '../../shared/tokens.ts';
import { signJoinToken, verifyJoinToken } from '../../shared/tokens.ts';

const k1 = { kid: 'k1', secret: 'a'.repeat(40) };
const k2 = { kid: 'k2', secret: 'b'.repeat(40) };
const claims = { aid: 'x', room: 'r', sub: 'p', region: 'us-west', node: 'n1', iat: 1_000, exp: 2_000 };

describe('join tokens', () => {
  it('verify with any configured key id (rotation) and check bindings and expiry', () => {
    const token = signJoinToken(k1, claims);
    expect(verifyJoinToken([k2, k1], token, 1_500_000, { room: 'r', node: 'n1' })).toEqual(claims);
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as TokenError).reason;
      }
      return 'accepted';
    };
    expect(reason(() => verifyJoinToken([k2], token, 1_500_000))).toBe('UNKNOWN_KEY');
    expect(reason(() => verifyJoinToken([{ kid: 'k1', secret: 'c'.repeat(40) }], token, 1_500_000))).toBe('BAD_SIGNATURE');
    expect(reason(() => verifyJoinToken([k1], token, 2_000_000))).toBe('EXPIRED');
    expect(reason(() => verifyJoinToken([k1], token, 1_500_000, { node: 'n2' }))).toBe('WRONG_BINDING');
    expect(reason(() => verifyJoinToken([k1], 'a.b', 1_500_000))).toBe('MALFORMED');
    const [h, , s] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, room: 'other' })).toString('base64url')}.${s}`;
    expect(reason(() => verifyJoinToken([k1], tampered, 1_500_000))).toBe('BAD_SIGNATURE');
  });
});

describe('signed requests', () => {
  const input = { method: 'POST', path: '/v1/nodes/heartbeat', body: '{"a":1}' };
  it('accept once, refuse replays, stale timestamps, other bodies and other secrets', () => {
    const nonces = new NonceCache(30_000);
    const headers = signRequest('s'.repeat(40), input, 10_000);
    expect(verifySignedRequest('s'.repeat(40), input, headers, 10_500, 30_000, nonces)).toBeNull();
    expect(verifySignedRequest('s'.repeat(40), input, headers, 10_600, 30_000, nonces)).toBe('REPLAYED');
    const fresh = signRequest('s'.repeat(40), input, 10_000);
    expect(verifySignedRequest('s'.repeat(40), input, fresh, 50_000, 30_000, nonces)).toBe('STALE');
    expect(verifySignedRequest('s'.repeat(40), { ...input, body: '{"a":2}' }, fresh, 10_000, 30_000, nonces)).toBe('BAD_SIGNATURE');
    expect(verifySignedRequest('t'.repeat(40), input, fresh, 10_000, 30_000, nonces)).toBe('BAD_SIGNATURE');
    expect(verifySignedRequest('s'.repeat(40), input, {}, 10_000, 30_000, nonces)).toBe('MISSING');
  });

  it('the nonce cache holds two windows of nonces: replays within them refused, older ones swept as calls come', () => {
    const windowMs = 1_000;
    const nonces = new NonceCache(windowMs);
    // 50,000 calls, one a millisecond, each nonce replayed half a window later.
    for (let t = 0; t < 50_000; t++) {
      expect(nonces.remember(`n${t}`, t)).toBe(true);
      if (t >= windowMs / 2) expect(nonces.remember(`n${t - windowMs / 2}`, t)).toBe(false);
      expect(nonces.size).toBeLessThanOrEqual(2 * windowMs + 1);
    }
    // A clock that steps back a little does not make the sweep drop nonces still in the window.
    expect(nonces.remember('late', 49_990)).toBe(true);
    expect(nonces.remember('n49999', 50_001)).toBe(false);
    expect(nonces.remember('late', 50_002)).toBe(false);
  });
});
