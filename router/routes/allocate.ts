import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TooManyRequestsError } from '../../shared/errors.ts';
import { AllocatePreview, AllocateRequest, AllocateResponse, ErrorBody } from '../../shared/schemas/index.ts';
import { type AllocateCaller, allocateCaller, allocationPermissions, bearer, presentedGrant } from '../auth.ts';
import { rateLimitStore } from '../limits.ts';
import { ALLOCATE_CALLERS } from '../openapi.ts';

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
  const rateLimited = config.rateLimitPerMinute > 0 ? { config: { rateLimit: { max: config.rateLimitPerMinute, timeWindow: 60_000 } } } : {};
  app.post(
    '/allocate',
    {
      ...rateLimited,
      schema: {
        security: ALLOCATE_CALLERS(config.requireAuth),
        summary: "Place a participant: the room's home region, this participant's edge, and a join token",
        body: AllocateRequest,
        response: { 200: AllocateResponse, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (req) => {
      const caller = allocateCaller(req, req.body, config, credentials.apiKeys, now());
      return allocator.allocate(req.body, clientIpOf(req.body, req.ip, caller), allocationPermissions(caller, req.body.permissions), caller.kind === 'grant' ? caller.issuedAtMs : undefined);
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
      return allocator.preview(req.body, clientIpOf(req.body, req.ip, allocateCaller(req, req.body, config, credentials.apiKeys, now())));
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
