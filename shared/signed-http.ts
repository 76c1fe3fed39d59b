import type { FastifyInstance, FastifyRequest } from 'fastify';
import { request } from 'undici';
import { UnauthorizedError } from './errors.ts';
import { NonceCache, signRequest, verifySignedRequest } from './signed-request.ts';

/**
 * HTTP glue for the signed-request module: a client that signs JSON calls, and a fastify hook
 * that verifies them. Every router↔agent and agent↔agent call goes through these two.
 */

export interface SignedCallOptions {
  secret: string;
  baseUrl: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  timeoutMs: number;
  nowMs?: number;
}

export interface SignedCallResult<T> {
  statusCode: number;
  body: T;
}

export async function signedCall<T>(opts: SignedCallOptions): Promise<SignedCallResult<T>> {
  const body = opts.body === undefined ? '' : JSON.stringify(opts.body);
  const headers: Record<string, string> = signRequest(opts.secret, { method: opts.method, path: opts.path, body }, opts.nowMs ?? Date.now());
  if (body !== '') headers['content-type'] = 'application/json';
  const res = await request(new URL(opts.path, opts.baseUrl), {
    method: opts.method,
    headers,
    body: body === '' ? undefined : body,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
  });
  const text = await res.body.text();
  const isJson = String(res.headers['content-type'] ?? '').includes('json');
  return { statusCode: res.statusCode, body: (isJson && text !== '' ? JSON.parse(text) : text === '' ? null : text) as T };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Exact JSON body text, kept so signatures can be verified over the bytes sent. */
    rawBody?: string;
  }
}

/** Makes the JSON parser keep the raw body text (call once per fastify instance). */
export function keepRawJsonBody(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    (req as FastifyRequest).rawBody = text;
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('body is not valid JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });
}

/** A preHandler that refuses requests not signed with the cluster secret (401, reason in the code). */
export function requireSignature(secret: string, windowMs: number, now: () => number = Date.now) {
  const nonces = new NonceCache(windowMs);
  return async (req: FastifyRequest): Promise<void> => {
    const failure = verifySignedRequest(
      secret,
      { method: req.method, path: req.url, body: req.rawBody ?? '' },
      req.headers,
      now(),
      windowMs,
      nonces,
    );
    if (failure) throw new UnauthorizedError(`signed request refused: ${failure}`, `SIGNATURE_${failure}`);
  };
}
