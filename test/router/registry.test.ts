import { afterEach, expect, it } from 'vitest';
import { NodeRegistry } from '../../router/registry/node-registry.ts';
import { MemoryNodeRegistry, MemoryRoomStore, type NodeRegistryStore } from '../../router/state/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/** A memory store whose reads go through `list` (held, or failing). */
const storeReading = (inner: MemoryNodeRegistry, list: NodeRegistryStore['list']): NodeRegistryStore => ({
  register: (r, now) => inner.register(r, now),
  heartbeat: (h, now) => inner.heartbeat(h, now),
  deregister: (id) => inner.deregister(id),
  close: () => inner.close(),
  list,
});

let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
});

it('a node that stops heartbeating becomes suspect, then dead: never before the settings say, detected within one heartbeat interval after', async () => {
  // Default timings (1 s heartbeats, suspect at 1.5 s, dead at 3 s).
  const timings = { heartbeatIntervalMs: 1_000, suspectAfterMs: 1_500, deadAfterMs: 3_000 };
  router = await startRouter(testConfig('memory', timings));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(timings.heartbeatIntervalMs);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west' });
  await nodes.add({ nodeId: 'us-east-1', region: 'us-east' });
  await router.app.registry.refresh();
  const nodeOf = (id: string) => router!.app.registry.snapshot().nodes.find((n) => n.nodeId === id);
  expect(nodeOf('us-west-1')?.state).toBe('alive');

  nodes.silence('us-west-1');
  const silencedAt = Date.now();
  // Each observation bracketed by the clock before and after reading the snapshot, with the
  // heartbeat age the router judges by (its last heartbeat, a request in flight included).
  const seen: Array<{ state: string; minAgeMs: number; maxAgeMs: number; at: number }> = [];
  while (Date.now() - silencedAt < 2 * timings.deadAfterMs && seen.at(-1)?.state !== 'dead') {
    const before = Date.now();
    const node = nodeOf('us-west-1')!;
    const after = Date.now();
    seen.push({ state: node.state, minAgeMs: before - node.record.lastHeartbeatMs, maxAgeMs: after - node.record.lastHeartbeatMs, at: after });
    await new Promise((r) => setTimeout(r, 20));
  }
  const first = (state: string) => seen.find((o) => o.state === state);
  const suspect = first('suspect');
  const dead = first('dead');
  console.log(
    `death detection: suspect after ${suspect ? suspect.at - silencedAt : '-'} ms, dead after ${dead ? dead.at - silencedAt : '-'} ms of silence ` +
      `(heartbeat age ${dead?.maxAgeMs ?? '-'} ms at the first dead reading, setting ${timings.deadAfterMs} ms)`,
  );
  // alive → suspect → dead, in that order, never back.
  expect(seen.map((o) => o.state).filter((s, i, all) => i === 0 || s !== all[i - 1])).toEqual(['alive', 'suspect', 'dead']);
  // Never earlier than the settings: suspect only from suspectAfterMs of silence, dead only from deadAfterMs.
  for (const o of seen) {
    if (o.state === 'alive') expect(o.minAgeMs).toBeLessThan(timings.suspectAfterMs);
    if (o.state === 'suspect') {
      expect(o.maxAgeMs).toBeGreaterThanOrEqual(timings.suspectAfterMs);
      expect(o.minAgeMs).toBeLessThan(timings.deadAfterMs);
    }
    if (o.state === 'dead') expect(o.maxAgeMs).toBeGreaterThanOrEqual(timings.deadAfterMs);
  }
  // And not much later: the last heartbeat came at most an interval before the silence, so dead
  // is due within deadAfterMs of it; a heartbeat interval on top allows for this loop's own lag.
  expect(dead!.at - silencedAt).toBeLessThanOrEqual(timings.deadAfterMs + timings.heartbeatIntervalMs);
  expect(nodeOf('us-east-1')?.state).toBe('alive');
  // Peers are told only about live nodes.
  const ack = await nodes.heartbeat('us-east-1');
  expect(ack.peers.map((p) => p.nodeId)).not.toContain('us-west-1');
});

it('probes every node and exposes RTT, jitter and loss at GET /regions', async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await new Promise((r) => setTimeout(r, 1_500));
  const res = await fetch(`${router.url}/regions`);
  const body = (await res.json()) as { regions: Array<{ id: string; healthy: boolean; nodes: Array<{ probe: { rttMs: number; samples: number; loss: number } }> }> };
  const eu = body.regions.find((r) => r.id === 'eu-west')!;
  expect(eu.healthy).toBe(true);
  expect(eu.nodes[0]!.probe.samples).toBeGreaterThanOrEqual(3);
  expect(eu.nodes[0]!.probe.rttMs).toBeGreaterThan(0);
  expect(eu.nodes[0]!.probe.loss).toBe(0);
  expect(body.regions.find((r) => r.id === 'apac')!.healthy).toBe(false);
});

