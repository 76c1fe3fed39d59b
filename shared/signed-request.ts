import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeBase64url } from './base64url.ts';

/**
 * The one way processes of a deployment authenticate to each other (agent→router, router→agent,
 * agent→agent): HMAC-SHA256 with the cluster secret over method, path (with query), timestamp,
 * nonce and a hash of the body. A request outside the replay window, or whose nonce was already
 * seen within it, is refused.
 */
export const SIGNATURE_HEADER = 'x-geo-sfu-signature';
export const TIMESTAMP_HEADER = 'x-geo-sfu-timestamp';
export const NONCE_HEADER = 'x-geo-sfu-nonce';

export interface SignInput {
  method: string;
  /** Path with query string, as the server will see it. */
  path: string;
  /** Exact body bytes sent ('' when none). */
  body: string;
}

function canonical(input: SignInput, timestamp: string, nonce: string): string {
  const bodyHash = createHash('sha256').update(input.body).digest('hex');
  return `${input.method.toUpperCase()}\n${input.path}\n${timestamp}\n${nonce}\n${bodyHash}`;
}

export function signRequest(secret: string, input: SignInput, nowMs: number): Record<string, string> {
  const timestamp = String(nowMs);
  const nonce = randomBytes(12).toString('base64url');
  const signature = createHmac('sha256', secret).update(canonical(input, timestamp, nonce)).digest('base64url');
  return { [SIGNATURE_HEADER]: signature, [TIMESTAMP_HEADER]: timestamp, [NONCE_HEADER]: nonce };
}

export type SignatureFailure = 'MISSING' | 'STALE' | 'REPLAYED' | 'BAD_SIGNATURE';

/** Remembers nonces for the replay window; memory is bounded by the request rate × window. */
export class NonceCache {
  readonly #seen = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  /** Returns false if the nonce was already seen within the window; records it otherwise. */
  remember(nonce: string, nowMs: number): boolean {
    if (this.#seen.size > 1024) {
      for (const [n, at] of this.#seen) if (nowMs - at > this.windowMs * 2) this.#seen.delete(n);
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, nowMs);
    return true;
  }
}

export function verifySignedRequest(
  secret: string,
  input: SignInput,
  headers: Record<string, string | string[] | undefined>,
  nowMs: number,
  windowMs: number,
  nonces: NonceCache,
): SignatureFailure | null {
  const signature = headers[SIGNATURE_HEADER];
  const timestamp = headers[TIMESTAMP_HEADER];
  const nonce = headers[NONCE_HEADER];
  if (typeof signature !== 'string' || typeof timestamp !== 'string' || typeof nonce !== 'string') return 'MISSING';
  const ts = Number(timestamp);
  if (!Number.isFinite(ts) || Math.abs(nowMs - ts) > windowMs) return 'STALE';
  const expected = createHmac('sha256', secret).update(canonical(input, timestamp, nonce)).digest();
  const given = decodeBase64url(signature);
  if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) return 'BAD_SIGNATURE';
  if (!nonces.remember(nonce, nowMs)) return 'REPLAYED';
  return null;
}
