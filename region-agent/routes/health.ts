import type { FastifyPluginAsync } from 'fastify';
import { bearerToken, type CredentialHashes } from '../../shared/credentials.ts';
import { GeoSfuError, UnauthorizedError } from '../../shared/errors.ts';
import type { AgentController } from '../controller.ts';

export interface HealthRoutesOptions {
  controller: AgentController;
  /** When set (production mode), GET /status needs `Authorization: Bearer <admin token>`. */
  statusAdmin?: CredentialHashes;
}

/** Probe, liveness, readiness and status: read-only; unauthenticated but for /status in production mode. */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { controller, statusAdmin }) => {
  // Timed by clients, the router and peer agents at every probe interval: no logging, no
  // schema, no body, so the figure is the network's and not this handler's.
  app.get('/probe', { logLevel: 'silent' }, (_req, reply) => {
    // Never cached (a cached answer is not a round trip); readable cross-origin by browsers.
    reply.code(204).header('cache-control', 'no-store').header('access-control-allow-origin', '*').send();
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async () => {
    if (controller.ready) return { status: 'ready' };
    const why = controller.draining ? 'draining' : controller.registered ? 'closing' : 'not registered with the router yet';
    throw new GeoSfuError('NOT_READY', 503, `not ready: ${why}`);
  });

  app.get('/status', async (req) => {
    if (statusAdmin) {
      const token = bearerToken(req.headers.authorization);
      if (token === undefined || !statusAdmin.matches(token)) throw new UnauthorizedError('GET /status needs Authorization: Bearer <admin token> in production mode', 'BAD_ADMIN_TOKEN');
    }
    return controller.status();
  });
};
