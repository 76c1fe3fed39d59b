import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { loadDataset } from '../../bench/placement/dataset.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { until } from '../utils/sentinel-group.ts';

/**
 * Around a Redis failover the leader lease can be held by two routers for up to one lease period.
 * Here two routers share the room keys and both lead all along (each has the local lease: always
 * leader): both re-home the rooms of a dead node, both sweep expired allocations, both rebalance the
 * same rooms at the same moment. Every duty is a compare-and-set in Redis, so each room ends with one
 * home moved once, every expiry is counted once, the node counts are exact and no participant is
 * told to move twice.
 */
const DATA = loadDataset(fileURLToPath(new URL('../../bench/data/latency.json', import.meta.url)));
const NODE = (region: string) => `${region}-1`;
const city = (name: string): Record<string, number> => ({ ...DATA.cities.find((c) => c.name === name)!.rttMs });
const ASIA = ['Mumbai', 'Delhi', 'Dhaka', 'Bangkok', 'Singapore', 'Beijing'];
const ROOMS = 8;

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  await cleanupNamespaces();
});

async function counterTotal(router: RunningRouter, name: 'rehomes' | 'expiredAllocations'): Promise<number> {
  return (await router.app.metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
}

it('two routers leading at once: re-homing, expiry sweeps and rebalancing of the same rooms stay exact', async () => {
  const ns = runNamespace();
  const overrides = { rehomeIntervalMs: 20, expirySweepIntervalMs: 20, allocationTtlMs: 4_000, rebalanceDebounceMs: 600_000 };
  const routers: RunningRouter[] = [];
  for (let i = 0; i < 2; i++) routers.push(await startRouter(testConfig('real', overrides, ns)));
  cleanup.push(() => Promise.all(routers.map((r) => r.close())));
  expect(routers.every((r) => r.app.isLeader())).toBe(true);
  const nodes = new FakeNodes(routers[0]!.url, routers[0]!.config.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(routers[0]!.config.heartbeatIntervalMs);
  for (const region of DATA.regions) await nodes.add({ nodeId: NODE(region), region });
  for (const a of DATA.regions) for (const b of DATA.regions) if (a !== b) nodes.setPeerRtt(NODE(a), NODE(b), DATA.interRegionRttMs[a]![b]!);
  await nodes.heartbeatAll();
  await Promise.all(routers.map((r) => r.app.registry.refresh()));
  const [first, second] = routers as [RunningRouter, RunningRouter];

  const join = async (router: RunningRouter, roomId: string, participantId: string, latencies: Record<string, number>) => {
    const res = await allocate(router.url, { roomId, participantId, latencies });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const event = { nodeId: res.body.node.id, roomId, participantId, allocationId: res.body.allocationId, event: 'joined' };
    const reply = await signedCall({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: '/v1/nodes/participant-event', body: event, timeoutMs: 5_000 });
    expect(reply.statusCode).toBe(200);
    return res.body;
  };

  // Expiry: allocations never joined, in rooms of their own, alternating between the routers.
  const unjoined = 30;
  for (let i = 0; i < unjoined; i++) expect((await allocate(routers[i % 2]!.url, { roomId: `expiring-${i}`, participantId: 'p', latencies: city('New York') })).status).toBe(200);

  // Rebalancing: Paris, then six people in Asia (greedy keeps them on eu-west; the optimum moves
  // the room), joined through both routers.
  const rebalanced = Array.from({ length: ROOMS }, (_, i) => `paris-asia-${i}`);
  for (const roomId of rebalanced) {
    for (const [k, who] of ['Paris', ...ASIA].entries()) await join(routers[k % 2]!, roomId, who, city(who));
  }
  const moved: string[] = [];
  nodes.onMove = (move) => moved.push(`${move.roomId}/${move.participantId}`);
  const decisions = await Promise.all(rebalanced.flatMap((roomId) => [first.app.rebalancer.run(roomId), second.app.rebalancer.run(roomId)]));
  const movedDecisions = decisions.filter((d) => d?.outcome === 'moved');
  console.log(`rebalancing by two leaders at once: ${decisions.map((d) => d?.outcome).join(' ')}; ${moved.length} participants told to move`);
  // Each room's plan was written by one router only (the other lost the compare-and-set on the version).
  expect(new Set(movedDecisions.map((d) => d!.roomId)).size).toBe(movedDecisions.length);
  expect(movedDecisions.length).toBeGreaterThan(0);
  expect(new Set(moved).size).toBe(moved.length);
  expect(moved.length).toBe(movedDecisions.reduce((sum, d) => sum + d!.moves.length, 0));

  // Re-homing: the rooms' home (eu-west-1, Paris's edge) dies while participants remain on other
  // nodes; both leaders re-home the same rooms.
  const homed = Array.from({ length: ROOMS }, (_, i) => `dying-home-${i}`);
  for (const roomId of homed) {
    const paris = await join(first, roomId, 'Paris', city('Paris'));
    expect(paris.node.id).toBe(NODE('eu-west'));
    for (const who of ['los-angeles', 'seattle']) await join(second, roomId, who, { 'us-west': 5, 'us-east': 70, 'eu-west': 200, apac: 200 });
    const state = (await first.app.rooms.getRoom(roomId))!;
    expect(state.participants.some((p) => p.nodeId !== NODE('eu-west'))).toBe(true);
  }
  const epochs = new Map<string, number>();
  for (const roomId of [...homed, ...rebalanced]) epochs.set(roomId, (await first.app.rooms.getRoom(roomId))!.room.epoch);
  const rehomesBefore = (await counterTotal(first, 'rehomes')) + (await counterTotal(second, 'rehomes'));
  nodes.silence(NODE('eu-west'));
  await until('every room homed off the dead node', async () => {
    for (const roomId of homed) if ((await first.app.rooms.getRoom(roomId))!.room.homeNodeId === NODE('eu-west')) return null;
    return true;
  }, 30_000);
  // Both leaders see the node dead; let a few more ticks of each run over the same rooms.
  await new Promise((r) => setTimeout(r, 300));
  const rehomes = (await counterTotal(first, 'rehomes')) + (await counterTotal(second, 'rehomes')) - rehomesBefore;
  const rehomedRooms: string[] = [];
  for (const [roomId, epoch] of epochs) {
    const room = (await first.app.rooms.getRoom(roomId))!.room;
    if (room.epoch !== epoch) rehomedRooms.push(roomId);
    expect(room.epoch - epoch, roomId).toBeLessThanOrEqual(1);
  }
  console.log(`re-homing by two leaders at once: ${rehomes} re-homes counted by the routers (${await counterTotal(first, 'rehomes')} / ${await counterTotal(second, 'rehomes')}), ${rehomedRooms.length} rooms moved`);
  expect(rehomedRooms).toEqual(expect.arrayContaining(homed));
  expect(rehomes).toBe(rehomedRooms.length);
  nodes.resume(NODE('eu-west'));

  // Expiry: both sweepers raced over the same pending allocations; each is counted once.
  await until('every unjoined allocation expired', async () => ((await counterTotal(first, 'expiredAllocations')) + (await counterTotal(second, 'expiredAllocations')) >= unjoined ? true : null), 30_000);
  await new Promise((r) => setTimeout(r, 200));
  const expired = [await counterTotal(first, 'expiredAllocations'), await counterTotal(second, 'expiredAllocations')];
  console.log(`expiry sweeps by two leaders at once: ${expired.join(' + ')} expirations for ${unjoined} unjoined allocations`);
  expect(expired[0]! + expired[1]!).toBe(unjoined);

  // Counts exact: each node's reservation count is the number of participant records on it.
  const onNodes = new Map<string, number>();
  for (const roomId of await first.app.rooms.listRoomIds()) {
    for (const p of (await first.app.rooms.getRoom(roomId))?.participants ?? []) onNodes.set(p.nodeId, (onNodes.get(p.nodeId) ?? 0) + 1);
  }
  const counts = new Map([...(await first.app.rooms.nodeCounts())].filter(([, n]) => n !== 0));
  expect(counts).toEqual(onNodes);
  expect([...onNodes.values()].reduce((a, b) => a + b, 0)).toBe(ROOMS * (1 + ASIA.length) + ROOMS * 3);
}, 120_000);