it('a node re-registers after the router forgets it (heartbeat answers known: false)', async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'apac-1', region: 'apac' });
  await router.app.registry.deregister('apac-1');
  expect((await nodes.heartbeat('apac-1')).known).toBe(false);
});

it('a refresh asked for while an older read runs waits for a read that starts after it (a node registered meanwhile is in it)', async () => {
  const config = testConfig('memory');
  const inner = new MemoryNodeRegistry();
  // A store whose reads wait until the test lets them go.
  const heldReads: Array<() => void> = [];
  const store = storeReading(inner, async () => {
    const records = await inner.list();
    await new Promise<void>((release) => heldReads.push(release));
    return records;
  });
  const registry = new NodeRegistry({ config, store, rooms: new MemoryRoomStore({ roomIdleTtlMs: 60_000 }), now: Date.now });
  /** Lets the read that is held go, once one is. */
  const releaseRead = async () => {
    const deadline = Date.now() + 5_000;
    while (heldReads.length === 0) {
      if (Date.now() > deadline) throw new Error('no read of the store was started');
      await new Promise((r) => setTimeout(r, 1));
    }
    heldReads.shift()!();
  };
  // The background refresh's read has taken its records before the node registers.
  const stale = registry.refresh();
  while (heldReads.length === 0) await new Promise((r) => setTimeout(r, 1));
  const url = 'http://127.0.0.1:9';
  await store.register({ nodeId: 'late-1', region: 'eu-west', controlUrl: url, signalingUrl: url, probeUrl: `${url}/probe`, maxParticipants: 10, version: 'test' }, Date.now());
  const fresh = registry.refresh();
  const again = registry.refresh();
  await releaseRead();
  expect((await stale).nodes.map((n) => n.nodeId)).toEqual([]);
  await releaseRead();
  const [freshSnapshot, againSnapshot] = await Promise.all([fresh, again]);
  expect(freshSnapshot.nodes.map((n) => n.nodeId)).toEqual(['late-1']);
  // Callers while a read ran share one read after it.
  expect(againSnapshot).toBe(freshSnapshot);
});

it("after the store failed to answer, nodes alive before it keep their place for one dead-after period (their heartbeats could not land); a node dead before stays dead", async () => {
  const config = testConfig('memory');
  const inner = new MemoryNodeRegistry();
  let storeDown = false;
  const store = storeReading(inner, async () => {
    if (storeDown) throw new Error('store unreachable');
    return inner.list();
  });
  let nowMs = 1_000_000;
  const registry = new NodeRegistry({ config, store, rooms: new MemoryRoomStore({ roomIdleTtlMs: 60_000 }), now: () => nowMs });
  const url = 'http://127.0.0.1:9';
  const register = (nodeId: string) => store.register({ nodeId, region: 'eu-west', controlUrl: url, signalingUrl: url, probeUrl: `${url}/probe`, maxParticipants: 10, version: 'test' }, nowMs);
  await register('gone-1');
  nowMs += config.deadAfterMs + 1;
  await register('live-1');
  const states = (snapshot: { nodes: Array<{ nodeId: string; state: string }> }) => Object.fromEntries(snapshot.nodes.map((n) => [n.nodeId, n.state]));
  expect(states(await registry.refresh())).toEqual({ 'gone-1': 'dead', 'live-1': 'alive' });
  // An outage (or a failover) longer than dead-after: live-1's heartbeats cannot land meanwhile.
  storeDown = true;
  nowMs += 1_000;
  await expect(registry.refresh()).rejects.toThrow('store unreachable');
  nowMs += config.deadAfterMs;
  storeDown = false;
  const back = await registry.refresh();
  expect(states(back)).toEqual({ 'gone-1': 'dead', 'live-1': 'alive' });
  expect(registry.livenessSettled()).toBe(false);
  expect(registry.placementView().nodes.find((n) => n.nodeId === 'live-1')?.state).toBe('alive');
  // No heartbeat from it within dead-after of the store's answer: suspect, then dead after all.
  nowMs += config.suspectAfterMs;
  expect(states(registry.snapshot())['live-1']).toBe('suspect');
  expect(states(registry.placementView())['live-1']).toBe('suspect');
  nowMs += config.deadAfterMs - config.suspectAfterMs;
  expect(states(registry.snapshot())['live-1']).toBe('dead');
  expect(states(registry.placementView())['live-1']).toBe('dead');
});

