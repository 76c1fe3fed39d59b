import fp from 'fastify-plugin';
import { P2pRelay } from '../p2p/relay.ts';

/** The P2P fallback's signaling relay on the router's port, when GEO_SFU_P2P_FALLBACK is on. */
export const p2pPlugin = fp(
  async (app) => {
    const { config, rooms, sessions, allocator, metrics, now } = app;
    const relay = config.p2pFallback
      ? new P2pRelay({ httpServer: app.server, config, rooms, sessions, canHost: (room) => allocator.canHost(room), metrics, logger: app.log, now })
      : null;
    app.decorate('p2pRelay', relay);
    if (!relay) return;
    app.addHook('onReady', async () => relay.start());
    // Long-lived relay connections would hold the server open.
    app.addHook('preClose', () => relay.close());
  },
  { name: 'p2p', dependencies: ['stores', 'allocation'] },
);
