import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ControlCallError, controlCall, controlPlane } from '../../shared/control-plane.ts';
import type { InventoryRoom, ParticipantEventAnswer } from '../../shared/schemas/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * The reconcile of Redis with the agents' inventories (router/operations/reconciler.ts), with real
 * Redis (this run's key prefix) and two routers. The writes a failed-over primary lost are
 * simulated by deleting keys: a room's pin and participants, node counts, a leave. Both routers run
 * the pass at once, as two leaders would around a failover.
 */
const US = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };
const EU = { 'us-west': 130, 'us-east': 80, 'eu-west': 10, apac: 150 };

const cleanup: Array<() => Promise<unknown>> = [];
let routers: RunningRouter[];
let nodes: FakeNodes;
let redis: Redis;
let prefix: string;

beforeAll(async () => {
  // The periodic pass and the identity watch stay out of the way: the test runs the passes.
  const config = testConfig('real', { reconcileIntervalMs: 3_600_000, redisIdentityCheckMs: 60_000, maxParticipantsPerNode: 100, allocationTtlMs: 30_000 });
  prefix = config.redisKeyPrefix;
  routers = [await startRouter(config), await startRouter(config)];
  cleanup.push(() => Promise.all(routers.map((r) => r.close())));
  redis = new Redis(REDIS_URL);
  cleanup.push(() => redis.quit());
  nodes = new FakeNodes(routers[0]!.url, config.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(config.heartbeatIntervalMs);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 100 });
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west', maxParticipants: 100 });
  await Promise.all(routers.map((r) => r.app.registry.refresh()));
});

afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  await cleanupNamespaces();
});

const reconcilers = () => routers.map((r) => r.app.reconciler!);

/** Both routers reconcile at once (two leaders); the sum of what they did. */
async function passBoth() {
  const results = await Promise.all(reconcilers().map((r) => r.runPass()));
  return {
    adopted: results.reduce((n, r) => n + r.adopted, 0),
    dropped: results.reduce((n, r) => n + r.dropped, 0),
    movedSecondHome: results.reduce((n, r) => n + r.movedSecondHome, 0),
    movedOverbooked: results.reduce((n, r) => n + r.movedOverbooked, 0),
    recounted: results.flatMap((r) => r.recounted),
  };
}

function report(event: 'joined' | 'left', nodeId: string, roomId: string, participantId: string, allocationId: string) {
  return controlCall(controlPlane.participantEvent, { secret: routers[0]!.config.clusterSecret, baseUrl: routers[1]!.url, timeoutMs: 5_000, nowMs: Date.now() }, { nodeId, roomId, participantId, allocationId, event });
}

/** Allocates and joins; returns the allocation. */
async function join(roomId: string, participantId: string, latencies: Record<string, number>) {
  const res = await allocate(routers[0]!.url, { roomId, participantId, latencies });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const answer = await report('joined', res.body.node.id, roomId, participantId, res.body.allocationId);
  expect((answer.body as ParticipantEventAnswer).current).toBe(true);
  return res.body;
}

/** What the agents hold: the sessions given, by node. */
function setInventories(sessions: Array<{ nodeId: string; roomId: string; participantId: string; allocationId: string }>) {
  nodes.inventories.clear();
  for (const nodeId of ['us-west-1', 'eu-west-1']) {
    const rooms = new Map<string, InventoryRoom>();
    for (const s of sessions.filter((x) => x.nodeId === nodeId)) {
      const room = rooms.get(s.roomId) ?? { roomId: s.roomId, participants: [] };
      room.participants.push({ participantId: s.participantId, allocationId: s.allocationId, joined: true });
      rooms.set(s.roomId, room);
    }
    nodes.inventories.set(nodeId, [...rooms.values()]);
  }
}

const roomKey = (roomId: string) => `${prefix}room:${roomId}`;

/** The sessions of every participant Redis records as joined now (what the agents hold when nothing was lost). */
async function joinedInRedis() {
  const sessions: Array<{ nodeId: string; roomId: string; participantId: string; allocationId: string }> = [];
  for (const roomId of await routers[0]!.app.rooms.listRoomIds()) {
    for (const p of (await routers[0]!.app.rooms.getRoom(roomId))?.participants ?? []) if (p.status === 'joined') sessions.push({ nodeId: p.nodeId, roomId, participantId: p.participantId, allocationId: p.allocationId });
  }
  return sessions;
}

