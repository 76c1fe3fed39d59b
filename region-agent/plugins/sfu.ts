import fp from 'fastify-plugin';
import type { AgentSfu } from '../sfu.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The agent's SFU (mediasoup workers and rooms); null for an agent without one (tests). */
    agentSfu: AgentSfu | null;
  }
}

/** The SFU the agent runs: closed when the agent closes, after everything that uses it. */
export const sfuPlugin = fp<{ sfu: AgentSfu | undefined }>(
  async (app, { sfu }) => {
    app.decorate('agentSfu', sfu ?? null);
    // Registered first, its onClose runs last (fastify runs them in reverse order).
    if (sfu) app.addHook('onClose', async () => sfu.close());
  },
  { name: 'geo-sfu-agent-sfu' },
);
