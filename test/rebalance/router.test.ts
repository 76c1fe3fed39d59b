import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadDataset } from '../../bench/placement/dataset.ts';
import { exhaustiveOptimum, meanPairwiseMs } from '../../bench/placement/optimum.ts';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { MoveRequest } from '../../shared/schemas/index.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, runNamespace, startRouter, testConfig, type Backend, type RunningRouter } from '../utils/router-harness.ts';
import { waitFor } from '../utils/wait.ts';

/**
 * Live rebalancing end to end on the router: real /allocate, signed participant events as agents
 * send them, scripted nodes whose control URL takes the router's signed move requests and then
 * acts as the moved participant's SDK does (allocate again, join the new edge, leave the old).
 * Client latencies are the simulator data set's cities (bench/data/latency.json); the inter-region
 * RTTs are the data set's, reported by the nodes as measured.
 */
const DATA = loadDataset(fileURLToPath(new URL('../../bench/data/latency.json', import.meta.url)));
const REGIONS = DATA.regions;
const NODE = (region: string) => `${region}-1`;
const city = (name: string): Record<string, number> => {
  const c = DATA.cities.find((x) => x.name === name);
  if (!c) throw new Error(`no city ${name} in the data set`);
  return { ...c.rttMs };
};

interface World {
  routers: RunningRouter[];
  nodes: FakeNodes;
}

let world: World | null = null;
afterEach(async () => {
  await world?.nodes.close();
  await Promise.all(world?.routers.map((r) => r.close()) ?? []);
  world = null;
  await cleanupNamespaces();
});

async function startWorld(backend: Backend, overrides: Partial<GeoSfuConfig>, replicas = 1): Promise<World> {
  const ns = runNamespace();
  const routers: RunningRouter[] = [];
  for (let i = 0; i < replicas; i++) routers.push(await startRouter(testConfig(backend, { rebalanceDebounceMs: 300, ...overrides }, ns)));
  const nodes = new FakeNodes(routers[0]!.url, routers[0]!.config.clusterSecret);
  world = { routers, nodes };
  await nodes.start(routers[0]!.config.heartbeatIntervalMs);
  for (const region of REGIONS) await nodes.add({ nodeId: NODE(region), region });
  for (const a of REGIONS) for (const b of REGIONS) if (a !== b) nodes.setPeerRtt(NODE(a), NODE(b), DATA.interRegionRttMs[a]![b]!);
  await nodes.heartbeatAll();
  for (const r of routers) await r.app.registry.refresh();
  return world;
}

async function participantEvent(router: RunningRouter, body: { nodeId: string; roomId: string; participantId: string; allocationId: string; event: 'joined' | 'left' }) {
  const res = await signedCall({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: '/v1/nodes/participant-event', body, timeoutMs: 5_000 });
  return res.statusCode;
}

/** Allocates and joins (the agent's `joined` report); returns the allocation. */
async function join(router: RunningRouter, roomId: string, participantId: string, latencies: Record<string, number>) {
  const res = await allocate(router.url, { roomId, participantId, latencies });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(await participantEvent(router, { nodeId: res.body.node.id, roomId, participantId, allocationId: res.body.allocationId, event: 'joined' })).toBe(200);
  return res.body;
}

/**
 * What the SDK does on `moved`: allocate again (the router answers with the planned edge), join
 * there, then leave the old edge (its agent reports `left` for the old allocation).
 */
function followMoves(w: World, latencies: (participantId: string) => Record<string, number>, followed: Array<{ move: MoveRequest; region: string; reasons: string[] }>) {
  let next = 0;
  w.nodes.onMove = (move) => {
    const router = w.routers[next++ % w.routers.length]!;
    void (async () => {
      const state = await router.app.rooms.getRoom(move.roomId);
      const old = state?.participants.find((p) => p.participantId === move.participantId);
      const res = await allocate(router.url, { roomId: move.roomId, participantId: move.participantId, latencies: latencies(move.participantId) });
      followed.push({ move, region: res.body.region, reasons: res.body.reasons.map((r) => r.code) });
      await participantEvent(router, { nodeId: res.body.node.id, roomId: move.roomId, participantId: move.participantId, allocationId: res.body.allocationId, event: 'joined' });
      if (old) await participantEvent(router, { nodeId: old.nodeId, roomId: move.roomId, participantId: move.participantId, allocationId: move.allocationId, event: 'left' });
    })();
  };
}


