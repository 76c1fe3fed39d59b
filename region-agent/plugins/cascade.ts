import fp from 'fastify-plugin';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { cascadeOptionsFromConfig, registerCascade, type AgentCascadeDeps, type Cascade } from '../cascade/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Cross-region cascade (region-agent/cascade/); null when the agent was built without one. */
    agentCascade: Cascade | null;
  }
}

export interface CascadePluginOptions {
  config: GeoSfuConfig;
  /** The agent's rooms (and, for tests and the launcher, hooks); absent: no cascade routes. */
  cascade: AgentCascadeDeps | undefined;
  now: () => number;
}

/** The signed /v1/cascade/* routes and the pipes to the other nodes of the agent's rooms (closed, telling them, with the app). */
export const cascadePlugin = fp<CascadePluginOptions>(
  async (app, { config, cascade, now }) => {
    app.decorate('agentCascade', cascade ? await registerCascade(app, cascadeOptionsFromConfig(config, app.agentSettings, cascade, app.agentRouter, now)) : null);
  },
  { name: 'geo-sfu-agent-cascade', dependencies: ['geo-sfu-agent-control'] },
);