it("the placement view's node states are the snapshot's at every moment, though it ages the nodes only when one crosses a threshold", async () => {
  const config = testConfig('memory');
  const store = new MemoryNodeRegistry();
  let nowMs = 2_000_000;
  const registry = new NodeRegistry({ config, store, rooms: new MemoryRoomStore({ roomIdleTtlMs: 60_000 }), now: () => nowMs });
  const url = 'http://127.0.0.1:9';
  // Heartbeats of different ages, so the nodes cross their thresholds at different moments.
  for (const [i, nodeId] of ['a-1', 'b-1', 'c-1'].entries()) {
    await store.register({ nodeId, region: 'eu-west', controlUrl: url, signalingUrl: url, probeUrl: `${url}/probe`, maxParticipants: 10, version: 'test' }, nowMs - i * 700);
  }
  await registry.refresh();
  const states = (snapshot: { nodes: Array<{ nodeId: string; state: string }> }) => Object.fromEntries(snapshot.nodes.map((n) => [n.nodeId, n.state]));
  const views = new Set<object>();
  const seen = new Set<string>();
  for (let step = 0; nowMs < 2_000_000 + config.deadAfterMs + 2_000; step++, nowMs += 50) {
    const view = registry.placementView();
    views.add(view);
    expect(states(view), `at +${step * 50} ms`).toEqual(states(registry.snapshot()));
    seen.add(JSON.stringify(states(view)));
  }
  // Every combination of states on the way was seen, each with one view object: built once per change, not per call.
  console.log(`${views.size} placement views for ${seen.size} combinations of states over ${(config.deadAfterMs + 2_000) / 50} calls`);
  expect(seen.size).toBeGreaterThanOrEqual(5);
  expect(views.size).toBe(seen.size);
});

it('each node probes a bounded window of every region (GEO_SFU_PROBE_PEERS_PER_REGION live peers, never itself or a dead node) that moves on each GEO_SFU_PROBE_ROTATE_MS until every peer was listed', async () => {
  const config = testConfig('memory', { probePeersPerRegion: 3, probeRotateMs: 60_000 });
  const store = new MemoryNodeRegistry();
  let nowMs = 5_000_000;
  const registry = new NodeRegistry({ config, store, rooms: new MemoryRoomStore({ roomIdleTtlMs: 60_000 }), now: () => nowMs });
  const url = 'http://127.0.0.1:9';
  const regions = ['us-west', 'us-east', 'eu-west', 'apac'];
  const register = (nodeId: string, region: string) => store.register({ nodeId, region, controlUrl: url, signalingUrl: url, probeUrl: `${url}/probe`, maxParticipants: 10, version: 'test' }, nowMs);
  await register('eu-west-dead', 'eu-west');
  nowMs += config.deadAfterMs + 1;
  // Ten live nodes per region; each step re-registers them (a heartbeat) so only the first stays dead.
  const beatAll = async () => {
    for (const region of regions) for (let i = 0; i < 10; i++) await register(`${region}-${i}`, region);
    await registry.refresh();
  };
  const seen = new Map(regions.map((r) => [r, new Set<string>()]));
  for (let rotation = 0; rotation < 4; rotation++) {
    await beatAll();
    const peers = registry.peersOf('us-west-0');
    const perRegion = new Map<string, number>();
    for (const p of peers) {
      perRegion.set(p.region, (perRegion.get(p.region) ?? 0) + 1);
      seen.get(p.region)!.add(p.nodeId);
    }
    // The answer grows with the regions, not the fleet: 3 per region of 41 nodes.
    expect(Object.fromEntries(perRegion)).toEqual({ 'us-west': 3, 'us-east': 3, 'eu-west': 3, apac: 3 });
    expect(peers.map((p) => p.nodeId)).not.toContain('us-west-0');
    expect(peers.map((p) => p.nodeId)).not.toContain('eu-west-dead');
    // Within one rotation period the window stays (the prober keeps its smoothed RTTs).
    nowMs += config.probeRotateMs / 2;
    await beatAll();
    expect(registry.peersOf('us-west-0').map((p) => p.nodeId)).toEqual(peers.map((p) => p.nodeId));
    nowMs += config.probeRotateMs / 2;
  }
  // Four rotations of 3 cover every live peer of a region of 10 (9 in its own).
  expect([...seen].map(([region, ids]) => [region, ids.size])).toEqual([['us-west', 9], ['us-east', 10], ['eu-west', 10], ['apac', 10]]);
  // Nodes start their windows at different places: the first rotation's 40 answers list many different peers.
  await beatAll();
  const listed = new Set(regions.flatMap((r) => Array.from({ length: 10 }, (_, i) => registry.peersOf(`${r}-${i}`))).flat().map((p) => p.nodeId));
  expect(listed.size).toBeGreaterThan(20);
});
