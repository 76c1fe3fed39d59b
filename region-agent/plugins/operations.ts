import fp from 'fastify-plugin';
import { type Counter, Registry } from 'prom-client';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { CredentialHashes, parseCredentialHashes } from '../../shared/credentials.ts';
import { serveMetrics } from '../../shared/http.ts';
import { unexpectedErrorsCounter } from '../../shared/process-safety.ts';
import type { serverTls } from '../../shared/tls.ts';
import { adminRoutes } from '../routes/admin.ts';
import { healthRoutes } from '../routes/health.ts';
import { agentMetricsSource } from '../routes/metrics.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** geo_sfu_unexpected_errors_total on this agent's /metrics (counted by the process, region-agent/run.ts). */
    agentUnexpectedErrors: Counter<'kind'>;
  }
}

export interface OperationsPluginOptions {
  config: GeoSfuConfig;
  tls: ReturnType<typeof serverTls>;
  now: () => number;
}

/** Probe, health and status; the operator's admin routes; /metrics (on the main port or a listener of its own). */
export const operationsPlugin = fp<OperationsPluginOptions>(
  async (app, { config, tls, now }) => {
    const controller = app.agentController;
    const admin = new CredentialHashes([config.adminToken], parseCredentialHashes(config.adminTokenHash));
    // In production mode /status (router and peer URLs, load) is for operators only.
    await app.register(healthRoutes, { controller, ...(config.production ? { statusAdmin: admin } : {}) });
    await app.register(adminRoutes, { controller, admin, clusterSecret: config.clusterSecret, signedRequestWindowMs: config.signedRequestWindowMs, now });
    const registry = new Registry();
    app.decorate('agentUnexpectedErrors', unexpectedErrorsCounter(registry));
    const { agentSfu: sfu, agentCascade: cascade } = app;
    serveMetrics(app, agentMetricsSource({ registry, controller, ...(sfu ? { sfu } : {}), cascadeLinks: () => cascade?.links() ?? [], ...(cascade ? { pipeConditioner: () => cascade.conditionerStats() } : {}) }), {
      host: config.agentHost,
      port: config.agentMetricsPort,
      settings: config,
      tls,
    });
  },
  { name: 'geo-sfu-agent-operations', dependencies: ['geo-sfu-agent-sfu', 'geo-sfu-agent-control', 'geo-sfu-agent-cascade'] },
);
