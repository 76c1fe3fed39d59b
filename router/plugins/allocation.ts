import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import fp from 'fastify-plugin';
import { Ticker } from '../../shared/ticker.ts';
import { Allocator } from '../allocation/allocate.ts';
import { DegradedAllocator } from '../allocation/degraded.ts';
import { DegradedJournal } from '../allocation/degraded-journal.ts';
import { ExpirySweeper } from '../allocation/expiry-sweeper.ts';
import { KnownRooms } from '../allocation/known-rooms.ts';
import type { GeoLookup } from '../geo.ts';
import { createStrategy } from '../placement/index.ts';
import { redisTarget } from '../state/redis-client.ts';

/** Participants (in all rooms) whose placement the router remembers: about 100 bytes each. */
const KNOWN_PARTICIPANTS = 100_000;

export interface AllocationOptions {
  geoLookup: GeoLookup;
}

/**
 * POST /allocate's allocator (the loop wrapped for Redis outages), the replay of allocations made while Redis was away (every
 * GEO_SFU_JOURNAL_REPLAY_INTERVAL_MS while any wait) and the expiry of allocations never joined.
 */
export const allocationPlugin = fp<AllocationOptions>(
  async (app, { geoLookup }) => {
    const { config, registry, rooms, sessions, scaling, sessionCloser, roomNodes, metrics, isLeader, now, p2pAllocator, p2pRelay } = app;
    const strategy = createStrategy(config.placementStrategy);
    const knownRooms = new KnownRooms(KNOWN_PARTICIPANTS);
    const loop = new Allocator({
      config,
      registry,
      rooms,
      sessions,
      strategy,
      geoLookup,
      knownRooms,
      p2p: p2pAllocator,
      now,
      newId: randomUUID,
      onDecision: (outcome, ms, placed) => {
        metrics.allocations.inc({ outcome });
        metrics.placementSeconds.observe(ms / 1000);
        if (placed) scaling.observeAllocation(placed.region, placed.clientRttMs, outcome === 'overflow' ? placed.homeRegion : null);
      },
      onP2pEnded: (roomId) => {
        metrics.p2pMigrations.inc();
        p2pRelay?.migrate(roomId, 'region_available');
      },
      onRoomNodesChanged: (roomId, formerNodeIds, known) => roomNodes.changed(roomId, formerNodeIds, known),
    });
    // On disk when there is a Redis to wait for (router/allocation/degraded-journal.ts).
    const journal = redisTarget(config)
      ? await DegradedJournal.open({ dir: config.journalDir || path.join(os.tmpdir(), 'geo-sfu-journal'), deployment: config.redisKeyPrefix, maxBytes: config.journalMaxBytes })
      : DegradedJournal.inMemory();
    const allocator = new DegradedAllocator({
      config,
      loop,
      registry,
      rooms,
      sessions,
      strategy,
      knownRooms,
      journal,
      now,
      onDegradedAllocation: () => metrics.degradedAllocations.inc(),
      onReplayed: (result) => metrics.journalReplays.inc({ result }),
    });
    // Allocations made while Redis was away reach it soon after it is back, even with no new /allocate.
    const replaying = new Ticker(
      config.journalReplayIntervalMs,
      async () => {
        if (allocator.journalSize() > 0) await allocator.replayJournal();
      },
      (err) => app.log.debug({ err }, 'degraded journal not replayed yet'),
      { unref: true },
    );
    const sweeper = new ExpirySweeper({
      rooms,
      sessions,
      now,
      isLeader,
      onExpired: (n) => metrics.expiredAllocations.inc(n),
      onOrphanedSessions: (roomId, participantId, nodeIds) => void sessionCloser.closeOn(nodeIds, { roomId, participantId, reason: 'expired' }),
      onRemoved: (roomId, nodeId) => roomNodes.changed(roomId, [nodeId]),
    });
    app.decorate('allocator', allocator);
    app.addHook('onReady', async () => {
      sweeper.start(Math.min(config.expirySweepIntervalMs, config.allocationTtlMs / 2));
      replaying.start();
      // Allocations a previous run (or a dead replica) journaled go to Redis first, if it answers.
      if (allocator.journalSize() > 0) {
        app.log.info({ allocations: allocator.journalSize() }, 'degraded journal adopted from disk');
        await allocator.replayJournal().catch((err: unknown) => app.log.warn({ err }, 'degraded journal not replayed at start (Redis away)'));
      }
    });
    app.addHook('onClose', async () => {
      await Promise.all([replaying.stop(), sweeper.stop()]);
      await journal.close();
    });
  },
  { name: 'allocation', dependencies: ['stores', 'registry', 'operations', 'p2p'] },
);
