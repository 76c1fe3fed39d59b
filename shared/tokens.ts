import { createHmac, timingSafeEqual } from 'node:crypto';
import { decodeBase64url } from './base64url.ts';
import type { TokenKey } from './config/load.ts';

/**
 * The two bearer tokens of geo-sfu, both compact JWS (HS256) with a key id. Verification accepts
 * every configured key id, which is what makes key rotation possible without downtime.
 *
 * - Join tokens: minted by the router at /allocate, short-lived and bound to one room,
 *   participant, region and node, so a token cannot be replayed against another room or SFU.
 * - P2P relay tokens: minted by the router at /allocate in P2P fallback mode, short-lived and
 *   bound to one room, participant and allocation; `typ` keeps them apart from join tokens (which
 *   agents also refuse for lack of a region and node binding).
 * - Grants: minted by the application's backend (`createGrant`, with keys it shares with the
 *   router) for one room and participant with permissions; the browser presents it to /allocate
 *   and never holds an API key.
 */
export interface Permissions {
  /** produce (audio, video). */
  publish: boolean;
  /** consume and consumeData. */
  subscribe: boolean;
  /** produceData; absent: as `publish` (grants and tokens made before it existed stay valid). */
  publishData?: boolean;
}

/** What a participant may do, every field explicit: `publishData` defaults to `publish`; no `perm` at all allows everything. */
export function resolvePermissions(perm: Permissions | undefined): Required<Permissions> {
  if (!perm) return { publish: true, subscribe: true, publishData: true };
  return { publish: perm.publish, subscribe: perm.subscribe, publishData: perm.publishData ?? perm.publish };
}

export interface JoinClaims {
  /** Allocation id (also the session-log row id). */
  aid: string;
  room: string;
  sub: string;
  region: string;
  node: string;
  /** What the participant may do on the SFU (from its grant or the API caller); absent: everything. */
  perm?: Permissions;
  /** Seconds since epoch. */
  iat: number;
  exp: number;
}

export interface GrantClaims {
  iss: string;
  aud: string;
  room: string;
  sub: string;
  perm: Permissions;
  /**
   * The room's region policy (docs/region-policy.md): the shape of shared/schemas/policy.ts's
   * RegionPolicy, written out so that this file (and @geo-sfu/server) needs no schema library; the
   * router checks it. Absent: the room has none.
   */
  policy?: { allowedRegions: string[]; preferredRegions?: string[]; allowP2p?: boolean };
  iat: number;
  exp: number;
}

export type TokenFailure = 'MALFORMED' | 'UNKNOWN_KEY' | 'BAD_SIGNATURE' | 'EXPIRED' | 'WRONG_AUDIENCE' | 'WRONG_BINDING';

export class TokenError extends Error {
  constructor(
    readonly reason: TokenFailure,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

function mac(secret: string, input: string): Buffer {
  return createHmac('sha256', secret).update(input).digest();
}

function sign(key: TokenKey, claims: object): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }));
  const payload = b64url(JSON.stringify(claims));
  return `${header}.${payload}.${mac(key.secret, `${header}.${payload}`).toString('base64url')}`;
}

/** Verified claims, and the key id that signed them (rate limits key on it with the subject). */
export interface Verified {
  kid: string;
  claims: Record<string, unknown>;
}

/**
 * Checks form, key id, signature and expiry; returns the claims for the caller's own checks.
 * Every part must be the canonical base64url of its bytes (decodeBase64url), so a token has one
 * spelling only.
 */
function verify(keys: readonly TokenKey[], token: unknown, nowMs: number): Verified {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw new TokenError('MALFORMED', 'token is not a compact JWS');
  const [h, p, s] = parts.map(decodeBase64url);
  if (!h || !p || !s) throw new TokenError('MALFORMED', 'token part is not canonical base64url');
  let header: { alg?: unknown; kid?: unknown };
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(h.toString('utf8'));
    claims = JSON.parse(p.toString('utf8'));
  } catch {
    throw new TokenError('MALFORMED', 'token header or payload is not JSON');
  }
  if (header?.alg !== 'HS256') throw new TokenError('MALFORMED', 'token alg must be HS256');
  const key = keys.find((k) => k.kid === header.kid);
  if (!key) throw new TokenError('UNKNOWN_KEY', `token key id ${JSON.stringify(header.kid)} is not configured`);
  const expected = mac(key.secret, `${parts[0]}.${parts[1]}`);
  if (s.length !== expected.length || !timingSafeEqual(s, expected)) throw new TokenError('BAD_SIGNATURE', 'token signature does not verify');
  if (typeof claims !== 'object' || claims === null || typeof claims.exp !== 'number') throw new TokenError('MALFORMED', 'token has no exp');
  if (claims.exp * 1000 <= nowMs) throw new TokenError('EXPIRED', 'token has expired');
  return { kid: key.kid, claims };
}

