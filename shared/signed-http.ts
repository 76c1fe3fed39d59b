import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { request } from 'undici';
import { UnauthorizedError } from './errors.ts';
import type { NonceStore } from './limits.ts';
import { bodySha256, NONCE_HEADER, NonceCache, type SignatureFailure, signRequest, verifySignedHeaders, verifySignedRequest } from './signed-request.ts';

const EMPTY_BODY_SHA256 = bodySha256('');

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
    /** Set by requireSignature before the body is read: the hash the body must have. */
    signedBodySha256?: string;
  }
}

const signatureRefused = (failure: SignatureFailure) => new UnauthorizedError(`signed request refused: ${failure}`, `SIGNATURE_${failure}`);

/**
 * Makes the JSON parser keep the raw body text (call once per fastify instance), and check a
 * signed request's body against the hash its verified headers declared before parsing it.
 */
export function keepRawJsonBody(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer;
    const request = req as FastifyRequest;
    if (request.signedBodySha256 !== undefined && bodySha256(bytes) !== request.signedBodySha256) return done(signatureRefused('BAD_SIGNATURE'), undefined);
    const text = bytes.toString('utf8');
    request.rawBody = text;
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

/** True when the request announces a body (its bytes may not have been read yet). */
const announcesBody = (req: FastifyRequest): boolean =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/**
 * A hook that refuses requests not signed with the cluster secret (401, reason in the code).
 * As an `onRequest` hook (the routes of geo-sfu) it verifies the signature from the headers,
 * before a byte of the body is read, and leaves the body's hash for keepRawJsonBody's parser to
 * check: an unsigned request is refused whatever its body and however large, and its connection
 * closed rather than drained. At a later stage (a test's or a webhook receiver's preHandler) it
 * verifies over the body already read. With `sharedNonces` (router replicas sharing Redis), a
 * nonce is also refused when another server of the store saw it: a captured request is accepted
 * once by the whole deployment, not once per replica. This process's own cache is checked first.
 */
export function requireSignature(secret: string, windowMs: number, now: () => number = Date.now, sharedNonces?: NonceStore) {
  const nonces = new NonceCache(windowMs);
  const refuseShared = async (req: FastifyRequest): Promise<SignatureFailure | null> =>
    sharedNonces && !(await sharedNonces.remember(req.headers[NONCE_HEADER] as string, windowMs)) ? 'REPLAYED' : null;
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (req.rawBody !== undefined) {
      const failure = verifySignedRequest(secret, { method: req.method, path: req.url, body: req.rawBody }, req.headers, now(), windowMs, nonces) ?? (await refuseShared(req));
      if (failure) throw signatureRefused(failure);
      return;
    }
    const unread = announcesBody(req);
    const { failure, bodyHash } = verifySignedHeaders(secret, { method: req.method, path: req.url }, req.headers, now(), windowMs, nonces);
    const refusal = failure ?? (!unread && bodyHash !== EMPTY_BODY_SHA256 ? 'BAD_SIGNATURE' : null) ?? (await refuseShared(req));
    if (refusal) {
      if (unread) void reply.header('connection', 'close');
      throw signatureRefused(refusal);
    }
    if (unread) req.signedBodySha256 = bodyHash;
  };
}
