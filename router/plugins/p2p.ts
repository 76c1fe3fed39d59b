import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import { P2pAllocator } from '../p2p/p2p-allocator.ts';
import { P2pRelay } from '../p2p/relay.ts';
import { RedisRelayBus } from '../p2p/relay-bus.ts';
import { redisTarget } from '../state/redis-client.ts';
import { createStrategy } from '../placement/index.ts';

/**
 * The P2P fallback (GEO_SFU_P2P_FALLBACK): its side of allocation, and the signaling relay on the
 * router's port, which moves a room's peers to the SFU once a region can take it.
 */
export const p2pPlugin = fp(
  async (app) => {
    const { config, registry, rooms, sessions, metrics, now } = app;
    if (!config.p2pFallback) {
      app.decorate('p2pAllocator', null);
      app.decorate('p2pRelay', null);
      return;
    }
    const allocator = new P2pAllocator({ config, registry, rooms, sessions, strategy: createStrategy(config.placementStrategy), now, newId: randomUUID });
    // With Redis, the relays of all router replicas act as one (router/p2p/relay-bus.ts).
    const redis = redisTarget(config);
    const bus = redis ? await RedisRelayBus.open({ ...redis, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisTimeoutMs, presenceTtlMs: config.p2pLeaseMs, logger: app.log }) : null;
    const relay = new P2pRelay({ httpServer: app.server, config, rooms, sessions, canHost: (room) => allocator.canHost(room), metrics, logger: app.log, now, bus });
    app.decorate('p2pAllocator', allocator);
    app.decorate('p2pRelay', relay);
    app.addHook('onReady', async () => {
      await bus?.listen((message) => relay.receive(message));
      relay.start();
    });
    // Long-lived relay connections would hold the server open.
    app.addHook('preClose', async () => {
      await relay.close();
      await bus?.close();
    });
  },
  { name: 'p2p', dependencies: ['stores', 'registry'] },
);
