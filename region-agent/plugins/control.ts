import fp from 'fastify-plugin';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { AgentController } from '../controller.ts';
import { noSfu, type SfuLoadProvider } from '../load.ts';
import { RouterClient } from '../router-client.ts';
import type { AgentSettings } from '../settings.ts';

declare module 'fastify' {
  interface FastifyInstance {
    agentSettings: AgentSettings;
    /** The agent's one client of the router: the controller, the signaling's reports and the cascade share it. */
    agentRouter: RouterClient;
    /** Registration, heartbeats, peer probes, drain. */
    agentController: AgentController;
  }
}

export interface ControlPluginOptions {
  config: GeoSfuConfig;
  settings: AgentSettings;
  /** The SFU's counters; default: the SFU's, else zeros. */
  load: SfuLoadProvider | undefined;
  now: () => number;
}

/** The agent's control plane toward the router: its RouterClient and its controller (closed with the app). */
export const controlPlugin = fp<ControlPluginOptions>(
  async (app, { config, settings, load, now }) => {
    const sfu = app.agentSfu;
    const router = new RouterClient({ routerUrl: config.routerUrl, nodeId: settings.nodeId, clusterSecret: config.clusterSecret, timeoutMs: settings.callTimeoutMs, now });
    const controller = new AgentController({ app, config, settings, router, load: load ?? sfu?.load ?? noSfu, ...(sfu ? { quality: sfu.quality } : {}), now });
    app.decorate('agentSettings', settings);
    app.decorate('agentRouter', router);
    app.decorate('agentController', controller);
  },
  { name: 'geo-sfu-agent-control', dependencies: ['geo-sfu-agent-sfu'] },
);
