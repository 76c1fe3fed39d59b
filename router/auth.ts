import { Value } from '@sinclair/typebox/value';
import type { FastifyRequest } from 'fastify';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { CredentialHashes, parseCredentialHashes } from '../shared/credentials.ts';
import { ForbiddenError, UnauthorizedError } from '../shared/errors.ts';
import { RegionPolicy } from '../shared/schemas/index.ts';
import { grantFor, type Permissions, resolvePermissions, TokenError, type Verified, verifyGrant, verifyGrantIssue } from '../shared/tokens.ts';

/** The static credentials the router accepts, as SHA-256 digests only. */
export interface RouterCredentials {
  apiKeys: CredentialHashes;
  admin: CredentialHashes;
}

/**
 * Hashes the configured API key and admin token, adds the configured hashes, and returns a
 * configuration without the plain secrets: the router keeps nothing else of them.
 */
export function takeCredentials(config: GeoSfuConfig): { credentials: RouterCredentials; config: GeoSfuConfig } {
  const credentials = {
    apiKeys: new CredentialHashes([config.apiKey], parseCredentialHashes(config.apiKeyHashes)),
    admin: new CredentialHashes([config.adminToken], parseCredentialHashes(config.adminTokenHash)),
  };
  return { credentials, config: { ...config, apiKey: '', adminToken: '' } };
}

/** The presented credential: `Authorization: Bearer …` or `x-api-key`. */
export function bearer(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer ')) return header.slice(7);
  const key = req.headers['x-api-key'];
  return typeof key === 'string' ? key : null;
}

/** preHandler for admin routes. */
export function requireAdmin(admin: CredentialHashes) {
  return async (req: FastifyRequest): Promise<void> => {
    const presented = bearer(req);
    if (presented === null || !admin.matches(presented)) {
      throw new UnauthorizedError('admin credential required (Authorization: Bearer <GEO_SFU_ADMIN_TOKEN>)');
    }
  };
}

/**
 * preHandler for a room's view in production mode: the admin token, or a grant for that room
 * (any of its participants); a grant for another room gets 403.
 */
export function requireAdminOrRoomGrant(admin: CredentialHashes, config: Pick<GeoSfuConfig, 'grantKeys' | 'grantIssuer' | 'grantAudience'>, now: () => number) {
  return async (req: FastifyRequest<{ Params: { roomId: string } }>): Promise<void> => {
    const presented = bearer(req);
    if (presented === null) throw new UnauthorizedError('a room needs the admin token or a grant for it: Authorization: Bearer <token>');
    if (admin.matches(presented)) return;
    if (config.grantKeys.length > 0) {
      try {
        verifyGrant(config.grantKeys, presented, now(), { audience: config.grantAudience, issuer: config.grantIssuer, room: req.params.roomId });
        return;
      } catch (err) {
        if (err instanceof TokenError && err.reason === 'WRONG_BINDING') throw new ForbiddenError(`grant does not allow this: ${err.message}`);
      }
    }
    throw new UnauthorizedError('unknown credential (expected the admin token or a grant for this room)');
  };
}

/** Who is calling /allocate: a server with the API key, a browser with a grant, or nobody known. */
export type AllocateCaller =
  | { kind: 'api-key' }
  /** `issuedAtMs`: the grant's `iat` (an admin removal refuses grants issued at or before it). */
  /** `policy`: the grant's region policy claim, if it has one (the room's policy for this caller). */
  | { kind: 'grant'; participantId: string; permissions: Permissions; issuedAtMs: number; policy?: RegionPolicy }
  | { kind: 'anonymous' };

type GrantConfig = Pick<GeoSfuConfig, 'grantKeys' | 'grantIssuer' | 'grantAudience'>;
/** A request's grant, verified once (signature, expiry, audience): the claims, or why it failed. */
type PresentedGrant = { verified: Verified } | { refused: Error };
const presentedGrants = new WeakMap<FastifyRequest, PresentedGrant>();

/**
 * The grant `token` that `req` presents, verified once per request: /allocate's rate limit keys on
 * it before the body is read and allocateCaller then checks what it allows, without a second HMAC.
 */