describe('live rebalancing through the router', () => {
  it.each(['memory', 'real'] as const)('Paris, then six people in Asia: greedy keeps them on eu-west, rebalancing moves the room to the offline optimum (%s)', async (backend) => {
    // The debounce outlasts the seven joins even on a loaded machine: one decision for the burst.
    const w = await startWorld(backend, { rebalanceDebounceMs: 4_000 });
    const router = w.routers[0]!;
    const people = ['Paris', 'Mumbai', 'Delhi', 'Dhaka', 'Bangkok', 'Singapore', 'Beijing'];
    const followed: Array<{ move: MoveRequest; region: string; reasons: string[] }> = [];
    followMoves(w, (id) => city(id), followed);
    // Joined one after the other within the debounce: one decision for the whole burst.
    for (const who of people) {
      const allocation = await join(router, 'paris-asia', who, city(who));
      expect([who, allocation.region]).toEqual([who, 'eu-west']);
    }
    const before = (await router.app.rooms.getRoom('paris-asia'))!;
    // Settled: the moves followed, and the decision after them (the moved participants' joins
    // schedule the room again) moves nobody else.
    const settled = await waitFor('the room to settle', async () => {
      const s = await router.app.rooms.getRoom('paris-asia');
      const last = router.app.rebalancer.recent()[0];
      const quiet = last !== undefined && (last.outcome === 'stable' || last.outcome === 'below_threshold');
      return s && quiet && w.nodes.moves.length > 0 && s.plans.length === 0 && s.participants.every((p) => p.status === 'joined') && followed.length === w.nodes.moves.length ? s : null;
    }, 40_000).catch(async (err: Error) => {
      const s = await router.app.rooms.getRoom('paris-asia');
      const decisions = router.app.rebalancer.recent().map((d) => `${d.at} ${d.outcome} ${d.moves.map((m) => m.participantId).join(',')}`);
      throw new Error(`${err.message}; decisions ${JSON.stringify(decisions)}; room ${JSON.stringify(s?.participants.map((p) => [p.participantId, p.region, p.status]))} plans ${JSON.stringify(s?.plans)}; moves ${w.nodes.moves.length}, followed ${followed.length}`);
    });
    const decisions = router.app.rebalancer.recent().filter((d) => d.outcome === 'moved').reverse();
    for (const d of decisions) {
      console.log(
        `paris-asia (${backend}): ${d.moves.map((m) => `${m.participantId} ${m.from}→${m.to} (−${m.gainMs.toFixed(1)} ms)`).join(', ')}; room mean ${d.meanDelayBeforeMs!.toFixed(1)} → ${d.meanDelayAfterMs!.toFixed(1)} ms; decision ${d.decisionMs.toFixed(2)} ms; ${d.reasons.filter((r) => r.code === 'REBALANCE_PERSON_GAIN_TOO_SMALL').map((r) => r.message).join('; ')}`,
      );
    }
    // First the six in Asia (Paris would lose by moving with them); then Paris, alone on eu-west.
    expect(decisions.map((d) => d.moves.map((m) => m.participantId).sort())).toEqual([people.slice(1).sort(), ['Paris']]);
    expect(decisions[0]!.reasons.some((r) => r.code === 'REBALANCE_PERSON_GAIN_TOO_SMALL' && r.message.startsWith('Paris'))).toBe(true);

    // The independent offline optimum of the same room (bench/placement/optimum.ts, exhaustive).
    const problem = {
      regions: REGIONS,
      rtt: people.map((who) => REGIONS.map((r) => city(who)[r]!)),
      group: people.map((_, i) => i),
      inter: REGIONS.map((a) => REGIONS.map((b) => (a === b ? 0 : DATA.interRegionRttMs[a]![b]!))),
    };
    const best = exhaustiveOptimum(problem);
    const regionOf = new Map(settled.participants.map((p) => [p.participantId, p.region]));
    const final = people.map((who) => REGIONS.indexOf(regionOf.get(who)!));
    const initial = people.map(() => REGIONS.indexOf('eu-west'));
    expect(before.participants.every((p) => p.region === 'eu-west')).toBe(true);
    expect(meanPairwiseMs(problem, final)).toBeCloseTo(best.meanMs, 6);
    expect(meanPairwiseMs(problem, final)).toBeLessThan(meanPairwiseMs(problem, initial) - 1);
    for (const who of people) expect(regionOf.get(who)).toBe('apac');
    // Every move was followed to the planned edge, each participant moved at most once.
    expect(followed.every((f) => f.region === 'apac' && f.reasons.includes('REBALANCE_PLANNED'))).toBe(true);
    expect(new Set(w.nodes.moves.map((m) => m.participantId)).size).toBe(w.nodes.moves.length);
    // Each planned to apac (the decision says; the move request names only the allocation to move).
    expect(decisions.flatMap((d) => d.moves).every((m) => m.to === 'apac')).toBe(true);
    expect(w.nodes.moves.every((m) => m.allocationId === before.participants.find((p) => p.participantId === m.participantId)!.allocationId)).toBe(true);
    // Nobody is left on eu-west: the home follows the room.
    expect(settled.room.homeRegion).toBe('apac');
    // What the dashboard shows (newest first): the two decisions that moved people, with their moves.
    expect(router.app.rebalancer.recent().filter((d) => d.outcome === 'moved').map((d) => d.moves.length)).toEqual([1, 6]);
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(metrics).toContain(`geo_sfu_rebalance_moves_total{result="told"} ${w.nodes.moves.length}`);
    expect(metrics).toContain(`geo_sfu_allocations_total{outcome="rebalanced"} ${w.nodes.moves.length}`);
    expect(metrics).toMatch(/geo_sfu_rebalance_decisions_total\{outcome="moved"\} 2\b/);
  }, 90_000);

  it('a stable regional room never moves anyone, through joins and leaves', async () => {
    const w = await startWorld('memory', { rebalanceDebounceMs: 100 });
    const router = w.routers[0]!;
    const europe = ['London', 'Paris', 'Berlin', 'Madrid', 'Milan', 'Warsaw', 'Stockholm'];
    const allocations = new Map<string, string>();
    for (const [i, who] of europe.entries()) {
      allocations.set(who, (await join(router, 'europe', who, city(who))).allocationId);
      await new Promise((r) => setTimeout(r, i % 2 === 0 ? 250 : 0));
    }
    for (const who of ['Paris', 'Milan']) {
      await participantEvent(router, { nodeId: NODE('eu-west'), roomId: 'europe', participantId: who, allocationId: allocations.get(who)!, event: 'left' });
      await new Promise((r) => setTimeout(r, 250));
    }
    await join(router, 'europe', 'Istanbul', city('Istanbul'));
    await new Promise((r) => setTimeout(r, 600));
    const decisions = router.app.rebalancer.recent();
    expect(decisions.length).toBeGreaterThanOrEqual(3);
    expect(decisions.every((d) => d.outcome === 'stable' || d.outcome === 'below_threshold')).toBe(true);
    expect(w.nodes.moves).toEqual([]);
    const state = (await router.app.rooms.getRoom('europe'))!;
    expect(state.plans).toEqual([]);
    expect(state.participants.every((p) => p.region === 'eu-west')).toBe(true);
  });

  it('under load, with two router replicas on Redis: nobody is ever without an edge, nobody is migrated twice', async () => {
    const w = await startWorld('real', { rebalanceDebounceMs: 150 }, 2);
    const cities = ['Paris', 'London', 'Mumbai', 'Delhi', 'Singapore', 'Bangkok', 'Tokyo', 'Seoul', 'New York', 'Chicago', 'Dubai', 'Sydney'];
    const latencyOf = new Map<string, Record<string, number>>();
    const followed: Array<{ move: MoveRequest; region: string; reasons: string[] }> = [];
    followMoves(w, (id) => latencyOf.get(id)!, followed);
    const rooms = ['load-a', 'load-b', 'load-c'];
    /** Joined and not (yet) told to leave, per room. */
    const present = new Map<string, Set<string>>(rooms.map((r) => [r, new Set()]));
    let violations: string[] = [];
    let samples = 0;
    let sampling = true;
    const store = w.routers[0]!.app.rooms;
    const sampler = (async () => {
      while (sampling) {
        for (const roomId of rooms) {
          const expected = [...present.get(roomId)!];
          const state = await store.getRoom(roomId);
          const known = new Set(state?.participants.map((p) => `${p.participantId}@${p.nodeId}`) ?? []);
          const onSomeEdge = new Set(state?.participants.map((p) => p.participantId) ?? []);
          for (const id of expected) if (!onSomeEdge.has(id) && present.get(roomId)!.has(id)) violations.push(`${roomId}/${id} has no edge`);
          for (const k of known) if (!REGIONS.some((r) => k.endsWith(`@${NODE(r)}`))) violations.push(`${roomId}: ${k} on an unknown node`);
        }
        samples++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    const participant = async (roomId: string, i: number) => {
      const id = `${roomId}-p${i}`;
      // Rooms fill from Europe first, then the rest of the world: the shape that makes greedy miss.
      const name = cities[(i < 2 ? i : 2 + ((i * 7 + roomId.length) % (cities.length - 2))) % cities.length]!;
      latencyOf.set(id, city(name));
      await new Promise((r) => setTimeout(r, i * 40 + Math.random() * 40));
      const router = w.routers[i % 2]!;
      const allocation = await join(router, roomId, id, city(name));
      present.get(roomId)!.add(id);
      if (i % 5 === 4) {
        // Some leave after a while (from wherever they are then).
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 600));
        present.get(roomId)!.delete(id);
        const state = await store.getRoom(roomId);
        const record = state?.participants.find((p) => p.participantId === id);
        await participantEvent(router, { nodeId: record?.nodeId ?? allocation.node.id, roomId, participantId: id, allocationId: record?.allocationId ?? allocation.allocationId, event: 'left' });
      }
    };
    await Promise.all(rooms.flatMap((roomId) => Array.from({ length: 15 }, (_, i) => participant(roomId, i))));
    // Quiet: every plan followed or expired, the last decisions made.
    await waitFor(
      'every room settled',
      async () => {
        for (const roomId of rooms) {
          const s = await store.getRoom(roomId);
          if (!s || s.plans.length > 0 || s.participants.some((p) => p.status !== 'joined')) return false;
        }
        return followed.length === w.nodes.moves.length;
      },
      20_000,
    );
    await new Promise((r) => setTimeout(r, 600));
    sampling = false;
    await sampler;
    const decisions = w.routers.flatMap((r) => r.app.rebalancer.recent());
    const byOutcome: Record<string, number> = {};
    for (const d of decisions) byOutcome[d.outcome] = (byOutcome[d.outcome] ?? 0) + 1;
    console.log(`under load: ${w.nodes.moves.length} moves, ${samples} samples, decisions (last ${decisions.length} of both routers) ${JSON.stringify(byOutcome)}`);
    violations = [...new Set(violations)];
    expect(violations).toEqual([]);
    expect(samples).toBeGreaterThan(20);
    expect(w.nodes.moves.length).toBeGreaterThan(0);
    // No double migration: nobody told to move twice (the window is 2 minutes), every move followed to its plan.
    const told = w.nodes.moves.map((m) => `${m.roomId}/${m.participantId}`);
    expect(new Set(told).size).toBe(told.length);
    expect(followed.every((f) => f.reasons.includes('REBALANCE_PLANNED'))).toBe(true);
    for (const roomId of rooms) {
      const s = (await store.getRoom(roomId))!;
      expect(s.participants.map((p) => p.participantId).sort()).toEqual([...present.get(roomId)!].sort());
    }
  }, 90_000);

  it('a participant moved (allocates again, joins the new edge, later leaves the old one) schedules the room once, not twice', async () => {
    const w = await startWorld('memory', { rebalanceDebounceMs: 300 });
    const router = w.routers[0]!;
    await join(router, 'once', 'Paris', city('Paris'));
    const first = await join(router, 'once', 'Mumbai', city('Mumbai'));
    const runs = vi.spyOn(router.app.rebalancer, 'run');
    await new Promise((r) => setTimeout(r, 600));
    runs.mockClear();
    // The move as the SDK makes it: a new allocation and its join, then (after the debounce, as a
    // real client connects, publishes and consumes first) the old edge's agent reports `left`.
    const again = await allocate(router.url, { roomId: 'once', participantId: 'Mumbai', latencies: city('Mumbai'), excludeNodeIds: [first.node.id] });
    expect(again.status).toBe(200);
    expect(await participantEvent(router, { nodeId: again.body.node.id, roomId: 'once', participantId: 'Mumbai', allocationId: again.body.allocationId, event: 'joined' })).toBe(200);
    await new Promise((r) => setTimeout(r, 600));
    expect(await participantEvent(router, { nodeId: first.node.id, roomId: 'once', participantId: 'Mumbai', allocationId: first.allocationId, event: 'left' })).toBe(204);
    await new Promise((r) => setTimeout(r, 600));
    console.log(`rebalance runs after one move: ${runs.mock.calls.length}`);
    expect(runs).toHaveBeenCalledTimes(1);
  });
});
