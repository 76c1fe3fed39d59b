import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { type Counter, Registry } from 'prom-client';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { CredentialHashes, parseCredentialHashes } from '../shared/credentials.ts';
import { unexpectedErrorsCounter } from '../shared/process-safety.ts';
import { keepRawJsonBody } from '../shared/signed-http.ts';
import { serverTls } from '../shared/tls.ts';
import { AgentController } from './controller.ts';
import { RouterClient } from './router-client.ts';
import { AJV_OPTIONS, BODY_LIMIT_BYTES, errorReplies, failedAuthLimit, httpServerFactory, serveMetrics } from '../shared/http.ts';
import { noSfu, type SfuLoadProvider } from './load.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { agentMetricsSource } from './routes/metrics.ts';
import { resolveAgentSettings } from './settings.ts';
import { cascadeOptionsFromConfig, registerCascade, type AgentCascadeDeps, type Cascade } from './cascade/index.ts';
// --- signaling (SFU + socket.io) ---
import type { AgentSfu } from './sfu.ts';
import { SignalingServer } from './signaling/server.ts';
import { closeSessionRoute } from './signaling/close-route.ts';
import { moveRoute } from './signaling/move-route.ts';
// --- end signaling ---

export type { AgentEvents, AgentStatus } from './controller.ts';
export type { SfuLoad, SfuLoadProvider } from './load.ts';
export { AgentController };

export interface AgentDeps {
  config: GeoSfuConfig;
  /** The SFU's counters and worker usage; an agent without an SFU reports zeros. */
  load?: SfuLoadProvider;
  /** Wall clock, ms: timestamps of signed requests and of the status. */
  now?: () => number;
  /** Default: a pino logger at GEO_SFU_LOG_LEVEL. */
  logger?: FastifyBaseLogger;
  /**
   * The SFU (AgentSfu.create(config)): when given, the agent serves socket.io signaling on its
   * HTTP server, reports the SFU's load (unless `load` is given) and participants' quality, and
   * closes the SFU when it closes.
   */
  sfu?: AgentSfu;
  /** Cross-region cascade (region-agent/cascade/): the agent's rooms. Absent: no cascade routes. */
  cascade?: AgentCascadeDeps;
}

export interface Agent {
  app: FastifyInstance;
  controller: AgentController;
  /** geo_sfu_unexpected_errors_total on this agent's /metrics (counted by the process, region-agent/run.ts). */
  unexpectedErrors: Counter<'kind'>;
  /** Present when the agent runs an SFU. */
  signaling?: SignalingServer;
  /** Present when deps.cascade was given. */
  cascade?: Cascade;
}

/**
 * Builds a region agent: its HTTP API and the controller that registers it with the router,
 * heartbeats, probes its peers and drains. Nothing listens or calls out until `controller.start()`.
 * Throws ConfigError (naming the variables) when the configuration cannot run an agent.
 */
export async function buildAgent(deps: AgentDeps): Promise<Agent> {
  const { config } = deps;
  const settings = resolveAgentSettings(config);
  const now = deps.now ?? Date.now;
  const tls = serverTls(config);
  // Over TLS the server is an https.Server: the routes and socket.io attach to it the same way.
  // Timeouts and the connection cap (GEO_SFU_HTTP_*) cover /probe and signaling too.
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: { level: config.logLevel } }),
    serverFactory: httpServerFactory(config, tls),
    // Bad input is refused and named, never silently dropped or converted.
    ajv: AJV_OPTIONS,
    bodyLimit: BODY_LIMIT_BYTES,
  }) as unknown as FastifyInstance;
  keepRawJsonBody(app);
  const { sfu } = deps;
  // The agent's one client of the router: long enough a timeout for a busy router, short enough that a stuck call costs a couple of heartbeats.
  const router = new RouterClient({ routerUrl: config.routerUrl, nodeId: settings.nodeId, clusterSecret: config.clusterSecret, timeoutMs: Math.max(1_000, 2 * config.heartbeatIntervalMs), now });
  const controller = new AgentController({ app, config, settings, router, load: deps.load ?? sfu?.load ?? noSfu, ...(sfu ? { quality: sfu.quality } : {}), now });
  await app.register(errorReplies);
  await app.register(failedAuthLimit, { perMinute: config.failedAuthPerMinute, now });
  const admin = new CredentialHashes([config.adminToken], parseCredentialHashes(config.adminTokenHash));
  // In production mode /status (router and peer URLs, load) is for operators only.
  await app.register(healthRoutes, { controller, ...(config.production ? { statusAdmin: admin } : {}) });
  await app.register(adminRoutes, {
    controller,
    admin,
    clusterSecret: config.clusterSecret,
    signedRequestWindowMs: config.signedRequestWindowMs,
    now,
  });
  // --- cascade (region-agent/cascade/): signed /v1/cascade/* routes + pipes to the room's other nodes ---
  const cascade = deps.cascade ? await registerCascade(app, cascadeOptionsFromConfig(config, settings, deps.cascade, router, now)) : undefined;
  // --- end cascade ---
  const metricsRegistry = new Registry();
  const unexpectedErrors = unexpectedErrorsCounter(metricsRegistry);
  serveMetrics(app, agentMetricsSource({ registry: metricsRegistry, controller, ...(sfu ? { sfu } : {}), cascadeLinks: () => cascade?.links() ?? [] }), {
    host: config.agentHost,
    port: config.agentMetricsPort,
    settings: config,
    tls,
  });
  // --- signaling (SFU + socket.io) ---
  let signaling: SignalingServer | undefined;
  if (sfu) {
    const server = new SignalingServer({ httpServer: app.server, sfu, config, controller, router, logger: app.log, now });
    await app.register(moveRoute, { signaling: server, clusterSecret: config.clusterSecret, signedRequestWindowMs: config.signedRequestWindowMs, now });
    await app.register(closeSessionRoute, { signaling: server, clusterSecret: config.clusterSecret, signedRequestWindowMs: config.signedRequestWindowMs, now });
    app.addHook('preClose', async () => server.close());
    app.addHook('onClose', async () => sfu.close());
    signaling = server;
  }
  // --- end signaling ---
  return { app, controller, unexpectedErrors, ...(cascade ? { cascade } : {}), ...(signaling ? { signaling } : {}) };
}