export function presentedGrant(req: FastifyRequest, token: string, config: GrantConfig, nowMs: number): PresentedGrant {
  let grant = presentedGrants.get(req);
  if (!grant) {
    try {
      grant = { verified: verifyGrantIssue(config.grantKeys, token, nowMs, { audience: config.grantAudience, issuer: config.grantIssuer }) };
    } catch (err) {
      grant = { refused: err as Error };
    }
    presentedGrants.set(req, grant);
  }
  return grant;
}

/**
 * Authenticates an /allocate call. A grant must be for the requested room and participant
 * (else 403); without a credential the call is anonymous, refused when GEO_SFU_REQUIRE_AUTH is on.
 */
export function allocateCaller(
  req: FastifyRequest,
  body: { roomId: string; participantId: string },
  config: GrantConfig & Pick<GeoSfuConfig, 'requireAuth'>,
  apiKeys: CredentialHashes,
  nowMs: number,
): AllocateCaller {
  const presented = bearer(req);
  if (presented !== null && apiKeys.matches(presented)) return { kind: 'api-key' };
  if (presented !== null && presented.split('.').length === 3 && config.grantKeys.length > 0) {
    try {
      const grant = presentedGrant(req, presented, config, nowMs);
      if ('refused' in grant) throw grant.refused;
      const claims = grantFor(grant.verified, { room: body.roomId, sub: body.participantId });
      if (claims.policy !== undefined && !Value.Check(RegionPolicy, claims.policy)) throw new TokenError('MALFORMED', 'grant policy is not a region policy');
      return { kind: 'grant', participantId: claims.sub, permissions: claims.perm, issuedAtMs: claims.iat * 1000, ...(claims.policy ? { policy: claims.policy } : {}) };
    } catch (err) {
      if (err instanceof TokenError && err.reason === 'WRONG_BINDING') throw new ForbiddenError(`grant does not allow this: ${err.message}`);
      throw new UnauthorizedError(`grant refused: ${(err as Error).message}`, 'BAD_GRANT');
    }
  }
  if (presented !== null) throw new UnauthorizedError('unknown credential (expected the API key or a grant)');
  if (config.requireAuth) throw new UnauthorizedError('a credential is required: Authorization: Bearer <API key or grant>');
  return { kind: 'anonymous' };
}

/**
 * The region policy an allocation states: a grant's `policy` claim (the application's; a grant caller
 * sending one in the body is 403 naming `policy`, so a client cannot widen it), else the body's.
 */
export function allocationPolicy(caller: AllocateCaller, asked: RegionPolicy | undefined): RegionPolicy | undefined {
  if (caller.kind !== 'grant') return asked;
  if (asked !== undefined) throw new ForbiddenError("policy: a grant caller's region policy is its grant's `policy` claim", 'policy');
  return caller.policy;
}

/**
 * The permissions an allocation's join token carries. A grant's, narrowed by what the body asks
 * (asking for more than the grant gives is 403 naming the field); for other callers what the body
 * asks, each field absent allowed (`publishData` absent: as `publish`); nothing asked and no grant:
 * undefined, which the agent reads as everything.
 */
export function allocationPermissions(caller: AllocateCaller, asked: Partial<Permissions> | undefined): Required<Permissions> | undefined {
  const granted = caller.kind === 'grant' ? resolvePermissions(caller.permissions) : undefined;
  if (asked === undefined) return granted;
  const base = granted ?? resolvePermissions(undefined);
  const publish = asked.publish ?? base.publish;
  const wanted: Required<Permissions> = {
    publish,
    subscribe: asked.subscribe ?? base.subscribe,
    publishData: asked.publishData ?? (asked.publish !== undefined ? publish : base.publishData),
  };
  if (granted) {
    for (const field of ['publish', 'subscribe', 'publishData'] as const) {
      if (wanted[field] && !granted[field]) throw new ForbiddenError(`permissions.${field}: the grant does not allow ${field}`, `permissions.${field}`);
    }
  }
  return wanted;
}
