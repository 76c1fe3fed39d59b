import { request } from 'undici';
import { afterAll, expect, it } from 'vitest';
import { Agents, CLUSTER_SECRET, agentConfig } from '../agent/helpers.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace, testConfig } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnRouter } from '../utils/service-process.ts';

/**
 * A router process killed (SIGKILL) and started again on the same port and Redis prefix, with real
 * region agents heartbeating and clients allocating all along.
 *
 * "Allocations in flight are not lost" means, precisely: every /allocate the client saw answered
 * 200 is in its room after the restart, on the node it was told; a call cut by the kill fails
 * visibly at the client (connection error, never a silent success) and the same call retried
 * after the restart is placed exactly once (an allocation again for the same participant replaces
 * its own pending one); no room changes home across the restart.
 */
const SECRETS = testConfig('memory');
const API_KEY = SECRETS.apiKey;
const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];
const agents = new Agents();
const routers: ServiceProcess[] = [];
afterAll(async () => {
  await agents.closeAll();
  await Promise.all(routers.map((r) => r.stop()));
  await cleanupNamespaces();
});

function routerEnv(ns: { redisKeyPrefix: string; pgSchema: string }): Record<string, string> {
  return {
    REDIS_URL,
    DATABASE_URL,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_PG_SCHEMA: ns.pgSchema,
    GEO_SFU_CLUSTER_SECRET: CLUSTER_SECRET,
    GEO_SFU_TOKEN_SECRETS: SECRETS.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
    GEO_SFU_API_KEY: API_KEY,
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    // Clients allocate into one room for as long as the restart takes (hundreds on a slow machine):
    // no room limit, and nodes far from full (at the default 100 per node, a restart that took long
    // left the last allocations with 503 until the end, as they should be).
    GEO_SFU_MAX_ROOM_PARTICIPANTS: '0',
    GEO_SFU_MAX_PARTICIPANTS_PER_NODE: '100000',
    GEO_SFU_REDIS_TIMEOUT_MS: '3000',
    GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
  };
}

const near = (region: string) => Object.fromEntries(REGIONS.map((r) => [r, r === region ? 10 : 150]));

type Attempt = { status: number | 'connection error'; node?: string };

/**
 * /allocate as a careful client does it: on a connection error or a 503, the same call again,
 * until a 200 or the deadline (read at each attempt, so a test can move it).
 */
