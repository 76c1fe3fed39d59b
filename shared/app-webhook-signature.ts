import { createHmac, timingSafeEqual } from 'node:crypto';
import { decodeBase64url } from './base64url.ts';
import type { TokenKey } from './config/load.ts';
import type { AppEvent } from './app-webhook-events.ts';

/**
 * Application webhooks (router/webhooks/) are signed with the application's keys
 * (GEO_SFU_APP_WEBHOOK_SECRETS, `kid:secret,...`), never with the cluster secret: HMAC-SHA256 over
 * `<timestamp>.<body>`, the key id beside it, so a receiver holding several keys (a rotation) knows
 * which one to check.
 */
export const APP_WEBHOOK_SIGNATURE_HEADER = 'x-geo-sfu-webhook-signature';
export const APP_WEBHOOK_TIMESTAMP_HEADER = 'x-geo-sfu-webhook-timestamp';
/** A delivery older (or newer) than this by the receiver's clock is refused as a replay: 5 minutes. */
export const APP_WEBHOOK_TOLERANCE_MS = 300_000;

function mac(secret: string, timestamp: string, body: string): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest();
}

/** The headers of one delivery of `body` (the exact bytes POSTed), signed with `key` at `nowMs`. */
export function signAppWebhook(key: TokenKey, body: string, nowMs: number): Record<string, string> {
  const timestamp = String(nowMs);
  return { [APP_WEBHOOK_TIMESTAMP_HEADER]: timestamp, [APP_WEBHOOK_SIGNATURE_HEADER]: `kid=${key.kid},v1=${mac(key.secret, timestamp, body).toString('base64url')}` };
}

export type AppWebhookFailure = 'MISSING' | 'UNKNOWN_KEY' | 'STALE' | 'BAD_SIGNATURE' | 'REPLAYED' | 'BAD_BODY';

/** Signatures already accepted within the tolerance, so the same delivery replayed in that window is refused. */
export class AppWebhookReplayGuard {
  readonly #seen = new Map<string, number>();

  constructor(private readonly toleranceMs = APP_WEBHOOK_TOLERANCE_MS) {}

  /** False when this signature was accepted before; records it otherwise. */
  remember(signature: string, nowMs: number): boolean {
    for (const [s, at] of this.#seen) {
      if (nowMs - at <= 2 * this.toleranceMs) break;
      this.#seen.delete(s);
    }
    if (this.#seen.has(signature)) return false;
    this.#seen.set(signature, nowMs);
    return true;
  }
}

export interface VerifyAppWebhookInput {
  /** The request body exactly as received (before any JSON parsing). */
  body: string | Buffer;
  /** The request headers (lower-case names, as node gives them). */
  headers: Record<string, string | string[] | undefined>;
  /** The keys of GEO_SFU_APP_WEBHOOK_SECRETS: as `kid:secret,...` or parsed. */
  keys: string | readonly TokenKey[];
  /** Default: Date.now(). */
  nowMs?: number;
  /** Default: APP_WEBHOOK_TOLERANCE_MS. */
  toleranceMs?: number;
  /** Refuses a delivery replayed within the tolerance (keep one per receiver). */
  replayGuard?: AppWebhookReplayGuard;
}

export type VerifyAppWebhookResult = { ok: true; event: AppEvent } | { ok: false; failure: AppWebhookFailure };

function parseKeys(keys: string | readonly TokenKey[]): readonly TokenKey[] {
  if (typeof keys !== 'string') return keys;
  return keys
    .split(',')
    .map((part) => ({ kid: part.slice(0, part.indexOf(':')).trim(), secret: part.slice(part.indexOf(':') + 1).trim() }))
    .filter((k) => k.kid !== '' && k.secret !== '');
}

/**
 * Checks one application webhook delivery: signed by one of `keys`, dated within the tolerance,
 * not seen before (with a replay guard); then parses the event. Duplicates by event id are still
 * possible (delivery is at least once): drop an `event.id` already handled.
 */
export function verifyAppWebhook(input: VerifyAppWebhookInput): VerifyAppWebhookResult {
  const fail = (failure: AppWebhookFailure): VerifyAppWebhookResult => ({ ok: false, failure });
  const signature = input.headers[APP_WEBHOOK_SIGNATURE_HEADER];
  const timestamp = input.headers[APP_WEBHOOK_TIMESTAMP_HEADER];
  if (typeof signature !== 'string' || typeof timestamp !== 'string' || !/^\d{1,15}$/.test(timestamp)) return fail('MISSING');
  const parts = /^kid=([A-Za-z0-9._-]{1,64}),v1=([A-Za-z0-9_-]{1,128})$/.exec(signature);
  if (!parts) return fail('MISSING');
  const key = parseKeys(input.keys).find((k) => k.kid === parts[1]);
  if (!key) return fail('UNKNOWN_KEY');
  const nowMs = input.nowMs ?? Date.now();
  if (Math.abs(nowMs - Number(timestamp)) > (input.toleranceMs ?? APP_WEBHOOK_TOLERANCE_MS)) return fail('STALE');
  const body = typeof input.body === 'string' ? input.body : input.body.toString('utf8');
  const expected = mac(key.secret, timestamp, body);
  const given = decodeBase64url(parts[2]!);
  if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) return fail('BAD_SIGNATURE');
  if (input.replayGuard && !input.replayGuard.remember(signature, nowMs)) return fail('REPLAYED');
  try {
    const event = JSON.parse(body) as AppEvent;
    if (typeof event !== 'object' || event === null || typeof event.id !== 'string' || typeof event.event !== 'string') return fail('BAD_BODY');
    return { ok: true, event };
  } catch {
    return fail('BAD_BODY');
  }
}
