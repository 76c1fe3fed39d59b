import fp from 'fastify-plugin';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { AgentController, type HeartbeatReport } from '../controller.ts';
import { noSfu, type SfuLoadProvider } from '../load.ts';
import { RouterClient } from '../router-client.ts';
import type { AgentSettings } from '../settings.ts';
import type { NodeRegistration } from '../../shared/schemas/index.ts';

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
    // The cascade and signaling plugins register after this one: read at each heartbeat.
    const report = async (): Promise<HeartbeatReport> => {
      const [clients, links] = await Promise.all([sfu!.quality(), app.agentCascade?.linkMedia() ?? []]);
      return {
        quality: clients.participants,
        media: {
          inBps: clients.inBps + links.reduce((sum, l) => sum + l.inBps, 0),
          outBps: clients.outBps + links.reduce((sum, l) => sum + l.outBps, 0),
          links,
        },
        reconnecting: app.agentSignaling?.reconnecting() ?? [],
      };
    };
    const controller = new AgentController({
      app,
      config,
      settings,
      router,
      load: load ?? sfu?.load ?? noSfu,
      ...(sfu ? { report, rtpCapabilities: async () => (await sfu.rooms.rtpCapabilities()) as unknown as NonNullable<NodeRegistration['rtpCapabilities']> } : {}),
      now,
    });
    app.decorate('agentSettings', settings);
    app.decorate('agentRouter', router);
    app.decorate('agentController', controller);
  },
  { name: 'geo-sfu-agent-control', dependencies: ['geo-sfu-agent-sfu'] },
);
