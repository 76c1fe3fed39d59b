import { afterAll, afterEach, expect, it } from 'vitest';
import pg from 'pg';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';

/**
 * Degraded allocation (GEO_SFU_DEGRADED_ALLOCATION): routers cut from the real Redis by the fault
 * proxy keep placing participants of rooms they know, on nodes already serving them, within the
 * degraded budget; everything else is 503; the journal reaches Redis exactly once when it is back.
 */
const routers: RunningRouter[] = [];
let nodes: FakeNodes | null = null;
const proxies: TcpFaultProxy[] = [];
afterEach(async () => {
  // Routers first: their probers hold keep-alive connections to the fake nodes' probe server.
  await Promise.all(routers.splice(0).map((r) => r.close()));
  await nodes?.close();
  nodes = null;
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(cleanupNamespaces);

const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };
const EU_WEST = { 'us-west': 140, 'us-east': 80, 'eu-west': 10, apac: 170 };

async function proxiedRedis(): Promise<{ proxy: TcpFaultProxy; url: string }> {
  const target = new URL(REDIS_URL);
  const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
  proxies.push(proxy);
  const url = new URL(target);
  url.port = String(proxy.port);
  return { proxy, url: url.href };
}

async function router(config: GeoSfuConfig): Promise<RunningRouter> {
  const running = await startRouter(config);
  routers.push(running);
  return running;
}

async function addNodes(routerUrl: string, clusterSecret: string, specs: Array<{ nodeId: string; region: string }>): Promise<void> {
  nodes = new FakeNodes(routerUrl, clusterSecret);
  await nodes.start(200);
  for (const spec of specs) await nodes.add({ ...spec, maxParticipants: 1_000 });
  await Promise.all(routers.map((r) => r.app.registry.refresh()));
}

async function timed<T>(call: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = Date.now();
  const result = await call();
  return { result, ms: Date.now() - started };
}

async function journalsDrained(rs: RunningRouter[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (rs.some((r) => r.app.allocator.journalSize() > 0)) {
    if (Date.now() - started > timeoutMs) throw new Error(`journals not written within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The journal empties as its last entry's removal is recorded, before the replay counts that
  // entry in /metrics: wait for the replay itself (the one running, shared; or an empty one).
  await Promise.all(rs.map((r) => r.app.allocator.replayJournal()));
  return Date.now() - started;
}

async function sessionRows(pgSchema: string, ids: string[]): Promise<Array<{ id: string; n: number; status: string }>> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT id::text, count(*)::int AS n, max(status) AS status FROM "${pgSchema}".video_sessions WHERE id = ANY($1::uuid[]) GROUP BY id`, [ids]);
    return rows as Array<{ id: string; n: number; status: string }>;
  } finally {
    await client.end();
  }
}

it('a known room keeps allocating during a Redis cut (same home, within the budget), a new room is refused fast, and the journal lands exactly once', async () => {
  const ns = runNamespace();
  const { proxy, url } = await proxiedRedis();
  const config = testConfig('real', { redisUrl: url, redisTimeoutMs: 500, degradedSeatsPerNode: 5 }, ns);
  const r = await router(config);
  await addNodes(r.url, config.clusterSecret, [
    { nodeId: 'us-west-1', region: 'us-west' },
    { nodeId: 'eu-west-1', region: 'eu-west' },
  ]);
  expect((await allocate(r.url, { roomId: 'known', participantId: 'a', latencies: US_WEST })).body.node?.id).toBe('us-west-1');

  proxy.cut();
  const during: Array<{ who: string; status: number; ms: number; home?: string; node?: string }> = [];
  // An EU client: eu-west is not part of the room, so it goes to the node already serving it.
  for (const [who, latencies] of [['c1', US_WEST], ['c2', US_WEST], ['c3', EU_WEST], ['c4', US_WEST], ['c5', US_WEST], ['c6-over-budget', US_WEST]] as const) {
    const { result, ms } = await timed(() => allocate(r.url, { roomId: 'known', participantId: who, latencies }));
    during.push({ who, status: result.status, ms, home: result.body.homeRegion, node: result.body.node?.id });
  }
  const fresh = await timed(() => allocate(r.url, { roomId: 'new-room', participantId: 'x', latencies: US_WEST }));
  console.log(`Redis cut: ${during.map((d) => `${d.who} → ${d.status} in ${d.ms} ms${d.node ? ` on ${d.node}` : ''}`).join(', ')}; new room → ${fresh.result.status} in ${fresh.ms} ms`);
  expect(during.map((d) => d.status)).toEqual([200, 200, 200, 200, 200, 503]);
  expect(during.slice(0, 5).every((d) => d.home === 'us-west' && d.node === 'us-west-1')).toBe(true);
  expect(fresh.result.status).toBe(503);
  expect(fresh.result.body.error?.code).toBe('DEPENDENCY_UNAVAILABLE');
  expect(fresh.result.headers['retry-after']).toBeDefined();
  expect(fresh.ms).toBeLessThan(2_000);
  expect(r.app.allocator.journalSize()).toBe(5);

  // c1 joins and c2 leaves its node while Redis is still away: the journal carries both.
  const byId = new Map(during.map((d, i) => [d.who, i]));
  const allocationIds: string[] = [];
  for (const d of during.slice(0, 5)) {
    const res = await allocate(r.url, { roomId: 'known', participantId: d.who, latencies: d.who === 'c3' ? EU_WEST : US_WEST });
    expect(res.status).toBe(200); // a retry by the same participant replaces its journaled allocation
    allocationIds.push(res.body.allocationId!);
  }
  expect(byId.size).toBe(6);
  expect(r.app.allocator.journalSize()).toBe(5);
  const event = (participantId: string, allocationId: string, e: 'joined' | 'left') =>
    signedCall({ secret: config.clusterSecret, baseUrl: r.url, method: 'POST', path: '/v1/nodes/participant-event', body: { nodeId: 'us-west-1', roomId: 'known', participantId, allocationId, event: e }, timeoutMs: 2_000, nowMs: Date.now() });
  expect((await event('c1', allocationIds[0]!, 'joined')).statusCode).toBe(200);
  expect((await event('c2', allocationIds[1]!, 'left')).statusCode).toBe(204);

  proxy.restore();
  const restoredAt = Date.now();
  const drainedMs = await journalsDrained([r], 15_000);
  console.log(`journal (4 allocations) written ${drainedMs} ms after Redis returned (${Date.now() - restoredAt} ms)`);
  const state = (await r.app.rooms.getRoom('known'))!;
  expect(state.room.homeRegion).toBe('us-west');
  expect(state.room.epoch).toBe(0);
  const inRoom = Object.fromEntries(state.participants.map((p) => [p.participantId, [p.allocationId, p.nodeId, p.status]]));
  expect(Object.keys(inRoom).sort()).toEqual(['a', 'c1', 'c3', 'c4', 'c5']);
  expect(inRoom.c1).toEqual([allocationIds[0], 'us-west-1', 'joined']);
  expect(inRoom.c3).toEqual([allocationIds[2], 'us-west-1', 'allocated']);
  expect((await r.app.rooms.nodeCounts()).get('us-west-1')).toBe(5);
  // Written again (a lost answer, a second replica's replay): nothing changes.
  await r.app.allocator.replayJournal();
  expect((await r.app.rooms.nodeCounts()).get('us-west-1')).toBe(5);

  await r.app.sessions.flush(10_000);
  const rows = await sessionRows(ns.pgSchema, allocationIds);
  expect(rows.map((row) => row.n)).toEqual([1, 1, 1, 1, 1]);
  const status = Object.fromEntries(rows.map((row) => [row.id, row.status]));
  expect(status[allocationIds[0]!]).toBe('active');
  expect(status[allocationIds[1]!]).toBe('ended');
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  expect(metrics).toMatch(/geo_sfu_degraded_allocations_total 10/);
  expect(metrics).toMatch(/geo_sfu_degraded_journal_replays_total\{result="applied"\} 4/);
});

it('two routers cut from Redis at once: both serve the room they know within their budgets, and after reconciliation it has one home and every participant counted once', async () => {
  const ns = runNamespace();
  const { proxy, url } = await proxiedRedis();
  const SEATS = 3;
  const config = testConfig('real', { redisUrl: url, redisTimeoutMs: 500, degradedSeatsPerNode: SEATS }, ns);
  const a = await router(config);
  const b = await router(config);
  await addNodes(a.url, config.clusterSecret, [
    { nodeId: 'us-west-1', region: 'us-west' },
    { nodeId: 'eu-west-1', region: 'eu-west' },
  ]);
  // Each router knows the room (it allocated into it); the room serves both regions.
  const a0 = await allocate(a.url, { roomId: 'shared', participantId: 'a0', latencies: US_WEST });
  expect(a0.body.homeRegion, JSON.stringify(a0.body)).toBe('us-west');
  const b0 = await allocate(b.url, { roomId: 'shared', participantId: 'b0', latencies: EU_WEST });
  expect(b0.body.region, JSON.stringify(b0.body)).toBe('eu-west');
  expect((await allocate(a.url, { roomId: 'shared', participantId: 'a1', latencies: EU_WEST })).status).toBe(200);
  const before = await a.app.rooms.nodeCounts();

  proxy.cut();
  // 8 calls per router, more than its 2 × 3 seats: the budget, not the callers, bounds the overbooking.
  const calls = Array.from({ length: 16 }, (_, i) => {
    const [via, name] = i % 2 === 0 ? [a, `a-cut-${i}`] : [b, `b-cut-${i}`];
    return timed(() => allocate(via.url, { roomId: 'shared', participantId: name, latencies: i % 3 === 0 ? EU_WEST : US_WEST }));
  });
  const results = await Promise.all(calls);
  const freshA = await allocate(a.url, { roomId: 'other', participantId: 'x', latencies: EU_WEST });
  const freshB = await allocate(b.url, { roomId: 'other', participantId: 'y', latencies: US_WEST });
  const placed = results.filter((r) => r.result.status === 200);
  console.log(`two routers, Redis cut, ${SEATS} seats per node each: 16 calls → ${placed.length} × 200 (median ${[...placed.map((r) => r.ms)].sort((x, y) => x - y)[Math.floor(placed.length / 2)]} ms), ${16 - placed.length} × 503; new room → ${freshA.status}/${freshB.status}`);
  expect(placed).toHaveLength(2 * 2 * SEATS);
  expect(results.filter((r) => r.result.status !== 200).every((r) => r.result.status === 503 && r.result.body.error?.code === 'DEPENDENCY_UNAVAILABLE')).toBe(true);
  expect(new Set(placed.map((r) => r.result.body.homeRegion))).toEqual(new Set(['us-west']));
  expect([freshA.status, freshB.status]).toEqual([503, 503]);

  proxy.restore();
  console.log(`both journals written ${await journalsDrained([a, b], 15_000)} ms after Redis returned`);
  for (const view of [a, b]) {
    const state = (await view.app.rooms.getRoom('shared'))!;
    expect([state.room.homeRegion, state.room.homeNodeId, state.room.epoch]).toEqual(['us-west', 'us-west-1', 0]);
    expect(state.participants).toHaveLength(3 + placed.length);
  }
  const counts = await a.app.rooms.nodeCounts();
  for (const node of ['us-west-1', 'eu-west-1']) {
    // Each router placed at most its budget on each node.
    expect((counts.get(node) ?? 0) - (before.get(node) ?? 0)).toBeLessThanOrEqual(2 * SEATS);
  }
  expect((counts.get('us-west-1') ?? 0) + (counts.get('eu-west-1') ?? 0)).toBe(3 + placed.length);
  expect(await a.app.rooms.getRoom('other')).toBeNull();
});

it('a room re-homed by another router while this one was cut: the journaled participant is counted into the room as it is now; one allocated again elsewhere keeps its newer allocation', async () => {
  const ns = runNamespace();
  const { proxy, url } = await proxiedRedis();
  const cutOff = await router(testConfig('real', { redisUrl: url, redisTimeoutMs: 500 }, ns));
  const connected = await router(testConfig('real', { redisUrl: REDIS_URL }, ns));
  await addNodes(connected.url, cutOff.config.clusterSecret, [
    { nodeId: 'us-west-1', region: 'us-west' },
    { nodeId: 'eu-west-1', region: 'eu-west' },
  ]);
  expect((await allocate(cutOff.url, { roomId: 'moving', participantId: 'a', latencies: US_WEST })).body.homeRegion).toBe('us-west');
  expect((await allocate(cutOff.url, { roomId: 'moving', participantId: 'b', latencies: EU_WEST })).body.region).toBe('eu-west');

  proxy.cut();
  const during = await allocate(cutOff.url, { roomId: 'moving', participantId: 'c', latencies: US_WEST });
  expect([during.status, during.body.homeRegion, during.body.node?.id]).toEqual([200, 'us-west', 'us-west-1']);
  // The same participant e allocates through the cut-off router, then (its client retrying elsewhere) through the other one.
  const eJournaled = await allocate(cutOff.url, { roomId: 'moving', participantId: 'e', latencies: US_WEST });
  expect(eJournaled.status).toBe(200);
  await new Promise((r) => setTimeout(r, 5));
  const eLater = await allocate(connected.url, { roomId: 'moving', participantId: 'e', latencies: EU_WEST });
  expect(eLater.status).toBe(200);
  // Meanwhile the router that still reaches Redis re-homes the room (compare-and-set on the epoch).
  const rehomed = await connected.app.rooms.rehome('moving', 0, { region: 'eu-west', nodeId: 'eu-west-1' });
  expect(rehomed?.epoch).toBe(1);

  proxy.restore();
  await journalsDrained([cutOff], 15_000);
  const state = (await connected.app.rooms.getRoom('moving'))!;
  expect([state.room.homeRegion, state.room.epoch]).toEqual(['eu-west', 1]);
  const c = state.participants.find((p) => p.participantId === 'c');
  expect([c?.allocationId, c?.nodeId]).toEqual([during.body.allocationId, 'us-west-1']);
  // e keeps its newer allocation; the journaled one is dropped, not counted.
  expect(state.participants.find((p) => p.participantId === 'e')?.allocationId).toBe(eLater.body.allocationId);
  expect(state.participants).toHaveLength(4);
  expect((await cutOff.app.rooms.nodeCounts()).get('us-west-1')).toBe(2);
  expect((await cutOff.app.rooms.nodeCounts()).get('eu-west-1')).toBe(2);
  const metrics = await (await fetch(`${cutOff.url}/metrics`)).text();
  expect(metrics).toMatch(/geo_sfu_degraded_journal_replays_total\{result="rehomed"\} 1/);
  expect(metrics).toMatch(/geo_sfu_degraded_journal_replays_total\{result="superseded"\} 1/);
  // The router that was cut now places on the room as it is (new home), not on its old view. Its
  // registry copy is re-read first: on a loaded machine the cut can outlast GEO_SFU_DEAD_AFTER_MS,
  // and the copy from before the cut would show every node dead until its next refresh.
  await cutOff.app.registry.refresh();
  const after = await allocate(cutOff.url, { roomId: 'moving', participantId: 'd', latencies: US_WEST });
  expect([after.status, after.body.homeRegion]).toEqual([200, 'eu-west']);
});