/** Every node's count equals the participant records on it, and none is above its limit. */
async function expectExactCounts() {
  const counts = await routers[0]!.app.rooms.nodeCounts();
  const records = new Map<string, number>();
  for (const roomId of await routers[0]!.app.rooms.listRoomIds()) {
    for (const p of (await routers[0]!.app.rooms.getRoom(roomId))?.participants ?? []) records.set(p.nodeId, (records.get(p.nodeId) ?? 0) + 1);
  }
  expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(records));
}

it('lost pins, participants and counts are re-created from the inventories; a lost leave is dropped; counts exact; two leaders do each change once', async () => {
  const a = await join('lost-room', 'alice', US);
  const b = await join('lost-room', 'bob', US);
  const c = await join('kept-room', 'carol', US);
  const d = await join('kept-room', 'dave', US);
  const sessions = [a, b, c, d].map((x, i) => ({ nodeId: x.node.id, roomId: i < 2 ? 'lost-room' : 'kept-room', participantId: ['alice', 'bob', 'carol', 'dave'][i]!, allocationId: x.allocationId }));
  // dave left, but his leave was lost: his node no longer holds him.
  setInventories(sessions.filter((s) => s.participantId !== 'dave'));
  // Lost with the old primary: the whole of lost-room (pin and participants), and the node counts.
  await redis.del(roomKey('lost-room'), `${roomKey('lost-room')}:participants`, `${prefix}nodecount`);

  const done = await passBoth();
  console.log(`two leaders at once: ${JSON.stringify(done)}`);
  expect(done.adopted).toBe(2);
  expect(done.dropped).toBe(1);
  const lost = (await routers[1]!.app.rooms.getRoom('lost-room'))!;
  expect(lost.room.homeNodeId).toBe(a.node.id);
  expect(lost.participants.map((p) => [p.participantId, p.allocationId, p.status])).toEqual([
    ['alice', a.allocationId, 'joined'],
    ['bob', b.allocationId, 'joined'],
  ]);
  expect((await routers[1]!.app.rooms.getRoom('kept-room'))!.participants.map((p) => p.participantId)).toEqual(['carol']);
  await expectExactCounts();
  expect(Object.fromEntries(await routers[0]!.app.rooms.nodeCounts())).toEqual({ [a.node.id]: 3 });

  // A second pass finds nothing to do.
  const again = await passBoth();
  expect(again).toEqual({ adopted: 0, dropped: 0, movedSecondHome: 0, movedOverbooked: 0, recounted: [] });
});

it('a room with a second home: the pin in Redis wins, the participants of the losing home are told to move once, counted until they do', async () => {
  const p1 = await join('split', 'p1', US);
  const p2 = await join('split', 'p2', US);
  expect(p1.node.id).toBe('us-west-1');
  // The pin and both participants lost; a newcomer from Europe pins the room anew, on eu-west-1.
  await redis.del(roomKey('split'), `${roomKey('split')}:participants`);
  const p3 = await join('split', 'p3', EU);
  expect(p3.node.id).toBe('eu-west-1');
  expect((await routers[0]!.app.rooms.getRoom('split'))!.room.homeNodeId).toBe('eu-west-1');
  setInventories([
    { nodeId: p1.node.id, roomId: 'split', participantId: 'p1', allocationId: p1.allocationId },
    { nodeId: p2.node.id, roomId: 'split', participantId: 'p2', allocationId: p2.allocationId },
    { nodeId: p3.node.id, roomId: 'split', participantId: 'p3', allocationId: p3.allocationId },
  ]);
  const movesBefore = nodes.moves.length;

  const done = await passBoth();
  expect(done.adopted).toBe(2);
  expect(done.movedSecondHome).toBe(2);
  const state = (await routers[0]!.app.rooms.getRoom('split'))!;
  expect(state.room.homeNodeId).toBe('eu-west-1');
  expect(state.participants.map((p) => `${p.participantId}@${p.nodeId}`).sort()).toEqual(['p1@us-west-1', 'p2@us-west-1', 'p3@eu-west-1']);
  // Each told once, with its allocation, though both routers reconciled.
  expect(nodes.moves.slice(movesBefore).map((m) => `${m.participantId} ${m.allocationId}`).sort()).toEqual([`p1 ${p1.allocationId}`, `p2 ${p2.allocationId}`]);
  await expectExactCounts();

  // p1 moves: it allocates again, lands by the pin, and the room has one home.
  const moved = await allocate(routers[1]!.url, { roomId: 'split', participantId: 'p1', latencies: US });
  expect(moved.status).toBe(200);
  expect(moved.body.homeRegion).toBe('eu-west');
  await passBoth();
  expect(nodes.moves.length).toBe(movesBefore + 2);
});

