import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { AJV_OPTIONS, BODY_LIMIT_BYTES, errorReplies, failedAuthLimit, httpServerFactory, serveMetrics } from '../shared/http.ts';
import { keepRawJsonBody } from '../shared/signed-http.ts';
import { serverTls } from '../shared/tls.ts';
import { takeCredentials } from './auth.ts';
import { type GeoLookup, lookupIp } from './geo.ts';
import { RouterLimits } from './limits.ts';
import { createRouterMetrics } from './metrics.ts';
import { SECURITY_SCHEMES } from './openapi.ts';
import { allocationPlugin } from './plugins/allocation.ts';
import { dashboardPlugin } from './plugins/dashboard.ts';
import { operationsPlugin } from './plugins/operations.ts';
import { p2pPlugin } from './plugins/p2p.ts';
import { registryPlugin } from './plugins/registry.ts';
import { storesPlugin } from './plugins/stores.ts';
import { webhooksPlugin } from './plugins/webhooks.ts';
import { alertRoutes } from './routes/alerts.ts';
import { allocateRoutes } from './routes/allocate.ts';
import { appWebhookRoutes } from './routes/app-webhooks.ts';
import { demoGrantRoutes } from './routes/demo-grants.ts';
import { nodeAdminRoutes } from './routes/node-admin.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { opsRoutes, routerMetricsSource } from './routes/ops.ts';
import { regionRoutes } from './routes/regions.ts';
import { roomRoutes } from './routes/rooms.ts';
import { scalingRoutes } from './routes/scaling.ts';
import type { RouterApp } from './services.ts';
import { type LeaderLease, LocalLeaderLease } from './state/leader-lease.ts';
import type { RedisLimitStore } from './state/redis-limit-store.ts';
import type { NodeRegistryStore, RoomStore, SessionLog } from './state/types.ts';

export interface RouterDeps {
  config: GeoSfuConfig;
  /** Opened and started stores (see createStores); the router closes them when it closes. */
  rooms: RoomStore;
  nodes: NodeRegistryStore;
  sessions: SessionLog;
  /** Who runs background duties among router replicas; default: this router alone. */
  lease?: LeaderLease;
  /** Where router replicas share their limits and nonces (closed with the router); default: this router alone. */
  limitStore?: RedisLimitStore;
  /** Defaults to geoip-lite (call preloadGeoIp() first). */
  geoLookup?: GeoLookup;
  now?: () => number;
  /** Default: a pino logger at GEO_SFU_LOG_LEVEL. */
  logger?: FastifyBaseLogger;
}

/**
 * Builds the router: a fastify app with every route, the registry snapshot refresher, the prober
 * and the allocation expiry sweeper. `app.listen()` starts serving; `app.close()` stops the
 * background work and closes the stores it was given.
 */
export async function buildRouter(deps: RouterDeps): Promise<RouterApp> {
  const { config, credentials } = takeCredentials(deps.config);
  const now = deps.now ?? Date.now;
  const tls = serverTls(config);
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: config.logLevel } }),
    // A hop count is valid at run time (proxy-addr), though fastify's types only list the other forms.
    trustProxy: config.trustProxy as boolean | string | string[],
    ajv: AJV_OPTIONS,
    bodyLimit: BODY_LIMIT_BYTES,
    // Ids are up to 128 characters; longer ones must reach validation (400), not miss the route (404).
    routerOptions: { maxParamLength: 256 },
    // Request, headers and keep-alive timeouts and the connection cap (GEO_SFU_HTTP_*), over TLS or not.
    serverFactory: httpServerFactory(config, tls),
    // Per-request lines at /allocate rates would drown the useful ones; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();
  keepRawJsonBody(app);

  // The services, each a plugin with its decorators, start (onReady) and stop (onClose, in reverse).
  app.decorate('config', config);
  app.decorate('credentials', credentials);
  app.decorate('metrics', createRouterMetrics());
  app.decorate('now', now);
  const { limitStore } = deps;
  app.decorate('limits', new RouterLimits(limitStore ?? null, now, (limit) => app.metrics.limitLocalDecisions.inc({ limit })));
  if (limitStore) app.addHook('onClose', () => limitStore.close());
  await app.register(storesPlugin, { rooms: deps.rooms, nodes: deps.nodes, sessions: deps.sessions, lease: deps.lease ?? new LocalLeaderLease() });
  await app.register(registryPlugin);
  await app.register(operationsPlugin);
  await app.register(p2pPlugin);
  await app.register(allocationPlugin, { geoLookup: deps.geoLookup ?? lookupIp });
  await app.register(webhooksPlugin);

  await app.register(errorReplies);
  await app.register(failedAuthLimit, { perMinute: config.failedAuthPerMinute, counter: app.limits.failedAuth, now });
  // Security headers; no CSP, since the router serves JSON and the interactive docs' own assets.
  await app.register(helmet, { contentSecurityPolicy: false });
  const origins = config.corsOrigins.split(',').map((o) => o.trim()).filter(Boolean);
  await app.register(cors, { origin: origins.includes('*') ? true : origins, methods: ['GET', 'POST', 'DELETE'], exposedHeaders: ['retry-after'] });
  await app.register(swagger, {
    openapi: {
      info: { title: 'geo-sfu router', version: '0.1.0', description: 'Global router and latency-aware SFU allocator' },
      components: { securitySchemes: SECURITY_SCHEMES },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(allocateRoutes);
  await app.register(roomRoutes);
  await app.register(regionRoutes);
  await app.register(nodeRoutes);
  await app.register(nodeAdminRoutes);
  await app.register(opsRoutes);
  serveMetrics(app, routerMetricsSource(app), { host: config.routerHost, port: config.routerMetricsPort, settings: config, tls });
  await app.register(scalingRoutes);
  await app.register(alertRoutes);
  await app.register(appWebhookRoutes);
  await app.register(dashboardPlugin);
  await app.register(demoGrantRoutes);

  return app;
}
