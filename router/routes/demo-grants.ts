import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TooManyRequestsError } from '../../shared/errors.ts';
import { DemoGrantRequest, DemoGrantResponse, ErrorBody } from '../../shared/schemas/index.ts';
import { createGrant } from '../../shared/tokens.ts';

/**
 * POST /demo/grant: the stand-in for an application backend, so that the /demo page can join
 * without one. Anyone may ask, so it exists only when GEO_SFU_DEMO_GRANTS is on (the embedded
 * default; production mode refuses the setting). Each grant is bound to the room and participant
 * asked for, may publish and subscribe, lives GEO_SFU_DEMO_GRANT_TTL_S and is signed with the
 * first grant key, like a grant from `createGrant()` in a real backend. Limited per client IP.
 */
export const demoGrantRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, now } = app;
  if (!config.demoGrants) return;
  // loadConfig refuses GEO_SFU_DEMO_GRANTS without a grant key.
  const key = config.grantKeys[0]!;
  await app.register(rateLimit, {
    global: false,
    keyGenerator: (req) => `demo-grant:${req.ip}`,
    errorResponseBuilder: (_req, context) =>
      new TooManyRequestsError(`more than ${context.max} demo grants per minute from this address; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });
  app.post(
    '/demo/grant',
    {
      config: { rateLimit: { max: config.demoGrantsPerMinute, timeWindow: 60_000 } },
      schema: {
        summary: 'Development only (GEO_SFU_DEMO_GRANTS): a short-lived grant for one room and participant, for the /demo page',
        body: DemoGrantRequest,
        response: { 200: DemoGrantResponse, 400: ErrorBody, 429: ErrorBody },
      },
    },
    async (req) => {
      const { roomId, participantId } = req.body;
      const nowMs = now();
      const grant = createGrant({
        key,
        issuer: config.grantIssuer || 'geo-sfu-demo',
        audience: config.grantAudience,
        roomId,
        participantId,
        ttlSeconds: config.demoGrantTtlS,
        nowMs,
      });
      req.log.info({ roomId, participantId }, 'demo grant issued');
      return { grant, roomId, participantId, expiresAt: new Date((Math.floor(nowMs / 1000) + config.demoGrantTtlS) * 1000).toISOString() };
    },
  );
};
