import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { cleanupNamespaces, REDIS_URL, startRouter, testConfig } from '../utils/router-harness.ts';
import { waitFor } from '../utils/wait.ts';

/**
 * A node that keeps heartbeating is alive again within a heartbeat or two after Redis lost its
 * registry record (a failover that lost the last writes, a primary restarted empty, keys deleted):
 * the router writes the registration it knows again with the heartbeat. The fake nodes here never
 * register again on their own (a real agent also would, on `known: false`), so only the router's
 * side is tested. Real Redis, this run's key prefix only.
 */
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  await cleanupNamespaces();
});

it("a heartbeating node whose registry keys Redis lost is alive again within two heartbeats, on every router, without registering again", async () => {
  const config = testConfig('real', { heartbeatIntervalMs: 200, registryRefreshMs: 50 });
  const routers = [await startRouter(config), await startRouter(config)];
  cleanup.push(() => Promise.all(routers.map((r) => r.close())));
  const redis = new Redis(REDIS_URL);
  cleanup.push(() => redis.quit());
  const nodes = new FakeNodes(routers[0]!.url, config.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(config.heartbeatIntervalMs);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west' });
  const stateOn = (i: number) => routers[i]!.app.registry.snapshot().nodes.find((n) => n.nodeId === 'us-west-1')?.state ?? 'absent';
  await waitFor('the node alive on both routers', () => routers.every((_, i) => stateOn(i) === 'alive'), 10_000);

  for (let round = 1; round <= 3; round++) {
    // Lost: the node's record and its heartbeats, as a promoted replica that never got them.
    await redis.del(`${config.redisKeyPrefix}nodes`, `${config.redisKeyPrefix}node-heartbeats`, `${config.redisKeyPrefix}node-beats`);
    const lostAt = Date.now();
    const acks = [];
    // The next heartbeats (the fake's own keep going meanwhile).
    for (let i = 0; i < 2; i++) acks.push(await nodes.heartbeat('us-west-1'));
    expect(acks.map((a) => a.known)).toEqual([true, true]);
    expect(await redis.hexists(`${config.redisKeyPrefix}nodes`, 'us-west-1')).toBe(1);
    await Promise.all(routers.map((r) => r.app.registry.refresh()));
    expect(routers.map((_, i) => stateOn(i))).toEqual(['alive', 'alive']);
    console.log(`round ${round}: registry keys deleted; the next heartbeat was known and both routers see the node alive ${Date.now() - lostAt} ms later`);
  }
  // Still the registration the node made (its URLs), not a made-up one.
  const record = routers[1]!.app.registry.snapshot().nodes.find((n) => n.nodeId === 'us-west-1')!.record;
  expect(record.registration.region).toBe('us-west');
  expect(record.registration.probeUrl).toBe(nodes.probeUrl);
}, 60_000);

it('a node the router deregistered is told to register again (known: false), not re-created', async () => {
  const config = testConfig('real');
  const a = await startRouter(config);
  cleanup.push(() => a.close());
  const redis = new Redis(REDIS_URL);
  cleanup.push(() => redis.quit());
  const nodes = new FakeNodes(a.url, config.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(60_000);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  // Deregistered (the agent left after its drain): the router forgets its registration too.
  await a.app.registry.deregister('eu-west-1');
  expect((await nodes.heartbeat('eu-west-1')).known).toBe(false);
  expect(await redis.hexists(`${config.redisKeyPrefix}nodes`, 'eu-west-1')).toBe(0);
});
