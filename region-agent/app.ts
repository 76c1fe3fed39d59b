import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { AJV_OPTIONS, BODY_LIMIT_BYTES, errorReplies, failedAuthLimit, httpServerFactory } from '../shared/http.ts';
import { keepRawJsonBody } from '../shared/signed-http.ts';
import { serverTls } from '../shared/tls.ts';
import type { AgentCascadeDeps, Cascade } from './cascade/index.ts';
import { AgentController } from './controller.ts';
import type { SfuLoadProvider } from './load.ts';
import { cascadePlugin } from './plugins/cascade.ts';
import { controlPlugin } from './plugins/control.ts';
import { operationsPlugin } from './plugins/operations.ts';
import { sfuPlugin } from './plugins/sfu.ts';
import { signalingPlugin } from './plugins/signaling.ts';
import { resolveAgentSettings } from './settings.ts';
import type { AgentSfu } from './sfu.ts';
import type { SignalingServer } from './signaling/server.ts';

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
 * Builds a region agent from its plugins (region-agent/plugins/): the SFU, the control plane
 * (RouterClient and controller: registration, heartbeats, probes, drain), the cascade, signaling,
 * and the operator's routes. Nothing listens or calls out until `controller.start()`.
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
  await app.register(errorReplies);
  await app.register(failedAuthLimit, { perMinute: config.failedAuthPerMinute, now });
  await app.register(sfuPlugin, { sfu: deps.sfu });
  await app.register(controlPlugin, { config, settings, load: deps.load, now });
  await app.register(cascadePlugin, { config, cascade: deps.cascade, now });
  await app.register(signalingPlugin, { config, now });
  await app.register(operationsPlugin, { config, tls, now });
  const { agentController: controller, agentUnexpectedErrors: unexpectedErrors, agentCascade: cascade, agentSignaling: signaling } = app;
  return { app, controller, unexpectedErrors, ...(cascade ? { cascade } : {}), ...(signaling ? { signaling } : {}) };
}
