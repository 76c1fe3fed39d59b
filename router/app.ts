import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { AJV_OPTIONS, BODY_LIMIT_BYTES, errorReplies, failedAuthLimit, httpServerFactory, serveMetrics } from '../shared/http.ts';
import { keepRawJsonBody } from '../shared/signed-http.ts';
import { Ticker } from '../shared/ticker.ts';
import { clientTls, serverTls } from '../shared/tls.ts';
import { Allocator } from './allocation/allocator.ts';
import { ExpirySweeper } from './allocation/expiry-sweeper.ts';
import { type GeoLookup, lookupIp } from './geo.ts';
import { createRouterMetrics, type RouterMetrics } from './metrics.ts';
import { P2pRelay } from './p2p/relay.ts';
import { createStrategy } from './placement/index.ts';
import { QualityMonitor } from './operations/quality-monitor.ts';
import { ScalingManager } from './operations/scaling-manager.ts';
import { NodeRegistry } from './registry/node-registry.ts';
import { Prober } from './registry/prober.ts';
import { allocateRoutes } from './routes/allocate.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { opsRoutes, routerMetricsSource } from './routes/ops.ts';
import { alertRoutes } from './routes/alerts.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { demoGrantRoutes } from './routes/demo-grants.ts';
import { scalingRoutes } from './routes/scaling.ts';
import { regionRoutes } from './routes/regions.ts';
import { roomRoutes } from './routes/rooms.ts';
import { type RouterCredentials, takeCredentials } from './auth.ts';
import { type LeaderLease, LocalLeaderLease } from './state/leader-lease.ts';
import type { NodeRegistryStore, RoomStore, SessionLog } from './state/types.ts';
import { Rehomer } from './operations/rehomer.ts';
import { Rebalancer } from './operations/rebalancer.ts';
import { SessionCloser } from './operations/session-closer.ts';

export interface RouterDeps {
  config: GeoSfuConfig;
  /** Opened and started stores (see createStores); the router closes them when it closes. */
  rooms: RoomStore;
  nodes: NodeRegistryStore;
  sessions: SessionLog;
  /** Who runs background duties among router replicas; default: this router alone. */
  lease?: LeaderLease;
  /** Defaults to geoip-lite (call preloadGeoIp() first). */
  geoLookup?: GeoLookup;
  now?: () => number;
  /** Default: a pino logger at GEO_SFU_LOG_LEVEL. */
  logger?: FastifyBaseLogger;
}

export interface RouterServices {
  /** The configuration without the plain API key and admin token (see `credentials`). */
  config: GeoSfuConfig;
  credentials: RouterCredentials;
  rooms: RoomStore;
  sessions: SessionLog;
  registry: NodeRegistry;
  prober: Prober;
  allocator: Allocator;
  scaling: ScalingManager;
  quality: QualityMonitor;
  rebalancer: Rebalancer;
  /** Closes participants' sessions on their agents (admin removal, replaced sessions). */
  sessionCloser: SessionCloser;
  metrics: RouterMetrics;
  /** The P2P fallback's signaling relay (null when GEO_SFU_P2P_FALLBACK is off). */
  p2pRelay: P2pRelay | null;
  /** True while this router runs the background duties. */
  isLeader: () => boolean;
  now: () => number;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: RouterServices;
  }
}

