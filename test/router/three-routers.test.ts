import { afterAll, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, testConfig } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnRouter } from '../utils/service-process.ts';

/**
 * Three router processes on one Redis prefix: one leader (Redis lease), and when it is SIGKILLed,
 * then the next one too, the survivors take over one after the other; the background duty watched
 * here (the allocation expiry sweep) runs on the leader only.
 */
const SECRETS = testConfig('memory');
const LEASE_MS = 1_000;
const routers: ServiceProcess[] = [];
let nodes: FakeNodes | null = null;
afterAll(async () => {
  await nodes?.close();
  await Promise.all(routers.map((r) => r.stop()));
  await cleanupNamespaces();
});

async function metric(router: ServiceProcess, name: string): Promise<number> {
  const text = await (await fetch(`${router.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} missing from ${router.url}/metrics`);
  return Number(line.split(' ')[1]);
}

async function leaders(alive: ServiceProcess[]): Promise<ServiceProcess[]> {
  const flags = await Promise.all(alive.map((r) => metric(r, 'geo_sfu_router_leader')));
  return alive.filter((_, i) => flags[i] === 1);
}

/** Polls until exactly one of `alive` is the leader; returns it and how long that took. */
async function soleLeader(alive: ServiceProcess[], timeoutMs: number): Promise<{ leader: ServiceProcess; ms: number }> {
  const started = Date.now();
  for (;;) {
    const now = await leaders(alive);
    if (now.length === 1) return { leader: now[0]!, ms: Date.now() - started };
    expect(now.length).toBeLessThanOrEqual(1);
    if (Date.now() - started > timeoutMs) throw new Error(`no single leader among ${alive.length} routers within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let round = 0;
/** Allocations nobody joins, through a router that is not the leader if there is one; the sweep must expire each once, on the leader. */
async function sweepRunsOnLeaderOnly(alive: ServiceProcess[], leader: ServiceProcess): Promise<void> {
  const before = await Promise.all(alive.map((r) => metric(r, 'geo_sfu_allocations_expired_total')));
  const via = alive.find((r) => r !== leader) ?? leader;
  round++;
  for (let i = 0; i < 4; i++) {
    const res = await allocate(via.url, { roomId: `sweep-${round}`, participantId: `p${i}`, latencies: { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 } });
    expect(res.status).toBe(200);
  }
  const deadline = Date.now() + 10_000;
  let after = before;
  while (Date.now() < deadline) {
    after = await Promise.all(alive.map((r) => metric(r, 'geo_sfu_allocations_expired_total')));
    if (after.reduce((x, y) => x + y, 0) - before.reduce((x, y) => x + y, 0) >= 4) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Give a second sweeper (if there were one) the time to run as well.
  await new Promise((r) => setTimeout(r, 1_200));
  after = await Promise.all(alive.map((r) => metric(r, 'geo_sfu_allocations_expired_total')));
  const grew = alive.map((r, i) => ({ leader: r === leader, by: after[i]! - before[i]! }));
  expect(grew.filter((g) => g.leader).map((g) => g.by)).toEqual([4]);
  expect(grew.filter((g) => !g.leader).every((g) => g.by === 0)).toBe(true);
}

it('three router processes: exactly one leader; kill it, then the next, and each time another takes over within the lease; the expiry sweep runs once, on the leader', async () => {
  const ns = runNamespace();
  const env = {
    REDIS_URL,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_CLUSTER_SECRET: SECRETS.clusterSecret,
    GEO_SFU_TOKEN_SECRETS: SECRETS.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_REDIS_TIMEOUT_MS: '3000',
    GEO_SFU_LEADER_LEASE_MS: String(LEASE_MS),
    GEO_SFU_ALLOCATION_TTL_MS: '1000',
    // The fake nodes heartbeat to the first router only: once it is killed they must stay alive.
    GEO_SFU_SUSPECT_AFTER_MS: '60000',
    GEO_SFU_DEAD_AFTER_MS: '120000',
  };
  routers.push(...(await Promise.all([0, 1, 2].map(() => spawnRouter(env)))));
  nodes = new FakeNodes(routers[0]!.url, SECRETS.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 1_000 });
  await new Promise((r) => setTimeout(r, 500));

  let alive = [...routers];
  let { leader } = await soleLeader(alive, 10_000);
  console.log(`leader elected: router ${routers.indexOf(leader)}`);
  // Still exactly one a few renewals later.
  for (let i = 0; i < 5; i++) {
    expect(await leaders(alive)).toEqual([leader]);
    await new Promise((r) => setTimeout(r, LEASE_MS / 3));
  }
  await sweepRunsOnLeaderOnly(alive, leader);

  const takeovers: number[] = [];
  for (const _ of [1, 2]) {
    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    alive = alive.filter((r) => r !== leader);
    const next = await soleLeader(alive, LEASE_MS + 5_000);
    takeovers.push(Date.now() - killedAt);
    console.log(`router ${routers.indexOf(next.leader)} took over ${takeovers.at(-1)} ms after the kill`);
    leader = next.leader;
    await sweepRunsOnLeaderOnly(alive, leader);
  }
  console.log(`3 router processes, lease ${LEASE_MS} ms: leader SIGKILLed → next leader after ${takeovers.join(' ms, then ')} ms; expiry sweep counted on the leader only each time`);
  // One lease plus a renewal period in theory (≈ 1.3 s); generous for a loaded 2-core machine.
  expect(takeovers.every((ms) => ms < 2 * LEASE_MS + 2_000)).toBe(true);
  expect(alive).toHaveLength(1);
}, 120_000);
