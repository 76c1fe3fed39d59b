import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { TooManyRequestsError } from '../../shared/errors.ts';
import { AllocatePreview, AllocateRequest, AllocateResponse, ErrorBody } from '../../shared/schemas/index.ts';
import { type AllocateCaller, allocateCaller, allocationPermissions, allocationPolicy, bearer, presentedGrant } from '../auth.ts';
import { rateLimitStore } from '../limits.ts';
import { ALLOCATE_CALLERS } from '../openapi.ts';

/** The error body with what a status means here (the OpenAPI response description). */
const described = (description: string) => Type.Object(ErrorBody.properties, { description });

export const allocateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, credentials, allocator, now, limits } = app;
  if (config.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: false,
      // Counted in Redis when router replicas share it (router/limits.ts): one budget for the deployment.
      store: rateLimitStore(limits.allocate),
      // Per verified identity: an API key (a fleet of servers behind one key shares its budget;
      // only a hash of it is kept) or a grant's key id and subject (however many grants that
      // participant holds, whatever their spelling). Anything unverified: per client address.
      keyGenerator: (req) => {
        const credential = bearer(req);
        if (credential !== null) {
          if (credentials.apiKeys.matches(credential)) return `key:${createHash('sha256').update(credential).digest('base64url').slice(0, 22)}`;
          const grant = config.grantKeys.length > 0 ? presentedGrant(req, credential, config, now()) : null;
          if (grant && 'verified' in grant && typeof grant.verified.claims.sub === 'string') return `grant:${grant.verified.kid}:${grant.verified.claims.sub}`;
        }
        return `ip:${req.ip}`;
      },
      errorResponseBuilder: (_req, context) =>
        new TooManyRequestsError(`more than ${context.max} /allocate calls per minute; retry in ${Math.ceil(context.ttl / 1000)} s`),
    });
  }
  // An API key is the application's servers, allocating for many participants: a budget of its own.
  const apiKeyIdentity = (key: string) => key.startsWith('key:');
  const rateLimited =
    config.rateLimitPerMinute > 0
      ? {
          config: {
            rateLimit: {
              max: (_req: unknown, key: string) => (apiKeyIdentity(key) ? config.apiKeyRateLimitPerMinute : config.rateLimitPerMinute),
              allowList: (_req: unknown, key: string) => apiKeyIdentity(key) && config.apiKeyRateLimitPerMinute === 0,
              timeWindow: 60_000,
            },
          },
        }
      : {};
  app.post(
    '/allocate',
    {
      ...rateLimited,
      schema: {
        security: ALLOCATE_CALLERS(config.requireAuth),
        summary:
          "Place a participant: the room's home region, this participant's edge, and a join token. A room's region policy (body `policy` for API-key callers, a grant's `policy` claim) keeps its media in the allowed regions: 409 POLICY_CONFLICT when the room's differs, 503 NO_ALLOWED_REGION (Retry-After) when no allowed region can take the participant",
        body: AllocateRequest,
        response: {
          200: AllocateResponse,
          400: described('Bad input, naming the field (`policy.allowedRegions` for a region not in the catalog)'),
          401: ErrorBody,
          403: described('Not allowed: a grant caller asking for more than its grant (`permissions.*`, or any `policy`: a grant carries its own), or `KICKED`'),
          409: described("`ROOM_FULL`; `POLICY_CONFLICT`: the room's region policy (fixed by its first allocation) differs from this allocation's"),
          429: ErrorBody,
          503: described('`NO_CAPACITY`; `NO_ALLOWED_REGION`: no region the room\'s policy allows can take the participant now (never placed outside it); `DEPENDENCY_UNAVAILABLE`. With Retry-After'),
        },
      },
    },
    async (req) => {
      const caller = allocateCaller(req, req.body, config, credentials.apiKeys, now());
      return allocator.allocate(withCallerPolicy(req.body, caller), clientIpOf(req.body, req.ip, caller), allocationPermissions(caller, req.body.permissions), caller.kind === 'grant' ? caller.issuedAtMs : undefined);
    },
  );

  app.post(
    '/allocate/dry-run',
    {
      // The same callers and budget as /allocate: each dry run reads the room from the store.
      ...rateLimited,
      schema: {
        security: ALLOCATE_CALLERS(config.requireAuth),
        summary:
          'Where POST /allocate would place this participant now (home, edge, node, reasons, candidates), without doing it: no seat reserved, no home pinned, no session row, no token',
        body: AllocateRequest,
        response: { 200: AllocatePreview, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (req) => {
      const caller = allocateCaller(req, req.body, config, credentials.apiKeys, now());
      return allocator.preview(withCallerPolicy(req.body, caller), clientIpOf(req.body, req.ip, caller));
    },
  );
};

/**
 * Where the client is, for its RTT estimate: only server-side callers (API key) may speak for
 * another client's IP; everyone else is located by the address the request came from
 * (X-Forwarded-For only via trustProxy).
 */
function clientIpOf(body: AllocateRequest, requestIp: string, caller: AllocateCaller): string {
  return body.clientIp !== undefined && caller.kind === 'api-key' ? body.clientIp : requestIp;
}

/** The request with the caller's effective region policy: a grant's claim, else the body's (router/auth.ts). */
function withCallerPolicy(body: AllocateRequest, caller: AllocateCaller): AllocateRequest {
  const { policy: asked, ...rest } = body;
  const policy = allocationPolicy(caller, asked);
  return policy ? { ...rest, policy } : rest;
}