it('an overbooked node: its newest participants beyond the limit are told to move, once', async () => {
  // Five sessions on eu-west-1 that Redis lost (it had admitted them while it could take them).
  const sessions = Array.from({ length: 5 }, (_, i) => ({ nodeId: 'eu-west-1', roomId: `crowd-${i}`, participantId: `q${i}`, allocationId: randomUUID() }));
  setInventories(sessions);
  expect((await passBoth()).adopted).toBe(5);
  // The node now takes 3.
  nodes.set('eu-west-1', { maxParticipants: 3 });
  await nodes.heartbeat('eu-west-1');
  await Promise.all(routers.map((r) => r.app.registry.refresh()));
  const movesBefore = nodes.moves.length;
  const done = await passBoth();
  expect(done.movedOverbooked).toBe(2);
  const told = nodes.moves.slice(movesBefore);
  // The newest two: adopted last (the same pick on both routers, each told by one).
  const newest = (await Promise.all(sessions.map(async (x) => (await routers[0]!.app.rooms.getRoom(x.roomId))!.participants[0]!)))
    .sort((x, y) => y.allocatedAtMs - x.allocatedAtMs || (x.allocationId < y.allocationId ? -1 : 1))
    .slice(0, 2)
    .map((p) => p.participantId);
  expect(told.map((m) => m.participantId).sort()).toEqual(newest.sort());
  // Told once: the next passes leave them to move.
  await passBoth();
  expect(nodes.moves.length - movesBefore).toBe(2);
  await expectExactCounts();
  nodes.set('eu-west-1', { maxParticipants: 100 });
});

it('a join report of an allocation Redis lost: re-created after a change of Redis server, "not current" when none was seen', async () => {
  nodes.inventories.clear();
  const lost = await allocate(routers[0]!.url, { roomId: 'late-join', participantId: 'erin', latencies: US });
  expect(lost.status).toBe(200);
  await redis.del(roomKey('late-join'), `${roomKey('late-join')}:participants`);
  // No change of server seen: the allocation is unknown, as an expired one.
  let answer = await report('joined', lost.body.node.id, 'late-join', 'erin', lost.body.allocationId);
  expect(answer.body).toEqual({ current: false, reason: 'unknown' });

  // The data changed hands (the identity Redis keeps is gone, as on a server that never had it).
  await redis.del(`${prefix}redis-identity`);
  answer = await report('joined', lost.body.node.id, 'late-join', 'erin', lost.body.allocationId);
  expect((answer.body as ParticipantEventAnswer).current).toBe(true);
  const state = (await routers[0]!.app.rooms.getRoom('late-join'))!;
  expect(state.room.homeNodeId).toBe(lost.body.node.id);
  expect(state.participants.map((p) => [p.participantId, p.allocationId, p.status])).toEqual([['erin', lost.body.allocationId, 'joined']]);
  // The deleted record left its count behind (a real failover loses both together): the pass recounts.
  await passBoth();
  await expectExactCounts();
});

it("a participant's new allocation lost with its join (Redis holds its former one, which its node no longer serves): dropped and re-created in one pass", async () => {
  const former = await join('replaced-room', 'frank', US);
  const formerRecord = (await redis.hget(`${roomKey('replaced-room')}:participants`, 'frank'))!;
  const latest = await join('replaced-room', 'frank', US);
  expect(latest.node.id).toBe(former.node.id);
  setInventories(await joinedInRedis());
  // Lost with the old primary: the new allocation and its join; Redis has the former one again.
  await redis.hset(`${roomKey('replaced-room')}:participants`, 'frank', formerRecord);

  // One leader's pass (with two at once, one's drop can precede the other's re-creation by chance).
  const done = await reconcilers()[0]!.runPass();
  expect(done).toMatchObject({ dropped: 1, adopted: 1 });
  const state = (await routers[0]!.app.rooms.getRoom('replaced-room'))!;
  expect(state.participants.map((p) => [p.participantId, p.allocationId, p.status])).toEqual([['frank', latest.allocationId, 'joined']]);
  await expectExactCounts();
});

