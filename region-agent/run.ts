/**
 * Runs a region agent in this process (region-agent/main.ts; the embedded launcher's WAN
 * emulation adds a pipe-endpoint rewrite, and may create the SFU itself), configured by GEO_SFU_*
 * (GEO_SFU_CLUSTER_SECRET and GEO_SFU_AGENT_REGION are required). SIGTERM or SIGINT drains it:
 * it takes no new rooms, waits for the last participant (at most GEO_SFU_DRAIN_DEADLINE_MS),
 * deregisters and exits 0. A second signal exits at once. It runs the SFU (GEO_SFU_SFU_WORKERS
 * mediasoup workers) and serves socket.io signaling on its HTTP port.
 */
import { type GeoSfuConfig, loadConfig } from '../shared/config/index.ts';
import { ConfigError } from '../shared/errors.ts';
import { installProcessSafety } from '../shared/process-safety.ts';
import { trustCaForOutgoingCalls } from '../shared/tls.ts';
import { buildAgent } from './app.ts';
import type { EndpointRewrite } from './cascade/index.ts';
import { resolveAgentSettings } from './settings.ts';
import { AgentSfu } from './sfu.ts';

export interface RunAgentOptions {
  /** Where the cascade's pipes send instead of the other side's endpoint (the launcher's relays). */
  rewriteRemoteEndpoint?: EndpointRewrite;
  /** Creates the SFU instead of AgentSfu.create(config) (the launcher's client media relays). */
  createSfu?: (config: GeoSfuConfig) => Promise<AgentSfu>;
}

async function start({ rewriteRemoteEndpoint, createSfu = (config) => AgentSfu.create(config) }: RunAgentOptions): Promise<void> {
  const config = loadConfig();
  trustCaForOutgoingCalls(config.tlsCaFile);
  // The SFU (mediasoup workers) and its signaling; closed with the agent.
  resolveAgentSettings(config); // a bad configuration stops the agent before workers start
  const sfu = await createSfu(config);
  // Rooms that span regions are piped to the other regions' nodes (region-agent/cascade/).
  const { app, controller, unexpectedErrors } = await buildAgent({ config, sfu, cascade: { rooms: sfu.rooms, ...(rewriteRemoteEndpoint ? { rewriteRemoteEndpoint } : {}) } });
  installProcessSafety({ name: `region agent ${controller.nodeId}`, logger: app.log, count: (kind) => unexpectedErrors.inc({ kind }), close: () => app.close() });
  controller.once('close', () => process.exit(0));

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      app.log.warn({ signal }, 'second signal: exiting without waiting for the drain');
      process.exit(1);
    }
    signalled = true;
    app.log.info({ signal }, 'draining before exit');
    controller.drain().catch((err: unknown) => {
      app.log.error({ err }, 'drain failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const url = await controller.start();
  app.log.info(
    { nodeId: controller.nodeId, region: controller.region, url, probe: `${url}/probe`, metrics: `${url}/metrics`, status: `${url}/status`, routerUrl: config.routerUrl },
    `region agent ${controller.nodeId} (${controller.region}) listening on ${url}`,
  );
}

/** Starts the agent; a failure to start is printed and ends the process (exit 1). */
export function runAgent(options: RunAgentOptions = {}): void {
  start(options).catch((err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`region agent failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
