import { afterAll } from 'vitest';
import { MemoryNodeRegistry } from '../../router/state/memory-node-registry.ts';
import { RedisNodeRegistry } from '../../router/state/redis-node-registry.ts';
import { TEST_REDIS_URL, TestRedisKeys } from '../utils/test-backends.ts';
import { describeNodeRegistryContract } from './node-registry-contract.ts';

const keys = new TestRedisKeys();
afterAll(async () => {
  await keys.cleanup();
});

describeNodeRegistryContract('MemoryNodeRegistry', async () => {
  const registry = new MemoryNodeRegistry();
  return { open: async () => registry, close: () => registry.close() };
});

describeNodeRegistryContract('RedisNodeRegistry', async () => {
  const keyPrefix = keys.prefix();
  const registries: RedisNodeRegistry[] = [];
  return {
    open: async () => {
      const registry = await RedisNodeRegistry.open({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000 });
      registries.push(registry);
      return registry;
    },
    close: async () => {
      await Promise.all(registries.map((registry) => registry.close()));
    },
  };
});