export type RouterApp = FastifyInstance;

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

  const metrics = createRouterMetrics();
  const lease = deps.lease ?? new LocalLeaderLease();
  const isLeader = () => lease.isLeader();
  const registry = new NodeRegistry({ config, store: deps.nodes, rooms: deps.rooms, now });
  const prober = new Prober({
    intervalMs: config.probeIntervalMs,
    timeoutMs: config.probeTimeoutMs,
    ewmaAlpha: config.rttEwmaAlpha,
    lossWindow: config.lossWindow,
    tls: clientTls(config.tlsCaFile),
    targets: () =>
      registry
        .snapshot()
        .nodes.filter((n) => n.state !== 'dead')
        .map((n) => ({ nodeId: n.nodeId, probeUrl: n.record.registration.probeUrl })),
  });
  const scaling = new ScalingManager({
    config,
    registry,
    now,
    isLeader,
    onDecision: (d) => metrics.scalingDecisions.inc({ region: d.region, action: d.action }),
    onWebhookFailure: () => metrics.scalingWebhookFailures.inc(),
  });
  const quality = new QualityMonitor({
    config,
    registry,
    now,
    isLeader,
    onChange: (active) => {
      metrics.qualityAlerts.reset();
      for (const a of active) metrics.qualityAlerts.inc({ region: a.region, kind: a.kind });
    },
    onWebhookFailure: () => metrics.alertWebhookFailures.inc(),
  });
  // Set right after the allocator it needs: the allocator tells it when a room leaves P2P mode.
  let p2pRelay: P2pRelay | null = null;
  const allocator = new Allocator({
    config,
    registry,
    rooms: deps.rooms,
    sessions: deps.sessions,
    strategy: createStrategy(config.placementStrategy),
    geoLookup: deps.geoLookup ?? lookupIp,
    now,
    newId: randomUUID,
    onDecision: (outcome, ms, placed) => {
      metrics.allocations.inc({ outcome });
      metrics.placementSeconds.observe(ms / 1000);
      if (placed) scaling.observeAllocation(placed.region, placed.clientRttMs, outcome === 'overflow' ? placed.homeRegion : null);
    },
    onP2pEnded: (roomId) => {
      metrics.p2pMigrations.inc();
      p2pRelay?.migrate(roomId, 'region_available');
    },
    onDegradedAllocation: () => metrics.degradedAllocations.inc(),
    onReplayed: (result) => metrics.journalReplays.inc({ result }),
  });
  if (config.p2pFallback) {
    p2pRelay = new P2pRelay({
      httpServer: app.server,
      config,
      rooms: deps.rooms,
      sessions: deps.sessions,
      canHost: (room) => allocator.canHost(room),
      metrics,
      logger: app.log,
      now,
    });
  }
  const sessionCloser = new SessionCloser({ config, registry, log: app.log });
  const sweeper = new ExpirySweeper({
    rooms: deps.rooms,
    sessions: deps.sessions,
    now,
    isLeader,
    onExpired: (n) => metrics.expiredAllocations.inc(n),
    onOrphanedSessions: (roomId, participantId, nodeIds) => void sessionCloser.closeOn(nodeIds, { roomId, participantId, reason: 'expired' }),
  });
  const rehomer = new Rehomer(
    { registry, rooms: deps.rooms, isLeader, onRehome: () => metrics.rehomes.inc() },
    config.regions.map((r) => r.id),
  );
  const rebalancer = new Rebalancer({
    config,
    registry,
    rooms: deps.rooms,
    now,
    log: app.log,
    onDecision: (d) => {
      metrics.rebalanceDecisions.inc({ outcome: d.outcome });
      if (d.outcome !== 'plan_in_flight' && d.outcome !== 'failed') metrics.rebalanceDecisionSeconds.observe(d.decisionMs / 1000);
      for (const m of d.moves) metrics.rebalanceMoves.inc({ result: m.told ? 'told' : 'not_told' });
    },
  });
  const rehoming = new Ticker(config.rehomeIntervalMs, async () => void (await rehomer.tick()), (err) => app.log.warn({ err }, 'rehoming tick failed'), { unref: true });
  // Allocations made while Redis was away reach it soon after it is back, even with no new /allocate.
  const replaying = new Ticker(
    config.journalReplayIntervalMs,
    async () => {
      if (allocator.journalSize() > 0) await allocator.replayJournal();
    },
    (err) => app.log.debug({ err }, 'degraded journal not replayed yet'),
    { unref: true },
  );
  app.decorate('services', { config, credentials, rooms: deps.rooms, sessions: deps.sessions, registry, prober, allocator, scaling, quality, rebalancer, sessionCloser, metrics, p2pRelay, isLeader, now });

  await app.register(errorReplies);
  await app.register(failedAuthLimit, { perMinute: config.failedAuthPerMinute, now });
  // Security headers; no CSP, since the router serves JSON and the interactive docs' own assets.
  await app.register(helmet, { contentSecurityPolicy: false });
  const origins = config.corsOrigins.split(',').map((o) => o.trim()).filter(Boolean);
  await app.register(cors, { origin: origins.includes('*') ? true : origins, methods: ['GET', 'POST', 'DELETE'], exposedHeaders: ['retry-after'] });
  await app.register(swagger, {
    openapi: {
      info: { title: 'geo-sfu router', version: '0.1.0', description: 'Global router and latency-aware SFU allocator' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(allocateRoutes);
  await app.register(roomRoutes);
  await app.register(regionRoutes);
  await app.register(nodeRoutes);
  await app.register(opsRoutes);
  serveMetrics(app, routerMetricsSource(app.services), { host: config.routerHost, port: config.routerMetricsPort, settings: config, tls });
  await app.register(scalingRoutes);
  await app.register(alertRoutes);
  await app.register(dashboardRoutes);
  await app.register(demoGrantRoutes);

  app.addHook('onReady', async () => {
    await lease.start();
    await registry.start(Math.min(config.registryRefreshMs, config.heartbeatIntervalMs));
    prober.start();
    sweeper.start(Math.min(config.expirySweepIntervalMs, config.allocationTtlMs / 2));
    scaling.start(config.scalingIntervalMs);
    quality.start(config.alertIntervalMs);
    rehoming.start();
    replaying.start();
    p2pRelay?.start();
  });
  // Long-lived relay connections would hold the server open.
  app.addHook('preClose', async () => p2pRelay?.close());
  app.addHook('onClose', async () => {
    sessionCloser.close();
    await Promise.all([rehoming.stop(), replaying.stop(), sweeper.stop(), scaling.stop(), quality.stop(), rebalancer.close()]);
    await registry.stop();
    await prober.close();
    await lease.close();
    await deps.sessions.close();
    await Promise.allSettled([deps.rooms.close(), deps.nodes.close()]);
  });
  return app as unknown as RouterApp;
}
