import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect, it } from 'vitest';
import { RedisLeaderLease } from '../../router/state/leader-lease.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const routers: RunningRouter[] = [];
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await Promise.all(routers.splice(0).map((r) => r.close()));
});
afterAll(cleanupNamespaces);

it('exactly one of several routers holds the leader lease; another takes over when the leader process dies', async () => {
  const { redisKeyPrefix } = runNamespace();
  const ttlMs = 600;
  const holder = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../utils/lease-holder.ts', import.meta.url)), REDIS_URL, redisKeyPrefix, String(ttlMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('leader') && resolve()));
  const others = [0, 1].map(() => new RedisLeaderLease({ url: REDIS_URL, keyPrefix: redisKeyPrefix, timeoutMs: 1_000, ttlMs }));
  await Promise.all(others.map((l) => l.start()));
  expect(others.filter((l) => l.isLeader())).toHaveLength(0);
  holder.kill('SIGKILL');
  const killedAt = Date.now();
  let takeoverMs = -1;
  while (Date.now() - killedAt < 3_000) {
    if (others.some((l) => l.isLeader())) {
      takeoverMs = Date.now() - killedAt;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  console.log(`leader lease taken over ${takeoverMs} ms after the leader was killed (lease ${ttlMs} ms)`);
  expect(takeoverMs).toBeGreaterThan(0);
  expect(takeoverMs).toBeLessThan(ttlMs + 1_000);
  expect(others.filter((l) => l.isLeader())).toHaveLength(1);
  await Promise.all(others.map((l) => l.close()));
});

it('a room whose home node dies is re-homed to the live node serving most of its participants', async () => {
  const router = await startRouter(testConfig('real'));
  routers.push(router);
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  for (const region of ['us-east', 'eu-west', 'apac']) await nodes.add({ nodeId: `${region}-1`, region });
  await router.app.registry.refresh();
  const near = (region: string) => Object.fromEntries(['us-west', 'us-east', 'eu-west', 'apac'].map((r) => [r, r === region ? 5 : 300]));
  expect((await allocate(router.url, { roomId: 'fo', participantId: 'a', latencies: near('us-east') })).body.homeRegion).toBe('us-east');
  for (const p of ['b', 'c']) expect((await allocate(router.url, { roomId: 'fo', participantId: p, latencies: near('eu-west') })).body.region).toBe('eu-west');
  expect((await allocate(router.url, { roomId: 'fo', participantId: 'd', latencies: near('apac') })).body.region).toBe('apac');

  nodes.silence('us-east-1');
  const silencedAt = Date.now();
  let home = 'us-east';
  while (Date.now() - silencedAt < 6_000 && home === 'us-east') {
    await new Promise((r) => setTimeout(r, 100));
    home = (await router.app.rooms.getRoom('fo'))!.room.homeRegion;
  }
  console.log(`home node death → room re-homed in ${Date.now() - silencedAt} ms (dead after ${router.config.deadAfterMs} ms)`);
  const state = (await router.app.rooms.getRoom('fo'))!;
  expect([state.room.homeRegion, state.room.homeNodeId, state.room.epoch]).toEqual(['eu-west', 'eu-west-1', 1]);
  expect(await (await fetch(`${router.url}/metrics`)).text()).toContain('geo_sfu_room_rehomes_total 1');
});
