import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, DATABASE_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const ns = runNamespace();
let a: RunningRouter;
let b: RunningRouter;
let nodes: FakeNodes | null = null;
beforeAll(async () => {
  // One room of 300 on purpose: the documented override of the room-size cap.
  const overrides = { maxParticipantsPerNode: 1_000, maxRoomParticipants: 0 };
  a = await startRouter(testConfig('real', overrides, ns));
  b = await startRouter(testConfig('real', overrides, ns));
  // Nodes register with router A only; router B sees them through the shared registry.
  nodes = new FakeNodes(a.url, a.config.clusterSecret);
  await nodes.start(200);
  for (const region of ['us-west', 'us-east', 'eu-west', 'apac']) await nodes.add({ nodeId: `${region}-1`, region, maxParticipants: 1_000 });
  await b.app.registry.refresh();
});
afterAll(async () => {
  await nodes?.close();
  await Promise.all([a?.close(), b?.close()]);
  await cleanupNamespaces();
});

it('two routers sharing Redis: hundreds of concurrent allocations for one room give one home and exact counts', async () => {
  expect(b.app.registry.snapshot().nodes).toHaveLength(4);
  const regions = ['us-west', 'us-east', 'eu-west', 'apac'];
  const N = 300;
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) => {
      // Each participant is nearest to one region, in turn; alternate routers.
      const near = regions[i % 4]!;
      const latencies = Object.fromEntries(regions.map((r) => [r, r === near ? 10 : 150]));
      return allocate((i % 2 === 0 ? a : b).url, { roomId: 'big-room', participantId: `p${i}`, latencies });
    }),
  );
  const elapsed = performance.now() - started;
  console.log(`${N} concurrent allocations for one room over 2 routers: ${elapsed.toFixed(0)} ms`);
  expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
  const homes = new Set(results.map((r) => r.body.homeRegion));
  expect(homes.size).toBe(1);
  const state = await a.app.rooms.getRoom('big-room');
  expect(state?.participants).toHaveLength(N);
  expect(new Set(state?.participants.map((p) => p.participantId)).size).toBe(N);
  const counts = await a.app.rooms.nodeCounts();
  expect([...counts.values()].reduce((x, y) => x + y, 0)).toBe(N);

  // Every allocation reached the session log exactly once.
  await Promise.all([a.app.sessions.flush(), b.app.sessions.flush()]);
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  const rows = await client.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, min(home_region) AS h1, max(home_region) AS h2 FROM ${ns.pgSchema}.video_sessions WHERE room_id = 'big-room'`);
  await client.end();
  expect(rows.rows[0]).toEqual({ n: N, ids: N, h1: [...homes][0], h2: [...homes][0] });
});

it('a router placing on a room as it remembers it still sees what another router changed since', async () => {
  const regions = ['us-west', 'us-east', 'eu-west', 'apac'];
  const near = (region: string) => Object.fromEntries(regions.map((r) => [r, r === region ? 10 : 150]));
  const othersIn = (body: { reasons: Array<{ message: string }> }) => body.reasons.map((r) => /to (\d+) others?/.exec(r.message)?.[1]).find(Boolean);
  expect((await allocate(a.url, { roomId: 'shared-room', participantId: 'alice', latencies: near('us-west') })).status).toBe(200);
  expect((await allocate(b.url, { roomId: 'shared-room', participantId: 'bob', latencies: near('apac') })).status).toBe(200);
  // Router A last saw the room with alice alone; bob joined through B since.
  const carol = await allocate(a.url, { roomId: 'shared-room', participantId: 'carol', latencies: near('eu-west') });
  expect(carol.status).toBe(200);
  expect(othersIn(carol.body)).toBe('2');
  const dave = await allocate(a.url, { roomId: 'shared-room', participantId: 'dave', latencies: near('us-east') });
  expect(othersIn(dave.body)).toBe('3');
  expect((await a.app.rooms.getRoom('shared-room'))?.participants.map((p) => p.participantId)).toEqual(['alice', 'bob', 'carol', 'dave']);
});
