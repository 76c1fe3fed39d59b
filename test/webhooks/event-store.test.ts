import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DegradedJournal } from '../../router/allocation/degraded-journal.ts';
import { AppEvents } from '../../router/webhooks/app-events.ts';
import { MemoryAppEventStore } from '../../router/webhooks/memory-event-store.ts';
import { RedisAppEventStore } from '../../router/webhooks/redis-event-store.ts';
import { TEST_REDIS_URL, TestRedisKeys } from '../utils/test-backends.ts';
import { describeAppEventStoreContract } from './event-store-contract.ts';

const keys = new TestRedisKeys();
afterAll(async () => {
  await keys.cleanup();
});

describeAppEventStoreContract('MemoryAppEventStore', async () => {
  const store = new MemoryAppEventStore();
  return { open: async () => store, close: () => store.close() };
});

describeAppEventStoreContract('RedisAppEventStore', async () => {
  const keyPrefix = keys.prefix();
  const stores: RedisAppEventStore[] = [];
  return {
    open: async () => {
      const store = await RedisAppEventStore.open({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000 });
      stores.push(store);
      return store;
    },
    close: async () => {
      await Promise.all(stores.map((s) => s.close()));
    },
  };
});

describe('RedisAppEventStore on Redis', () => {
  it('keeps nothing of a finished, delivered room but its record, which expires', async () => {
    const keyPrefix = keys.prefix();
    const store = await RedisAppEventStore.open({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000 });
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const at = Date.now();
      let n = 0;
      const events = new AppEvents({ store, journal: new DegradedJournal(), idleTtlMs: 1_000, now: () => at + 1_000, newId: () => `e${++n}`, log: { error() {} } as never, onQueued: () => undefined });
      await events.raise({ kind: 'joined', roomId: 'r', participantId: 'a', allocationId: 'x', region: 'eu-west', nodeId: 'eu-west-1', moveReason: null, atMs: at });
      await events.raise({ kind: 'left', roomId: 'r', participantId: 'a', allocationId: 'x', reason: 'left', atMs: at });
      await events.finishIdleRooms();
      for (let claimed = await store.claim('r', 't', 10_000, at + 1_000); claimed; claimed = await store.claim('r', 't', 10_000, at + 1_000)) {
        await store.ack('r', 't', claimed.entryId, at + 1_000);
      }
      expect(n).toBe(4);
      expect(await redis.keys(`${keyPrefix}*`)).toEqual([`${keyPrefix}appwebhooks:room:r`]);
      expect(await redis.pttl(`${keyPrefix}appwebhooks:room:r`)).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
      await store.close();
    }
  });
});