async function allocateRetrying(url: string, roomId: string, participantId: string, region: string, deadline: { atMs: number }): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  while (Date.now() < deadline.atMs) {
    try {
      const res = await request(`${url}/allocate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ roomId, participantId, latencies: near(region) }),
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
      const body = (await res.body.json()) as { node?: { id: string } };
      attempts.push({ status: res.statusCode, ...(body.node ? { node: body.node.id } : {}) });
      if (res.statusCode === 200) return attempts;
    } catch {
      attempts.push({ status: 'connection error' });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return attempts;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url);
  return (await res.body.json()) as T;
}

async function aliveNodes(url: string): Promise<string[]> {
  try {
    const body = await getJson<{ regions: Array<{ nodes: Array<{ nodeId: string; state: string }> }> }>(`${url}/regions`);
    return body.regions.flatMap((r) => r.nodes).filter((n) => n.state === 'alive').map((n) => n.nodeId).sort();
  } catch {
    return [];
  }
}

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await ok())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

it('router SIGKILLed and restarted on the same Redis: state comes back, agents reappear, rooms keep their home, no allocation is lost', async () => {
  const ns = runNamespace();
  const first = await spawnRouter(routerEnv(ns));
  routers.push(first);
  const nodeIds = REGIONS.map((r) => `${r}-1`);
  const running = await Promise.all(REGIONS.map((region, i) => agents.start(agentConfig(first.url, { agentId: nodeIds[i]!, agentRegion: region, heartbeatIntervalMs: 200, maxParticipantsPerNode: 100_000 }))));
  await waitFor('all agents alive', async () => (await aliveNodes(first.url)).length === 4, 15_000);

  // Ten pinned rooms, homes spread over the regions.
  const homes = new Map<string, string>();
  for (let i = 0; i < 10; i++) {
    const [attempt] = await allocateRetrying(first.url, `room-${i}`, 'first', REGIONS[i % 4]!, { atMs: Date.now() + 5_000 });
    expect(attempt?.status).toBe(200);
    homes.set(`room-${i}`, REGIONS[i % 4]!);
  }

  // Clients allocate continuously into one room, through the kill and the restart. They retry
  // until 10 s after the agents are back, however long the restart took on a loaded machine.
  const deadline = { atMs: Date.now() + 60_000 };
  const inFlight: Array<Promise<{ participantId: string; attempts: Attempt[] }>> = [];
  let stopAllocating = false;
  const allocating = (async () => {
    for (let i = 0; !stopAllocating; i++) {
      const participantId = `p${i}`;
      inFlight.push(allocateRetrying(first.url, 'race', participantId, REGIONS[i % 4]!, deadline).then((attempts) => ({ participantId, attempts })));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  await new Promise((r) => setTimeout(r, 500));
  first.child.kill('SIGKILL');
  const killedAt = Date.now();
  await new Promise((resolve) => first.child.once('exit', resolve));
  // Down longer than GEO_SFU_DEAD_AFTER_MS (3 s): the registry in Redis holds only stale
  // heartbeats, so the agents count as alive again only once they reach the new process.
  await new Promise((r) => setTimeout(r, 3_500));
  const second = await spawnRouter(routerEnv(ns), first.port);
  routers.push(second);
  const listeningMs = Date.now() - killedAt;
  const agentsBackMs = await waitFor('all agents alive on the new router', async () => (await aliveNodes(second.url)).join() === [...nodeIds].sort().join(), 15_000);
  await new Promise((r) => setTimeout(r, 1_000));
  stopAllocating = true;
  deadline.atMs = Date.now() + 10_000;
  await allocating;
  const results = await Promise.all(inFlight);
  console.log(
    `router restart: killed, started again after 3.5 s, listening ${listeningMs} ms after the kill; all 4 agents alive again ${agentsBackMs} ms after it listened; ` +
      `${results.length} allocations during the restart, ${results.filter((r) => r.attempts.some((a) => a.status === 'connection error')).length} of them retried after a cut`,
  );

  // Agents kept their registration (the registry came back from Redis), none restarted.
  expect(running.every((a) => a.controller.registered)).toBe(true);
  // Rooms still pinned where they were.
  for (const [roomId, region] of homes) {
    expect((await getJson<{ homeRegion: string }>(`${second.url}/rooms/${roomId}`)).homeRegion).toBe(region);
  }
  // Every allocation ended in one 200; every 200 is in the room, once, on the node the client was told.
  expect(results.filter((r) => r.attempts.at(-1)?.status !== 200)).toEqual([]);
  expect(results.flatMap((r) => r.attempts).filter((a) => a.status !== 200 && a.status !== 'connection error' && a.status !== 503)).toEqual([]);
  expect(results.some((r) => r.attempts.some((a) => a.status === 'connection error'))).toBe(true);
  const room = await getJson<{ homeRegion: string; participants: Array<{ participantId: string; nodeId: string }> }>(`${second.url}/rooms/race`);
  expect(room.participants.map((p) => p.participantId).sort()).toEqual(results.map((r) => r.participantId).sort());
  const told = new Map(results.map((r) => [r.participantId, r.attempts.at(-1)!.node]));
  expect(room.participants.filter((p) => told.get(p.participantId) !== p.nodeId)).toEqual([]);
  expect(new Set(results.map((r) => r.attempts.at(-1)!.node)).size).toBeGreaterThan(1);
}, 90_000);

it('a router that lost its state (new Redis prefix): agents notice (known: false) and register again by themselves', async () => {
  const ns = runNamespace();
  const first = await spawnRouter(routerEnv(ns));
  routers.push(first);
  const nodeIds = ['us-west-9', 'eu-west-9'];
  const running = await Promise.all(nodeIds.map((nodeId) => agents.start(agentConfig(first.url, { agentId: nodeId, agentRegion: nodeId.replace(/-9$/, ''), heartbeatIntervalMs: 200 }))));
  await waitFor('agents alive', async () => (await aliveNodes(first.url)).length === 2, 15_000);
  const registrations = running.map(() => 0);
  running.forEach((a, i) => a.controller.on('registered', () => registrations[i]!++));
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  const second = await spawnRouter(routerEnv(runNamespace()), first.port);
  routers.push(second);
  // The router lists an agent as soon as it stored the registration, a moment before the agent has
  // its answer ('registered'): both must be seen.
  const backMs = await waitFor('agents registered with the empty router', async () => registrations.every((n) => n > 0) && (await aliveNodes(second.url)).join() === [...nodeIds].sort().join(), 15_000);
  console.log(`router restarted with no state: both agents registered again ${backMs} ms after it listened`);
  expect(registrations).toEqual([1, 1]);
}, 60_000);