it('a join lost (Redis holds the allocation as not joined, its node serves it joined): marked joined, so it does not expire', async () => {
  const res = await allocate(routers[0]!.url, { roomId: 'lost-join', participantId: 'gina', latencies: US });
  expect(res.status).toBe(200);
  setInventories([...(await joinedInRedis()), { nodeId: res.body.node.id, roomId: 'lost-join', participantId: 'gina', allocationId: res.body.allocationId }]);
  expect((await routers[0]!.app.rooms.getRoom('lost-join'))!.participants.map((p) => p.status)).toEqual(['allocated']);

  const done = await passBoth();
  expect(done).toMatchObject({ adopted: 0, dropped: 0 });
  expect((await routers[0]!.app.rooms.getRoom('lost-join'))!.participants.map((p) => [p.allocationId, p.status])).toEqual([[res.body.allocationId, 'joined']]);
  // No longer pending: the expiry sweep leaves it.
  expect(await redis.zrange(`${prefix}allocations:pending`, 0, -1)).not.toContainEqual(JSON.stringify(['lost-join', 'gina']));
  await expectExactCounts();
});

/** A join report refused as the route does while the change of server waits for a pass: 503, to be sent again. */
async function expectAskedAgain(nodeId: string, roomId: string, participantId: string, allocationId: string) {
  const refused = await report('joined', nodeId, roomId, participantId, allocationId).then(
    () => null,
    (err: unknown) => err,
  );
  expect(refused).toBeInstanceOf(ControlCallError);
  expect(refused).toMatchObject({ statusCode: 503, code: 'DEPENDENCY_UNAVAILABLE' });
}

it("a join report after a change of server of an allocation lost with its predecessor's leave (Redis holds the former one on that node): 503 until a pass has run, then current; a stale one then \"replaced\"", async () => {
  const former = await join('late-replace', 'hugo', US);
  const formerRecord = (await redis.hget(`${roomKey('late-replace')}:participants`, 'hugo'))!;
  const lost = await allocate(routers[0]!.url, { roomId: 'late-replace', participantId: 'hugo', latencies: US });
  expect(lost.status).toBe(200);
  expect(lost.body.node.id).toBe(former.node.id);
  // The node serves the new session (it ended the former one); lost with the old primary: the new
  // allocation and the former session's leave. Then the change of server.
  setInventories([...(await joinedInRedis()).filter((x) => x.participantId !== 'hugo'), { nodeId: lost.body.node.id, roomId: 'late-replace', participantId: 'hugo', allocationId: lost.body.allocationId }]);
  await redis.hset(`${roomKey('late-replace')}:participants`, 'hugo', formerRecord);
  await redis.zrem(`${prefix}allocations:pending`, JSON.stringify(['late-replace', 'hugo']));
  await redis.del(`${prefix}redis-identity`);

  // Redis alone cannot tell this report from a stale one: asked again until a pass has run.
  await expectAskedAgain(lost.body.node.id, 'late-replace', 'hugo', lost.body.allocationId);
  expect((await routers[0]!.app.rooms.getRoom('late-replace'))!.participants.map((p) => p.allocationId)).toEqual([former.allocationId]);
  // A pass (the one the report's identity check started on the leader may run first: the counts
  // are whichever's) drops the former, which no node serves, and re-creates the lost one.
  await reconcilers()[0]!.runPass();
  let answer = await report('joined', lost.body.node.id, 'late-replace', 'hugo', lost.body.allocationId);
  expect(answer.body).toMatchObject({ current: true });
  const state = (await routers[0]!.app.rooms.getRoom('late-replace'))!;
  expect(state.participants.map((p) => [p.participantId, p.allocationId, p.status])).toEqual([['hugo', lost.body.allocationId, 'joined']]);
  await expectExactCounts();

  // Allocated again: a report of the earlier allocation is stale, "replaced" as always.
  const newer = await allocate(routers[0]!.url, { roomId: 'late-replace', participantId: 'hugo', latencies: US });
  expect(newer.status).toBe(200);
  answer = await report('joined', lost.body.node.id, 'late-replace', 'hugo', lost.body.allocationId);
  expect(answer.body).toEqual({ current: false, reason: 'replaced' });
  expect((await routers[0]!.app.rooms.getRoom('late-replace'))!.participants.map((p) => p.allocationId)).toEqual([newer.body.allocationId]);
  await expectExactCounts();
});

