import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { TooManyRequestsError } from '../../shared/errors.ts';
import { AllocateRequest, AllocateResponse, ErrorBody } from '../../shared/schemas/index.ts';
import { allocateCaller, allocationPermissions, allocationPolicy, bearer, presentedGrant } from '../auth.ts';

/** The error body with what a status means here (the OpenAPI response description). */
const described = (description: string) => Type.Object(ErrorBody.properties, { description });

export const allocateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, credentials, allocator, now } = app;
  if (config.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: false,
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
  app.post(
    '/allocate',
    {
      ...(config.rateLimitPerMinute > 0 ? { config: { rateLimit: { max: config.rateLimitPerMinute, timeWindow: 60_000 } } } : {}),
      schema: {
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
      // Only server-side callers (API key) may speak for another client's IP; everyone else is
      // located by the address the request came from (X-Forwarded-For only via trustProxy).
      const clientIp = req.body.clientIp !== undefined && caller.kind === 'api-key' ? req.body.clientIp : req.ip;
      const { policy: asked, ...body } = req.body;
      const policy = allocationPolicy(caller, asked);
      return allocator.allocate({ ...body, ...(policy ? { policy } : {}) }, clientIp, allocationPermissions(caller, req.body.permissions), caller.kind === 'grant' ? caller.issuedAtMs : undefined);
    },
  );
};
