import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
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

it('RedisNodeRegistry: a heartbeat written by a router of the version before node-beats (the heartbeat alone) is read within 16 reads', async () => {
  const keyPrefix = keys.prefix();
  const registry = await RedisNodeRegistry.open({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000 });
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const base = { nodeId: 'n1', region: 'us-east', controlUrl: 'http://127.0.0.1:9', signalingUrl: 'http://127.0.0.1:9', probeUrl: 'http://127.0.0.1:9', maxParticipants: 10, version: 'test' };
    await registry.register(base, 1_000);
    const beat = (seq: number) => ({ nodeId: 'n1', seq, load: { cpu: 0, memory: 0, participants: seq, rooms: 0, transports: 0, producers: 0, consumers: 0, workers: 1 }, draining: false, cordoned: false, maxParticipants: 10, peerRtt: {} });
    await registry.heartbeat(beat(1), 1_001);
    expect((await registry.list())[0]!.heartbeat?.seq).toBe(1);
    // The older script: the heartbeat hash only (its beat stays at seq 1).
    await redis.hset(`${keyPrefix}node-heartbeats`, 'n1', JSON.stringify({ seq: 2, lastHeartbeatMs: 1_002, heartbeat: beat(2) }));
    const seqs: Array<number | undefined> = [];
    for (let read = 0; read < 16; read++) seqs.push((await registry.list())[0]!.heartbeat?.seq);
    expect(seqs.at(-1)).toBe(2);
    // And a newer heartbeat through this router still lands (its seq compared on the beat).
    await registry.heartbeat(beat(3), 1_003);
    expect((await registry.list())[0]!.heartbeat?.seq).toBe(3);
  } finally {
    redis.disconnect();
    await registry.close();
  }
});
