import { afterAll } from 'vitest';
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
