import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TokenKey } from './config/load.ts';

/**
 * Join tokens: compact JWS (HS256) with a key id, short-lived and bound to one room, participant,
 * region and node, so a token cannot be replayed against another room or SFU. Verification accepts
 * every configured key id, which is what makes key rotation possible without downtime.
 */
export interface JoinClaims {
  /** Allocation id (also the session-log row id). */
  aid: string;
  room: string;
  sub: string;
  region: string;
  node: string;
  /** Seconds since epoch. */
  iat: number;
  exp: number;
}

export type TokenFailure = 'MALFORMED' | 'UNKNOWN_KEY' | 'BAD_SIGNATURE' | 'EXPIRED' | 'WRONG_BINDING';

export class TokenError extends Error {
  constructor(readonly reason: TokenFailure, message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

function sign(secret: string, input: string): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

export function signJoinToken(key: TokenKey, claims: JoinClaims): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }));
  const payload = b64url(JSON.stringify(claims));
  return `${header}.${payload}.${sign(key.secret, `${header}.${payload}`).toString('base64url')}`;
}

/**
 * Verifies signature and expiry and, for every field in `expect`, that the claim matches.
 * `nowMs` is injected so callers control the clock.
 */
export function verifyJoinToken(
  keys: readonly TokenKey[],
  token: string,
  nowMs: number,
  expect: Partial<Pick<JoinClaims, 'room' | 'sub' | 'region' | 'node'>> = {},
): JoinClaims {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw new TokenError('MALFORMED', 'token is not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: unknown; kid?: unknown };
  let claims: JoinClaims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError('MALFORMED', 'token header or payload is not JSON');
  }
  if (header.alg !== 'HS256') throw new TokenError('MALFORMED', 'token alg must be HS256');
  const key = keys.find((k) => k.kid === header.kid);
  if (!key) throw new TokenError('UNKNOWN_KEY', `token key id ${JSON.stringify(header.kid)} is not configured`);
  const expected = sign(key.secret, `${h}.${p}`);
  const given = Buffer.from(s, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new TokenError('BAD_SIGNATURE', 'token signature does not verify');
  if (typeof claims !== 'object' || claims === null || typeof claims.exp !== 'number') throw new TokenError('MALFORMED', 'token has no exp');
  if (claims.exp * 1000 <= nowMs) throw new TokenError('EXPIRED', 'token has expired');
  for (const [field, value] of Object.entries(expect)) {
    if (value !== undefined && claims[field as keyof JoinClaims] !== value) {
      throw new TokenError('WRONG_BINDING', `token is bound to another ${field}`);
    }
  }
  return claims;
}
