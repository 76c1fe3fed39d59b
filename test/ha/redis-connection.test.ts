import { afterAll, expect, it } from 'vitest';
import { closeRedis, connectRedis, redisTarget } from '../../router/state/redis-client.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { SENTINEL_GROUP, startSentinelGroup, until } from '../utils/sentinel-group.ts';

/**
 * The failover benchmark's "node dead for more than a minute" (bench/redis-failover.ts, 3 runs in
 * 5): ioredis ends a Sentinel connection for good (status `end`, every command refused) when its
 * failover detector, told `+switch-master` by a sentinel, disconnects the connector while the
 * connector is still asking a sentinel for the primary (a reconnect after the old primary died). It
 * hit the registry connection of the router the node heartbeats to: no heartbeat landed again.
 * Reproduced here without timing luck: the sentinels are paused so the connector's question hangs,
 * the detector's disconnect comes meanwhile (what `+switch-master` triggers), then the sentinels
 * answer. The router's connections (connectRedis) connect again after such an end.
 */
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

it('a Sentinel connection that ioredis ends during a failover (detector vs reconnect race) connects again and serves commands', async () => {
  const group = await startSentinelGroup();
  cleanup.push(() => group.close());
  const config = loadConfig({ GEO_SFU_REDIS_SENTINELS: group.sentinels, GEO_SFU_REDIS_SENTINEL_NAME: SENTINEL_GROUP });
  const redis = await connectRedis({ ...redisTarget(config)!, timeoutMs: 1_000, connectionName: 'test:race' });
  cleanup.push(() => closeRedis(redis));
  const ends: number[] = [];
  redis.on('end', () => ends.push(Date.now()));
  await redis.set('race:key', 'before');
  // ioredis internals: the connector and its failover detector (what +switch-master calls).
  const connector = (redis as unknown as { connector: { connecting: boolean; failoverDetector: { disconnect(): void } | null } }).connector;
  await until('failover detector subscribed', async () => (connector.failoverDetector ? true : null));
  const detector = connector.failoverDetector!;

  // The sentinels stop answering; the connection drops (as when its primary dies) and its reconnect
  // hangs on the question to a sentinel.
  const sentinels = group.sentinelPorts.map((port) => group.sentinel(port));
  for (const s of sentinels) s.kill('SIGSTOP');
  try {
    redis.disconnect(true);
    await until('reconnect asking a sentinel', async () => (redis.status === 'connecting' && connector.connecting ? true : null), 10_000);
    detector.disconnect();
  } finally {
    for (const s of sentinels) s.kill('SIGCONT');
  }
  // ioredis alone would stay `end` from here on.
  await until('connection ended by the race', async () => (ends.length > 0 ? true : null), 10_000);
  await until('connection serving again', async () => ((await redis.get('race:key')) === 'before' ? true : null), 20_000);
  console.log(`ioredis ended the connection ${ends.length} time(s); connectRedis connected it again and it serves commands`);
  expect(redis.status).toBe('ready');
}, 90_000);
