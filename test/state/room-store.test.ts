import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRoomStore } from '../../router/state/memory-room-store.ts';
import { ALLOCATE } from '../../router/state/redis-room-scripts.ts';
import { RedisRoomStore } from '../../router/state/redis-room-store.ts';
import type { RoomStore } from '../../router/state/types.ts';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';
import { TEST_REDIS_URL, TestRedisKeys } from '../utils/test-backends.ts';
import { allocation, describeRoomStoreContract, participant } from './room-store-contract.ts';

const keys = new TestRedisKeys();
afterAll(async () => {
  await keys.cleanup();
});

describeRoomStoreContract('MemoryRoomStore', async ({ roomIdleTtlMs }) => {
  const store = new MemoryRoomStore({ roomIdleTtlMs });
  return { open: async () => store, close: () => store.close() };
});

describeRoomStoreContract('RedisRoomStore', async ({ roomIdleTtlMs }) => {
  const keyPrefix = keys.prefix();
  const stores: RedisRoomStore[] = [];
  return {
    open: async () => {
      const store = await RedisRoomStore.open({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000, roomIdleTtlMs });
      stores.push(store);
      return store;
    },
    close: async () => {
      await Promise.all(stores.map((store) => store.close()));
    },
  };
});

describe('RedisRoomStore on Redis', () => {
  let redis: Redis;
  const opened: Array<{ close(): Promise<void> }> = [];
  const open = async (options: { url?: string; keyPrefix: string; timeoutMs?: number }): Promise<RedisRoomStore> => {
    const store = await RedisRoomStore.open({ url: TEST_REDIS_URL, timeoutMs: 2_000, roomIdleTtlMs: 60_000, ...options });
    opened.push(store);
    return store;
  };

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((resource) => resource.close()));
  });
  afterAll(() => {
    redis.disconnect();
  });

  it('uses the documented key layout and runs its scripts by EVALSHA', async () => {
    const prefix = keys.prefix();
    const store = await open({ keyPrefix: prefix });
    await store.allocate(allocation('r1', participant('alice', 'us-east-1')));

    expect(await redis.hgetall(`${prefix}room:r1`)).toEqual({ home: 'us-east', homeNode: 'us-east-1', epoch: '0', createdAt: String(1_700_000_000_000), version: '1' });
    expect(await redis.get(`${prefix}roomversion`)).toBe('1');
    const stored = await redis.hgetall(`${prefix}room:r1:participants`);
    expect(JSON.parse(stored.alice!)).toEqual(participant('alice', 'us-east-1'));
    expect(await redis.hgetall(`${prefix}nodecount`)).toEqual({ 'us-east-1': '1' });
    expect(await redis.smembers(`${prefix}rooms`)).toEqual(['r1']);
    expect(await redis.zrange(`${prefix}allocations:pending`, 0, -1, 'WITHSCORES')).toEqual(['["r1","alice"]', '1700000030000']);
    const sha = createHash('sha1').update(ALLOCATE).digest('hex');
    expect(await redis.script('EXISTS', sha)).toEqual([1]);

    // An empty room carries the idle TTL; an allocation takes it away again.
    expect(await redis.pttl(`${prefix}room:r1`)).toBe(-1);
    await store.removeParticipant('r1', 'alice');
    expect(await redis.exists(`${prefix}room:r1:participants`)).toBe(0);
    expect(await redis.pttl(`${prefix}room:r1`)).toBeGreaterThan(50_000);
    await store.allocate(allocation('r1', participant('bob', 'us-east-1'), { expectedHomeRegion: 'us-east' }));
    expect(await redis.pttl(`${prefix}room:r1`)).toBe(-1);
  });

  it('a room hash without a version (written before versions existed) is at version 0 until it changes', async () => {
    const prefix = keys.prefix();
    const store = await open({ keyPrefix: prefix });
    await redis.hset(`${prefix}room:old`, { home: 'us-east', homeNode: 'us-east-1', epoch: '0', createdAt: '1' });
    expect((await store.getRoom('old'))?.version).toBe(0);
    // Version 0 with no home is "no such room": the home check still sees the room.
    const asNew = await store.allocate(allocation('old', participant('alice', 'us-east-1'), { expectedVersion: 0 }));
    expect(asNew).toMatchObject({ status: 'stale', current: { version: 0, room: { homeRegion: 'us-east' } } });
    const ok = await store.allocate(allocation('old', participant('alice', 'us-east-1'), { expectedHomeRegion: 'us-east', expectedVersion: 0 }));
    expect(ok).toMatchObject({ status: 'ok', previousVersion: 0 });
    expect((await store.getRoom('old'))?.version).toBeGreaterThan(0);
  });

  it('removes the id of an expired room from the room-id set when listing', async () => {
    const prefix = keys.prefix();
    const store = await open({ keyPrefix: prefix });
    await store.allocate(allocation('gone', participant('alice', 'us-east-1')));
    await store.allocate(allocation('kept', participant('bob', 'us-east-1')));
    await redis.del(`${prefix}room:gone`);
    expect(await store.listRoomIds()).toEqual(['kept']);
    expect(await redis.smembers(`${prefix}rooms`)).toEqual(['kept']);
  });

  describe('with Redis away (through a fault-injecting proxy)', () => {
    let proxy: TcpFaultProxy;
    beforeAll(async () => {
      proxy = await TcpFaultProxy.start('127.0.0.1', 6379);
    });
    afterAll(async () => {
      await proxy.close();
    });

    /** Runs a call that must fail fast with DependencyUnavailableError; returns how long it took. */
    async function failsFast(call: () => Promise<unknown>): Promise<number> {
      const started = performance.now();
      await expect(call()).rejects.toBeInstanceOf(DependencyUnavailableError);
      const elapsed = performance.now() - started;
      expect(elapsed).toBeLessThan(2_000);
      return elapsed;
    }

    async function untilAvailable(store: RoomStore): Promise<void> {
      for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
        try {
          await store.nodeCounts();
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    }

    it('rejects within the command timeout instead of hanging, and keeps its state', async () => {
      const prefix = keys.prefix();
      const direct = await open({ keyPrefix: prefix });
      const proxied = await open({ keyPrefix: prefix, url: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 300 });
      await proxied.allocate(allocation('r1', participant('alice', 'us-east-1')));
      await proxied.allocate(allocation('r1', participant('bob', 'us-east-2'), { expectedHomeRegion: 'us-east' }));
      const before = { room: await direct.getRoom('r1'), counts: await direct.nodeCounts() };

      // Connections refused: every call fails at once.
      proxy.cut();
      await failsFast(() => proxied.getRoom('r1'));
      await failsFast(() => proxied.allocate(allocation('r1', participant('carol', 'us-east-1'), { expectedHomeRegion: 'us-east' })));
      await failsFast(() => proxied.markJoined('r1', 'alice', 'alloc-alice'));
      await failsFast(() => proxied.expireAllocations(Date.now()));
      proxy.restore();
      await untilAvailable(proxied);

      // Connected but Redis answers too late: the command timeout fires. (Reads only: a write
      // that timed out for its caller may still reach Redis later.)
      proxy.delay(1_500);
      expect(await failsFast(() => proxied.nodeCounts())).toBeGreaterThanOrEqual(250);
      await failsFast(() => proxied.getRoom('r1'));
      proxy.restore();

      expect(await direct.getRoom('r1')).toEqual(before.room);
      expect(await direct.nodeCounts()).toEqual(before.counts);
      await untilAvailable(proxied);
      expect(await proxied.getRoom('r1')).toEqual(before.room);
    });

    it('fails to open fast when Redis cannot be reached', async () => {
      proxy.cut();
      try {
        await failsFast(() => open({ keyPrefix: keys.prefix(), url: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 300 }));
      } finally {
        proxy.restore();
      }
    });
  });
});
