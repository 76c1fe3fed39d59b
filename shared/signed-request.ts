import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeBase64url } from './base64url.ts';

/**
 * The one way processes of a deployment authenticate to each other (agent→router, router→agent,
 * agent→agent): HMAC-SHA256 with the cluster secret over method, path (with query), timestamp,
 * nonce and the SHA-256 of the body. A request outside the replay window, or whose nonce was
 * already seen within it, is refused. The body's hash also travels as a header, so a server can
 * verify the signature from the headers alone and read no byte of an unsigned body
 * (verifySignedHeaders), then check the body against the hash as it arrives.
 */
export const SIGNATURE_HEADER = 'x-geo-sfu-signature';
export const TIMESTAMP_HEADER = 'x-geo-sfu-timestamp';
export const NONCE_HEADER = 'x-geo-sfu-nonce';
export const CONTENT_SHA256_HEADER = 'x-geo-sfu-content-sha256';

export interface SignInput {
  method: string;
  /** Path with query string, as the server will see it. */
  path: string;
  /** Exact body bytes sent ('' when none). */
  body: string;
}

/** SHA-256 of a body, as lowercase hex (what the signature covers and CONTENT_SHA256_HEADER carries). */
export function bodySha256(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function canonical(method: string, path: string, bodyHash: string, timestamp: string, nonce: string): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`;
}

export function signRequest(secret: string, input: SignInput, nowMs: number): Record<string, string> {
  const timestamp = String(nowMs);
  const nonce = randomBytes(12).toString('base64url');
  const bodyHash = bodySha256(input.body);
  const signature = createHmac('sha256', secret).update(canonical(input.method, input.path, bodyHash, timestamp, nonce)).digest('base64url');
  return { [SIGNATURE_HEADER]: signature, [TIMESTAMP_HEADER]: timestamp, [NONCE_HEADER]: nonce, [CONTENT_SHA256_HEADER]: bodyHash };
}

export type SignatureFailure = 'MISSING' | 'STALE' | 'REPLAYED' | 'BAD_SIGNATURE';

/** Remembers nonces for the replay window; memory is bounded by the request rate × window. */
export class NonceCache {
  readonly #seen = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  /** Returns false if the nonce was already seen within the window; records it otherwise. */
  remember(nonce: string, nowMs: number): boolean {
    // A Map iterates in insertion order, which is the order nonces were first seen: the expired
    // ones are at the front, so the sweep stops at the first one still in the window (it used to
    // walk the whole cache on every call past 1,024 entries: quadratic at a few hundred calls/s).
    for (const [n, at] of this.#seen) {
      if (nowMs - at <= this.windowMs * 2) break;
      this.#seen.delete(n);
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, nowMs);
    return true;
  }

  /** Nonces held (those of the last two windows). */
  get size(): number {
    return this.#seen.size;
  }
}

type Headers = Record<string, string | string[] | undefined>;

function verifySignature(
  secret: string,
  method: string,
  path: string,
  bodyHash: string,
  headers: Headers,
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
  const expected = createHmac('sha256', secret).update(canonical(method, path, bodyHash, timestamp, nonce)).digest();
  const given = decodeBase64url(signature);
  if (!given || given.length !== expected.length || !timingSafeEqual(given, expected)) return 'BAD_SIGNATURE';
  if (!nonces.remember(nonce, nowMs)) return 'REPLAYED';
  return null;
}

/** Verifies a request whose body has been read. */
export function verifySignedRequest(
  secret: string,
  input: SignInput,
  headers: Headers,
  nowMs: number,
  windowMs: number,
  nonces: NonceCache,
): SignatureFailure | null {
  return verifySignature(secret, input.method, input.path, bodySha256(input.body), headers, nowMs, windowMs, nonces);
}

/**
 * Verifies a request from its headers alone, against the body hash it declares: on success the
 * caller must still check that the body it then reads has that hash (`bodySha256`).
 */
export function verifySignedHeaders(
  secret: string,
  request: { method: string; path: string },
  headers: Headers,
  nowMs: number,
  windowMs: number,
  nonces: NonceCache,
): { failure: SignatureFailure; bodyHash?: undefined } | { failure: null; bodyHash: string } {
  const bodyHash = headers[CONTENT_SHA256_HEADER];
  if (typeof bodyHash !== 'string' || !SHA256_HEX.test(bodyHash)) return { failure: 'MISSING' };
  const failure = verifySignature(secret, request.method, request.path, bodyHash, headers, nowMs, windowMs, nonces);
  return failure ? { failure } : { failure: null, bodyHash };
}
