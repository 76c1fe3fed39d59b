import { afterEach, expect, it } from 'vitest';
import { controlCall, controlPlane } from '../../shared/control-plane.ts';
import type { ParticipantEvent } from '../../shared/schemas/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, startRouter, testConfig, type Backend, type RunningRouter } from '../utils/router-harness.ts';

/**
 * The router pushes a room's node set (controlPlane.roomNodesPush) to the nodes that serve it and
 * to those that served it just before, after each change: a node new to the room, a node left
 * empty, a participant moved to another node, an admin removal. Pushes for a room carry its
 * version, so each node sees them rising. Scripted nodes (test/utils/fake-nodes.ts) take them.
 */
const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };

let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
  router = nodes = null;
  await cleanupNamespaces();
});

async function event(r: RunningRouter, body: ParticipantEvent) {
  return controlCall(controlPlane.participantEvent, { secret: r.config.clusterSecret, baseUrl: r.url, timeoutMs: 5_000, nowMs: Date.now() }, body);
}

/** Waits until the pushes received so far satisfy `done`. */
async function pushesUntil(what: string, done: (pushes: FakeNodes['pushes']) => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done(nodes!.pushes)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; pushes: ${JSON.stringify(nodes!.pushes)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const setOf = (p: FakeNodes['pushes'][number]) => p.push.nodes.map((n) => n.nodeId).sort();
const reached = (nodeId: string, roomId: string, set: string[]) => (pushes: FakeNodes['pushes']) =>
  pushes.some((p) => p.nodeId === nodeId && p.push.roomId === roomId && JSON.stringify(setOf(p)) === JSON.stringify(set));

it.each(['memory', 'real'] as const)('pushes carry rising versions and reach the nodes that serve the room and those that just left it (%s)', async (backend: Backend) => {
  router = await startRouter(testConfig(backend, { rebalance: false }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(router.config.heartbeatIntervalMs);
  for (const [nodeId, region] of [['us-west-1', 'us-west'], ['us-east-1', 'us-east'], ['eu-west-1', 'eu-west']]) await nodes.add({ nodeId: nodeId!, region: region! });
  await router.app.registry.refresh();

  // First participant: its node alone; the `joined` answer carries the room's node set too.
  const a = (await allocate(router.url, { roomId: 'r', participantId: 'a', latencies: US_WEST })).body;
  expect(a.node.id).toBe('us-west-1');
  await pushesUntil('us-west-1 told it serves r', reached('us-west-1', 'r', ['us-west-1']));
  const joined = await event(router, { nodeId: a.node.id, roomId: 'r', participantId: 'a', allocationId: a.allocationId, event: 'joined' });
  expect(joined.statusCode).toBe(200);
  expect(joined.body).toMatchObject({ current: true, room: { nodes: [{ nodeId: 'us-west-1', region: 'us-west' }] } });

  // A second participant on another node: both nodes learn the new set.
  const b = (await allocate(router.url, { roomId: 'r', participantId: 'b', latencies: US_WEST, excludeNodeIds: ['us-west-1'] })).body;
  expect(b.node.id).not.toBe('us-west-1');
  const two = [a.node.id, b.node.id].sort();
  await pushesUntil('both nodes told the two-node set', (ps) => reached('us-west-1', 'r', two)(ps) && reached(b.node.id, 'r', two)(ps));

  // b moves to a third node (allocates again elsewhere): its old node is told it left the set.
  const third = ['us-west-1', 'us-east-1', 'eu-west-1'].find((id) => id !== b.node.id && id !== 'us-west-1')!;
  const moved = (await allocate(router.url, { roomId: 'r', participantId: 'b', latencies: US_WEST, excludeNodeIds: ['us-west-1', b.node.id] })).body;
  expect(moved.node.id).toBe(third);
  const afterMove = ['us-west-1', third].sort();
  await pushesUntil('old and new nodes told of the move', (ps) => reached(b.node.id, 'r', afterMove)(ps) && reached(third, 'r', afterMove)(ps) && reached('us-west-1', 'r', afterMove)(ps));

  // b leaves: its node is empty, and told so along with the one left.
  await event(router, { nodeId: third, roomId: 'r', participantId: 'b', allocationId: moved.allocationId, event: 'left' });
  await pushesUntil('both told the room is back to one node', (ps) => reached(third, 'r', ['us-west-1'])(ps) && reached('us-west-1', 'r', ['us-west-1'])(ps));

  // Each node saw the room's versions rising, never the same set twice in a row.
  const byNode = new Map<string, FakeNodes['pushes']>();
  for (const p of nodes.pushes) byNode.set(p.nodeId, [...(byNode.get(p.nodeId) ?? []), p]);
  console.log(`pushes: ${[...byNode].map(([id, ps]) => `${id} ${ps.map((p) => `v${p.push.version}[${setOf(p).join(',')}]`).join(' ')}`).join('; ')}`);
  for (const [, ps] of byNode) {
    const versions = ps.map((p) => p.push.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
  }
});


it('an allocation that knew the room exactly pushes the room as it committed it, without reading it back; a change it did not see is read', async () => {
  router = await startRouter(testConfig('real', { rebalance: false }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(router.config.heartbeatIntervalMs);
  for (const [nodeId, region] of [['us-west-1', 'us-west'], ['us-east-1', 'us-east']]) await nodes.add({ nodeId: nodeId!, region: region! });
  await router.app.registry.refresh();
  const rooms = router.app.rooms;
  const getRoom = rooms.getRoom.bind(rooms);
  const reads: string[] = [];
  rooms.getRoom = (roomId) => {
    reads.push(roomId);
    return getRoom(roomId);
  };

  // A new room, then a second node in it: each allocation's basis is exact (this router made the room).
  const a = (await allocate(router.url, { roomId: 'r', participantId: 'a', latencies: US_WEST })).body;
  await pushesUntil('us-west-1 told it serves r', reached('us-west-1', 'r', ['us-west-1']));
  const b = (await allocate(router.url, { roomId: 'r', participantId: 'b', latencies: US_WEST, excludeNodeIds: ['us-west-1'] })).body;
  const two = [a.node.id, b.node.id].sort();
  await pushesUntil('both nodes told the two-node set', (ps) => reached('us-west-1', 'r', two)(ps) && reached(b.node.id, 'r', two)(ps));
  expect(reads.filter((id) => id === 'r')).toEqual([]);
  // What was pushed is what the store holds: the same version.
  const stored = await getRoom('r');
  expect(nodes.pushes.filter((p) => p.push.roomId === 'r').at(-1)!.push.version).toBe(stored!.version);

  // b leaves (a node's report, not an allocation of this router's): the push reads the room.
  await event(router, { nodeId: b.node.id, roomId: 'r', participantId: 'b', allocationId: b.allocationId, event: 'left' });
  await pushesUntil('both told the room is back to one node', (ps) => reached(b.node.id, 'r', ['us-west-1'])(ps) && reached('us-west-1', 'r', ['us-west-1'])(ps));
  expect(reads.filter((id) => id === 'r').length).toBeGreaterThanOrEqual(1);
});

it('one push at a time per node: the rooms that change while it is on its way go together in the next', async () => {
  router = await startRouter(testConfig('real', { rebalance: false }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  nodes.pushAnswerDelayMs = 500;
  await nodes.start(router.config.heartbeatIntervalMs);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 1_000 });
  await router.app.registry.refresh();

  const rooms = Array.from({ length: 30 }, (_, i) => `batch-${i}`);
  await Promise.all(rooms.map((roomId) => allocate(router!.url, { roomId, participantId: 'a', latencies: US_WEST })));
  await pushesUntil('every room pushed to us-west-1', (ps) => rooms.every((roomId) => reached('us-west-1', roomId, ['us-west-1'])(ps)));
  const calls = nodes.pushCalls.get('us-west-1') ?? 0;
  console.log(`${rooms.length} rooms new to us-west-1 reached it in ${calls} push calls`);
  // Each room once, in far fewer calls than rooms (the first call, then what queued while it was answered).
  expect(nodes.pushes.filter((p) => p.push.roomId.startsWith('batch-')).length).toBe(rooms.length);
  expect(calls).toBeLessThanOrEqual(5);
});
