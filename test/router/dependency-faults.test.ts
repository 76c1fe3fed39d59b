import { afterAll, afterEach, expect, it } from 'vitest';
import pg from 'pg';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';

/**
 * The router between faults injected on its connections to the shared Redis and PostgreSQL
 * (those servers are never stopped: a proxy in between cuts or delays the traffic).
 */
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
const proxies: TcpFaultProxy[] = [];
afterEach(async () => {
  // The router first: its prober holds keep-alive connections to the fake nodes' probe server.
  await router?.close();
  await nodes?.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(cleanupNamespaces);

const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };

async function world(through: 'redis' | 'postgres') {
  const ns = runNamespace();
  const target = new URL(through === 'redis' ? REDIS_URL : DATABASE_URL);
  const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
  proxies.push(proxy);
  const viaProxy = new URL(target);
  viaProxy.port = String(proxy.port);
  const config = testConfig('real', { ...(through === 'redis' ? { redisUrl: viaProxy.href, redisTimeoutMs: 500 } : { databaseUrl: viaProxy.href }) }, ns);
  router = await startRouter(config);
  nodes = new FakeNodes(router.url, config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 1_000 });
  await router.app.registry.refresh();
  return { router, proxy, ns };
}

it('PostgreSQL away during allocations: /allocate keeps answering and every session row arrives once it is back', async () => {
  const { router, proxy, ns } = await world('postgres');
  proxy.cut();
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => allocate(router.url, { roomId: `pg-${i % 6}`, participantId: `p${i}`, latencies: US_WEST })));
  expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
  await new Promise((r) => setTimeout(r, 600));
  expect(router.app.sessions.bufferDepth()).toBeGreaterThan(0);
  const metrics = await (await fetch(`${router.url}/metrics`)).text();
  expect(metrics).toMatch(/geo_sfu_session_log_buffer_depth [1-9]/);
  proxy.restore();
  await router.app.sessions.flush(15_000);
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  const { rows } = await client.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM "${ns.pgSchema}".video_sessions`);
  await client.end();
  expect(rows[0]).toEqual({ n: 60, ids: 60 });
  expect(router.app.sessions.bufferDepth()).toBe(0);
});

it('Redis slow or away: /allocate answers 503 within the Redis timeout instead of hanging, and works again after', async () => {
  const { router, proxy } = await world('redis');
  expect((await allocate(router.url, { roomId: 'r', participantId: 'a', latencies: US_WEST })).status).toBe(200);

  proxy.delay(5_000);
  const started = Date.now();
  // New rooms: a room this router knows would be served from local state (test/router/degraded-allocation.test.ts).
  const slow = await allocate(router.url, { roomId: 'r-slow', participantId: 'b', latencies: US_WEST });
  const slowMs = Date.now() - started;
  console.log(`/allocate with Redis delayed 5 s: ${slow.status} after ${slowMs} ms (redisTimeoutMs 500)`);
  expect(slow.status).toBe(503);
  expect(slow.body.error?.code).toBe('DEPENDENCY_UNAVAILABLE');
  expect(slowMs).toBeLessThan(2_000);

  proxy.restore();
  proxy.cut();
  const cutStarted = Date.now();
  const away = await allocate(router.url, { roomId: 'r-cut', participantId: 'c', latencies: US_WEST });
  console.log(`/allocate with Redis cut: ${away.status} after ${Date.now() - cutStarted} ms`);
  expect(away.status).toBe(503);
  expect(Date.now() - cutStarted).toBeLessThan(2_000);

  proxy.restore();
  let back = 0;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && back !== 200) {
    back = (await allocate(router.url, { roomId: 'r-after', participantId: 'd', latencies: US_WEST })).status;
    if (back !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  expect(back).toBe(200);
  // One home; the call refused while Redis was cut left nothing behind. (b's script may still have
  // run after its timeout: the store documents that, and an unjoined allocation expires.)
  const state = (await router.app.rooms.getRoom('r'))!;
  expect(state.room.homeRegion).toBe('us-west');
  expect(state.participants.map((p) => p.participantId)).toEqual(['a']);
  expect(await router.app.rooms.getRoom('r-cut')).toBeNull();
});

it('Redis away for longer than the dead-after time: refusals while away, then no room re-homed and no node taken for dead because of the outage', async () => {
  const { router, proxy } = await world('redis');
  await nodes!.add({ nodeId: 'eu-west-1', region: 'eu-west', maxParticipants: 1_000 });
  await router.app.registry.refresh();
  const EU_WEST = { 'us-west': 140, 'us-east': 80, 'eu-west': 10, apac: 170 };
  // Two rooms, each with participants on both nodes (so each has somewhere else it could be re-homed).
  for (const [roomId, first, second] of [['r-west', US_WEST, EU_WEST], ['r-east', EU_WEST, US_WEST]] as const) {
    expect((await allocate(router.url, { roomId, participantId: 'a', latencies: first })).status).toBe(200);
    expect((await allocate(router.url, { roomId, participantId: 'b', latencies: second })).status).toBe(200);
  }
  const homes = async () => Promise.all(['r-west', 'r-east'].map(async (id) => (await router.app.rooms.getRoom(id))!.room));
  const before = await homes();
  expect(before.map((r) => r.homeNodeId)).toEqual(['us-west-1', 'eu-west-1']);

  proxy.cut();
  const outageMs = router.config.deadAfterMs + 2_000;
  const cutAt = Date.now();
  const during: Array<{ what: string; status: number; ms: number }> = [];
  for (const [what, body] of [['new room', { roomId: 'r-new', participantId: 'x', latencies: US_WEST }], ['known room', { roomId: 'r-west', participantId: 'c', latencies: US_WEST }]] as const) {
    const started = Date.now();
    const res = await allocate(router.url, body);
    during.push({ what, status: res.status, ms: Date.now() - started });
  }
  const roomView = await fetch(`${router.url}/rooms/r-west`);
  during.push({ what: 'GET /rooms/r-west', status: roomView.status, ms: 0 });
  // The registry view is served from the router's last snapshot.
  const regionsView = await fetch(`${router.url}/regions`);
  during.push({ what: 'GET /regions', status: regionsView.status, ms: 0 });
  await new Promise((r) => setTimeout(r, Math.max(0, outageMs - (Date.now() - cutAt))));
  // One node's agent comes back later than the other (its heartbeat was backing off).
  nodes!.silence('us-west-1');
  proxy.restore();
  const restoredAt = Date.now();
  await new Promise((r) => setTimeout(r, router.config.deadAfterMs * 0.6));
  nodes!.resume('us-west-1');
  let back = 0;
  while (back !== 200 && Date.now() - restoredAt < 10_000) {
    // A new room: it needs Redis (the known room r-west is served from local state throughout).
    back = (await allocate(router.url, { roomId: 'r-after', participantId: 'c', latencies: US_WEST })).status;
    if (back !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, router.config.deadAfterMs + 500));
  console.log(`Redis cut ${outageMs} ms: ${during.map((d) => `${d.what} → ${d.status}${d.ms ? ` in ${d.ms} ms` : ''}`).join(', ')}; /allocate 200 again ${Date.now() - restoredAt} ms after Redis returned`);
  // A room this router knows is served from local state (degraded allocation); the rest needs Redis.
  expect(during.map((d) => d.status)).toEqual([503, 200, 503, 200]);
  expect(during.every((d) => d.ms < 2_000)).toBe(true);
  expect(back).toBe(200);
  // Reconciled: both nodes alive, every room still on the home it had, no re-home, one home each.
  // The snapshot's node order is not part of its contract: compare as a set.
  const nodeStates = router.app.registry.snapshot().nodes.map((n) => `${n.nodeId}:${n.state}`);
  expect(nodeStates.sort()).toEqual(['eu-west-1:alive', 'us-west-1:alive']);
  expect(await homes()).toEqual(before);
  expect(await (await fetch(`${router.url}/metrics`)).text()).toContain('geo_sfu_room_rehomes_total 0');
});
