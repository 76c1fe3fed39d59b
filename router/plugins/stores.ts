import fp from 'fastify-plugin';
import type { LeaderLease } from '../state/leader-lease.ts';
import type { NodeRegistryStore, RoomStore, SessionLog } from '../state/types.ts';

export interface StoresOptions {
  /** Opened and started stores (see createStores): closed when the router closes. */
  rooms: RoomStore;
  nodes: NodeRegistryStore;
  sessions: SessionLog;
  /** Who runs background duties among router replicas. */
  lease: LeaderLease;
}

/** The shared state: room store, node registry store, session log and the leader lease. Closed last. */
export const storesPlugin = fp<StoresOptions>(
  async (app, { rooms, nodes, sessions, lease }) => {
    app.decorate('rooms', rooms);
    app.decorate('nodeStore', nodes);
    app.decorate('sessions', sessions);
    app.decorate('isLeader', () => lease.isLeader());
    app.addHook('onReady', () => lease.start());
    app.addHook('onClose', async () => {
      await lease.close();
      await sessions.close();
      await Promise.allSettled([rooms.close(), nodes.close()]);
    });
  },
  { name: 'stores' },
);
