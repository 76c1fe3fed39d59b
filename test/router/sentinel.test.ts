import { afterAll, expect, it } from 'vitest';
import { redisTarget } from '../../router/state/redis-client.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate, type AllocateResult } from '../utils/http.ts';
import { cleanupNamespaces, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { SENTINEL_GROUP, startSentinelGroup, until } from '../utils/sentinel-group.ts';

/**
 * Redis behind Sentinel (GEO_SFU_REDIS_SENTINELS), with servers the test starts on spare ports: a
 * primary, a replica and three sentinels (down-after-milliseconds 1000). Two routers allocate
 * steadily; the primary is SIGKILLed; the sentinels promote the replica and both routers follow
 * without a restart: every refusal meanwhile is a 503 with Retry-After, and allocations succeed again.
 */
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  await cleanupNamespaces();
});

it('two routers follow a Sentinel failover without a restart: refusals meanwhile are 503 with Retry-After, then allocations succeed again', async () => {
  const group = await startSentinelGroup();
  cleanup.push(() => group.close());
  const primaryPort = await group.primaryPort();
  const [replicaPort] = group.dataNodePorts.filter((p) => p !== primaryPort);

  const config = testConfig('real', {
    redisUrl: '',
    redisSentinels: group.sentinels,
    redisSentinelName: SENTINEL_GROUP,
    redisTimeoutMs: 1_000,
    maxParticipantsPerNode: 100_000,
  });
  const routers: RunningRouter[] = [];
  for (let i = 0; i < 2; i++) routers.push(await startRouter(config));
  cleanup.push(() => Promise.all(routers.map((r) => r.close())));
  const nodes = new FakeNodes(routers[0]!.url, config.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 100_000 });
  await Promise.all(routers.map((r) => r.app.registry.refresh()));

  // Steady allocations, each for a new room (a known room would be served in degraded mode, which
  // would hide whether Redis answers), alternating between the routers.
  const calls: Array<{ atMs: number; router: number; result: AllocateResult }> = [];
  let running = true;
  let n = 0;
  const load = (async () => {
    while (running) {
      const i = n++;
      const result = await allocate(routers[i % 2]!.url, { roomId: `room-${i}`, participantId: 'p', latencies: { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 } });
      calls.push({ atMs: Date.now(), router: i % 2, result });
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await until('allocations before the kill', async () => (calls.filter((c) => c.result.status === 200).length >= 20 ? true : null));

  group.dataNode(primaryPort).kill('SIGKILL');
  const killedAt = Date.now();
  // Back on both routers: the last 10 calls of each succeed.
  await until('both routers allocating again', async () => ([0, 1].every((router) => calls.filter((c) => c.router === router && c.atMs > killedAt).slice(-10).filter((c) => c.result.status === 200).length === 10) ? true : null), 30_000);
  running = false;
  await load;
  // For each router: kill → its first success after its last refusal.
  const back = [0, 1].map((router) => {
    const mine = calls.filter((c) => c.router === router && c.atMs > killedAt);
    const lastRefusal = mine.findLastIndex((c) => c.result.status !== 200);
    return mine[lastRefusal + 1]!.atMs - killedAt;
  });
  const newPrimary = await group.primaryPort();
  const after = calls.filter((c) => c.atMs > killedAt);
  const refused = after.filter((c) => c.result.status !== 200);
  console.log(
    `Sentinel failover: primary :${primaryPort} killed, :${newPrimary} promoted; allocations succeed again after ${back.join(' / ')} ms (router 1 / 2); ` +
      `${refused.length} of ${after.length} calls refused meanwhile: ${[...new Set(refused.map((c) => `${c.result.status} ${c.result.body.error?.code ?? ''}`))].join(', ')}`,
  );
  expect(newPrimary).toBe(replicaPort);
  expect(refused.filter((c) => c.result.status !== 503 || c.result.headers['retry-after'] === undefined)).toEqual([]);
  // The last calls all succeed, on both routers.
  expect(calls.slice(-10).map((c) => c.result.status)).toEqual(Array(10).fill(200));
  // What the routers wrote after the failover is on the new primary.
  const last = calls.at(-1)!.result.body;
  expect(last.homeRegion).toBe('us-west');
  expect((await routers[1]!.app.rooms.getRoom(`room-${n - 1}`))?.participants.map((p) => p.allocationId)).toEqual([last.allocationId]);
}, 90_000);

it('settings: REDIS_URL and sentinels together is a configuration error; sentinels are host:port pairs, with passwords and TLS passed on', () => {
  expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', GEO_SFU_REDIS_SENTINELS: '127.0.0.1:26379' })).toThrow(/REDIS_URL and GEO_SFU_REDIS_SENTINELS are both set/);
  expect(() => loadConfig({ GEO_SFU_REDIS_SENTINELS: '127.0.0.1' })).toThrow(/GEO_SFU_REDIS_SENTINELS/);
  const config = loadConfig({
    GEO_SFU_REDIS_SENTINELS: 'sentinel-a:26379,10.0.0.2:26380',
    GEO_SFU_REDIS_SENTINEL_NAME: 'main',
    GEO_SFU_REDIS_SENTINEL_PASSWORD: 'sentinel-pass',
    GEO_SFU_REDIS_PASSWORD: 'data-pass',
    GEO_SFU_REDIS_TLS: 'true',
  });
  expect(redisTarget(config)).toEqual({
    url: '',
    sentinel: {
      sentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ],
      name: 'main',
      sentinelPassword: 'sentinel-pass',
      password: 'data-pass',
      tls: true,
      sentinelTls: false,
    },
  });
  expect(redisTarget(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }))).toEqual({ url: 'redis://127.0.0.1:6379' });
  expect(redisTarget(loadConfig({}))).toBeNull();
});