it("a stale join report after a change of server, the participant allocated again on the new server before the change was noticed: 503 until a pass has run, then \"replaced\"; the newer allocation stays", async () => {
  const older = await allocate(routers[0]!.url, { roomId: 'late-stale', participantId: 'iris', latencies: US });
  expect(older.status).toBe(200);
  // The newer allocation is made on the new server before any router has noticed the change.
  await redis.del(`${prefix}redis-identity`);
  const newer = await join('late-stale', 'iris', US);
  setInventories(await joinedInRedis());
  await expectAskedAgain(older.body.node.id, 'late-stale', 'iris', older.body.allocationId);
  await reconcilers()[0]!.runPass();
  const answer = await report('joined', older.body.node.id, 'late-stale', 'iris', older.body.allocationId);
  expect(answer.body).toEqual({ current: false, reason: 'replaced' });
  expect((await routers[0]!.app.rooms.getRoom('late-stale'))!.participants.map((p) => [p.allocationId, p.status])).toEqual([[newer.allocationId, 'joined']]);
  await expectExactCounts();
});

it('a join report after a change of server of an allocation lost on another node than its former one: 503 until a pass has run, then current; the mark read by the other router', async () => {
  const former = await join('cross-node', 'ivy', US);
  const lost = await allocate(routers[0]!.url, { roomId: 'cross-node', participantId: 'ivy', latencies: US });
  expect(lost.status).toBe(200);
  // Lost with the old primary: the new allocation and the former session's leave; the former was
  // an edge on the other node (placement put both on the home here: the record is written there).
  // Then the change of server. The new node admitted ivy, and her former node ended that session.
  const elsewhere = lost.body.node.id === 'us-west-1' ? { nodeId: 'eu-west-1', region: 'eu-west' } : { nodeId: 'us-west-1', region: 'us-west' };
  const formerRecord = { ...(JSON.parse((await redis.hget(`${roomKey('cross-node')}:participants`, 'ivy'))!) as object), allocationId: former.allocationId, ...elsewhere };
  setInventories([...(await joinedInRedis()).filter((s) => s.participantId !== 'ivy'), { nodeId: lost.body.node.id, roomId: 'cross-node', participantId: 'ivy', allocationId: lost.body.allocationId }]);
  await redis.hset(`${roomKey('cross-node')}:participants`, 'ivy', JSON.stringify({ ...formerRecord, status: 'joined', allocatedAtMs: Date.now() - 1_000 }));
  await redis.zrem(`${prefix}allocations:pending`, JSON.stringify(['cross-node', 'ivy']));
  await redis.del(`${prefix}redis-identity`);

  // Redis holds ivy's former allocation: not "not current" yet, asked again.
  await expectAskedAgain(lost.body.node.id, 'cross-node', 'ivy', lost.body.allocationId);
  expect((await routers[0]!.app.rooms.getRoom('cross-node'))!.participants.map((p) => [p.allocationId, p.nodeId])).toEqual([[former.allocationId, elsewhere.nodeId]]);

  // A pass drops the former (no node serves it) and re-creates the lost one; the report again: current.
  await reconcilers()[0]!.runPass();
  const answer = await report('joined', lost.body.node.id, 'cross-node', 'ivy', lost.body.allocationId);
  expect(answer.body).toMatchObject({ current: true });
  // The router that answered 503 reads the mark the pass left in Redis: a stale report is "not current" at once.
  const stale = await report('joined', elsewhere.nodeId, 'cross-node', 'ivy', former.allocationId);
  expect(stale.body).toEqual({ current: false, reason: 'replaced' });
  await expectExactCounts();
});