function checkBinding(claims: Record<string, unknown>, expect: Record<string, string | undefined>): void {
  for (const [field, value] of Object.entries(expect)) {
    if (value !== undefined && claims[field] !== value) throw new TokenError('WRONG_BINDING', `token is bound to another ${field}`);
  }
}

export function signJoinToken(key: TokenKey, claims: JoinClaims): string {
  return sign(key, claims);
}

/** Verifies signature and expiry and, for every field in `expect`, that the claim matches. */
export function verifyJoinToken(
  keys: readonly TokenKey[],
  token: string,
  nowMs: number,
  expect: Partial<Pick<JoinClaims, 'room' | 'sub' | 'region' | 'node'>> = {},
): JoinClaims {
  const { claims } = verify(keys, token, nowMs);
  checkBinding(claims, expect);
  return claims as unknown as JoinClaims;
}

export const RELAY_TOKEN_TYPE = 'p2p-relay';

export interface RelayClaims {
  typ: typeof RELAY_TOKEN_TYPE;
  /** Allocation id (also the session-log row id). */
  aid: string;
  room: string;
  sub: string;
  iat: number;
  exp: number;
}

export function signRelayToken(key: TokenKey, claims: Omit<RelayClaims, 'typ'>): string {
  return sign(key, { typ: RELAY_TOKEN_TYPE, ...claims });
}

/** Verifies signature, expiry and type; the claims' ids are checked to be ids (1–128 characters). */
export function verifyRelayToken(keys: readonly TokenKey[], token: unknown, nowMs: number): RelayClaims {
  const { claims } = verify(keys, token, nowMs);
  if (claims.typ !== RELAY_TOKEN_TYPE) throw new TokenError('WRONG_AUDIENCE', 'not a P2P relay token');
  for (const field of ['aid', 'room', 'sub'] as const) {
    const v = claims[field];
    if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new TokenError('MALFORMED', `token claim ${field} is not an id`);
  }
  return claims as unknown as RelayClaims;
}

export interface CreateGrantOptions {
  key: TokenKey;
  issuer: string;
  /** The router's GEO_SFU_GRANT_AUDIENCE. */
  audience: string;
  roomId: string;
  participantId: string;
  permissions?: Partial<Permissions>;
  /** The room's region policy: every grant for the room must carry the same (or the room refuses it, 409). */
  policy?: GrantClaims['policy'];
  ttlSeconds: number;
  nowMs: number;
}

/** For the application's backend: a grant letting one participant allocate in one room. */
export function createGrant(o: CreateGrantOptions): string {
  const iat = Math.floor(o.nowMs / 1000);
  const claims: GrantClaims = {
    iss: o.issuer,
    aud: o.audience,
    room: o.roomId,
    sub: o.participantId,
    perm: {
      publish: o.permissions?.publish ?? true,
      subscribe: o.permissions?.subscribe ?? true,
      ...(o.permissions?.publishData !== undefined ? { publishData: o.permissions.publishData } : {}),
    },
    ...(o.policy ? { policy: o.policy } : {}),
    iat,
    exp: iat + o.ttlSeconds,
  };
  return sign(o.key, claims);
}

interface GrantExpectation {
  audience: string;
  issuer?: string;
}

/**
 * A grant's signature, expiry, audience and issuer (when one is required): whom it speaks for,
 * whatever it is for. The router checks this once per /allocate call (its rate limit keys on the
 * key id and subject) and then what the grant allows with grantFor.
 */
export function verifyGrantIssue(keys: readonly TokenKey[], token: string, nowMs: number, expect: GrantExpectation): Verified {
  const verified = verify(keys, token, nowMs);
  const { claims } = verified;
  if (claims.aud !== expect.audience || (expect.issuer && claims.iss !== expect.issuer)) throw new TokenError('WRONG_AUDIENCE', 'grant was issued by or for someone else');
  return verified;
}

/**
 * The claims of a verified grant (verifyGrantIssue) if it is for `room`, and for participant
 * `sub` when given (a grant for any participant of the room shows the room), with well-formed
 * permissions.
 */
export function grantFor(verified: Verified, expect: { room: string; sub?: string }): GrantClaims {
  const { claims } = verified;
  checkBinding(claims, { room: expect.room, sub: expect.sub });
  const perm = claims.perm as Partial<Permissions> | undefined;
  if (typeof perm !== 'object' || perm === null || typeof perm.publish !== 'boolean' || typeof perm.subscribe !== 'boolean' || (perm.publishData !== undefined && typeof perm.publishData !== 'boolean')) {
    throw new TokenError('MALFORMED', 'grant has no permissions');
  }
  return claims as unknown as GrantClaims;
}

/** Verifies a grant: verifyGrantIssue, then grantFor. */
export function verifyGrant(
  keys: readonly TokenKey[],
  token: string,
  nowMs: number,
  expect: GrantExpectation & { room: string; sub?: string },
): GrantClaims {
  return grantFor(verifyGrantIssue(keys, token, nowMs, expect), expect);
}
