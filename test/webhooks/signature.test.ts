import { describe, expect, it } from 'vitest';
import { AppWebhookReplayGuard, APP_WEBHOOK_SIGNATURE_HEADER, APP_WEBHOOK_TIMESTAMP_HEADER, APP_WEBHOOK_TOLERANCE_MS, verifyAppWebhook } from '../../sdk/server.ts';
import { signAppWebhook } from '../../shared/app-webhook-signature.ts';

/** The server SDK's verifier against deliveries signed as the router signs them. */
const OLD = { kid: 'app-1', secret: 'o'.repeat(40) };
const NEW = { kid: 'app-2', secret: 'n'.repeat(40) };
const KEYS = `${NEW.kid}:${NEW.secret},${OLD.kid}:${OLD.secret}`;
const NOW = 1_800_000_000_000;
const BODY = JSON.stringify({ id: 'e-1', event: 'participant_joined', seq: 3, roomId: 'r', participantId: 'alice', region: 'eu-west', nodeId: 'eu-west-1', occurredAtMs: NOW, queuedAtMs: NOW });

describe('verifyAppWebhook (server SDK)', () => {
  it('accepts a delivery signed with any of the keys (rotation) and returns its event', () => {
    for (const key of [NEW, OLD]) {
      const result = verifyAppWebhook({ body: BODY, headers: signAppWebhook(key, BODY, NOW), keys: KEYS, nowMs: NOW + 1_000 });
      expect(result).toEqual({ ok: true, event: JSON.parse(BODY) });
    }
    // Parsed keys and a Buffer body work the same.
    expect(verifyAppWebhook({ body: Buffer.from(BODY), headers: signAppWebhook(NEW, BODY, NOW), keys: [NEW], nowMs: NOW }).ok).toBe(true);
  });

  it('refuses an altered delivery: body, timestamp, signature or key id changed', () => {
    const headers = signAppWebhook(NEW, BODY, NOW);
    const check = (body: string, h: Record<string, string>) => verifyAppWebhook({ body, headers: h, keys: KEYS, nowMs: NOW });
    expect(check(BODY.replace('alice', 'mallory'), headers)).toEqual({ ok: false, failure: 'BAD_SIGNATURE' });
    expect(check(BODY, { ...headers, [APP_WEBHOOK_TIMESTAMP_HEADER]: String(NOW + 1) })).toEqual({ ok: false, failure: 'BAD_SIGNATURE' });
    const signature = headers[APP_WEBHOOK_SIGNATURE_HEADER]!;
    const flipped = signature.slice(0, -2) + (signature.endsWith('A') ? 'Bw' : 'Aw');
    expect(check(BODY, { ...headers, [APP_WEBHOOK_SIGNATURE_HEADER]: flipped }).ok).toBe(false);
    // Signed with the old key but claiming the new key's id.
    const oldSig = signAppWebhook(OLD, BODY, NOW)[APP_WEBHOOK_SIGNATURE_HEADER]!.replace('kid=app-1', 'kid=app-2');
    expect(check(BODY, { ...headers, [APP_WEBHOOK_SIGNATURE_HEADER]: oldSig })).toEqual({ ok: false, failure: 'BAD_SIGNATURE' });
    expect(check(BODY, { ...headers, [APP_WEBHOOK_SIGNATURE_HEADER]: signature.replace('kid=app-2', 'kid=gone') })).toEqual({ ok: false, failure: 'UNKNOWN_KEY' });
    expect(check(BODY, {})).toEqual({ ok: false, failure: 'MISSING' });
    expect(check(BODY, { ...headers, [APP_WEBHOOK_SIGNATURE_HEADER]: 'v1=abc' })).toEqual({ ok: false, failure: 'MISSING' });
  });

  it('refuses a replayed delivery: seen before (replay guard), or outside the tolerance', () => {
    const headers = signAppWebhook(NEW, BODY, NOW);
    const guard = new AppWebhookReplayGuard();
    expect(verifyAppWebhook({ body: BODY, headers, keys: KEYS, nowMs: NOW, replayGuard: guard }).ok).toBe(true);
    expect(verifyAppWebhook({ body: BODY, headers, keys: KEYS, nowMs: NOW + 10, replayGuard: guard })).toEqual({ ok: false, failure: 'REPLAYED' });
    // A retry of the same event is a new delivery (new timestamp, new signature): accepted; the event id is the application's to de-duplicate.
    expect(verifyAppWebhook({ body: BODY, headers: signAppWebhook(NEW, BODY, NOW + 5_000), keys: KEYS, nowMs: NOW + 5_000, replayGuard: guard }).ok).toBe(true);
    // Replayed later, without a guard: too old.
    expect(verifyAppWebhook({ body: BODY, headers, keys: KEYS, nowMs: NOW + APP_WEBHOOK_TOLERANCE_MS + 1 })).toEqual({ ok: false, failure: 'STALE' });
    expect(verifyAppWebhook({ body: BODY, headers, keys: KEYS, nowMs: NOW - APP_WEBHOOK_TOLERANCE_MS - 1 })).toEqual({ ok: false, failure: 'STALE' });
  });

  it('a valid signature over a body that is not an event is refused, not thrown', () => {
    for (const body of ['not json', 'null', '[]', '{"__proto__":{}}']) {
      expect(verifyAppWebhook({ body, headers: signAppWebhook(NEW, body, NOW), keys: KEYS, nowMs: NOW })).toEqual({ ok: false, failure: 'BAD_BODY' });
    }
  });
});
