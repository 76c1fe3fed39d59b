/**
 * Cascade links over time: a restarted agent's pipes come back (time to media measured), a node
 * the router reports dead is cut off and re-linked when alive, a stalled pipe is rebuilt, a room
 * that shrinks back into one region closes its pipes, and two rooms' pipes never cross.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { RelayMesh } from '../../infra/embedded/udp-relay.ts';
import { sleep, waitUntil } from '../sfu/helpers/rtp.ts';
import { Cluster, median, Participant, type AgentNode } from './harness.ts';

const regions: Record<string, string> = { 'us-west-1': 'us-west', 'eu-west-1': 'eu-west', 'apac-1': 'apac' };
const delays: Record<string, number> = { 'eu-west|us-west': 66.5, 'apac|us-west': 85, 'apac|eu-west': 88 };

function makeCluster(extra: ConstructorParameters<typeof Cluster>[0] = {}): { cluster: Cluster; mesh: RelayMesh } {
  const mesh = new RelayMesh(
    (nodeId) => regions[nodeId] ?? '',
    (a, b) => {
      const d = delays[[a, b].sort().join('|')] ?? 0;
      return { ab: { delayMs: d }, ba: { delayMs: d } };
    },
  );
  return { cluster: new Cluster({ rewrite: mesh.hook, ...extra }), mesh };
}

/** Packets received from `from`'s current audio producer, sampled twice: media is flowing. */
async function flowing(to: Participant, from: Participant): Promise<boolean> {
  const id = from.audio?.id;
  if (!id) return false;
  return to.received(id) > 3;
}

describe('cascade lifecycle', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a restarted agent’s pipes come back and media flows again (time to media measured)', async () => {
    const { cluster, mesh } = makeCluster();
    cleanups.push(() => mesh.close(), () => cluster.close());
    const [us, eu, ap] = [await cluster.add('us-west-1', 'us-west'), await cluster.add('eu-west-1', 'eu-west'), await cluster.add('apac-1', 'apac')] as AgentNode[];
    const alice = await Participant.join(us!, 'r', 'alice');
    const chen = await Participant.join(ap!, 'r', 'chen');
    let bruno = await Participant.join(eu!, 'r', 'bruno');
    cleanups.push(() => alice.leave(), () => chen.leave());
    for (const p of [alice, chen, bruno]) p.startMedia();
    const all = () => [alice, chen, bruno];
    await waitUntil(async () => {
      for (const to of all()) for (const from of all()) if (to !== from && !(await flowing(to, from))) return false;
      return true;
    }, 15_000, 'media between the three regions');

    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      // Crash: eu-west's agent and SFU rooms vanish without a word to the others.
      bruno.stopMedia();
      await eu!.stop({ notify: false });
      bruno.leave();
      await sleep(500);
      // The agent restarts (same node id) and bruno reconnects to it.
      await eu!.start();
      const ready = performance.now();
      bruno = await Participant.join(eu!, 'r', 'bruno');
      bruno.startMedia();
      await waitUntil(
        async () => (await flowing(bruno, alice)) && (await flowing(bruno, chen)) && (await flowing(alice, bruno)) && (await flowing(chen, bruno)),
        15_000,
        'media back through the restarted agent',
      );
      times.push(performance.now() - ready);
    }
    // Still a full mesh, one link per pair.
    for (const n of [us!, eu!, ap!]) expect(n.cascade!.links().filter((l) => l.roomId === 'r')).toHaveLength(2);
    bruno.leave();
    const p50 = median(times);
    console.log(`[cascade restart] time to media after the restarted agent is ready: ${times.map((t) => t.toFixed(0)).join(', ')} ms (p50 ${p50.toFixed(0)} ms)`);
    expect(p50).toBeLessThan(5_000);
  }, 90_000);

  it('a node the router reports dead is cut off; local sessions go on; re-linked once alive', async () => {
    const { cluster, mesh } = makeCluster({ pollIntervalMs: 500 });
    cleanups.push(() => mesh.close(), () => cluster.close());
    const us = await cluster.add('us-west-1', 'us-west');
    const eu = await cluster.add('eu-west-1', 'eu-west');
    const alice = await Participant.join(us, 'd', 'alice');
    const alice2 = await Participant.join(us, 'd', 'alice2', { publish: false });
    const bruno = await Participant.join(eu, 'd', 'bruno');
    cleanups.push(() => alice.leave(), () => alice2.leave(), () => bruno.leave());
    alice.startMedia();
    bruno.startMedia();
    // alice2 consumes alice locally (a local session).
    const local = await alice2.peer.consume({ transportId: alice2.recvTransport.id, producerId: alice.audio!.id });
    await alice2.peer.resumeConsumer(local.id);
    await waitUntil(async () => (await flowing(alice, bruno)) && (await flowing(bruno, alice)), 15_000, 'cross-region media');

    cluster.states.set('eu-west-1', 'dead');
    await waitUntil(() => us.cascade!.links().length === 0, 5_000, 'us-west drops the link to the dead node');
    await waitUntil(() => !us.room('d')!.producers.has(bruno.audio!.id), 5_000, 'piped producers gone');
    const before = alice2.receiver.rtpOf(local.rtpParameters.encodings![0]!.ssrc!).length;
    await sleep(300);
    expect(alice2.receiver.rtpOf(local.rtpParameters.encodings![0]!.ssrc!).length).toBeGreaterThan(before);

    cluster.states.set('eu-west-1', 'alive');
    const back = performance.now();
    await waitUntil(() => us.room('d')!.producers.has(bruno.audio!.id), 10_000, 're-linked');
    const got = bruno.received(alice.audio!.id);
    await waitUntil(() => bruno.received(alice.audio!.id) > got + 3, 10_000, 'media back');
    console.log(`[cascade dead→alive] media back ${(performance.now() - back).toFixed(0)} ms after the router reports the node alive`);
  }, 60_000);

  it('a stalled pipe (bytes sent, none arriving) is torn down and rebuilt', async () => {
    const { cluster, mesh } = makeCluster();
    cleanups.push(() => mesh.close(), () => cluster.close());
    const us = await cluster.add('us-west-1', 'us-west');
    const eu = await cluster.add('eu-west-1', 'eu-west');
    const alice = await Participant.join(us, 's', 'alice');
    const bruno = await Participant.join(eu, 's', 'bruno');
    cleanups.push(() => alice.leave(), () => bruno.leave());
    alice.startMedia();
    bruno.startMedia();
    await waitUntil(async () => (await flowing(alice, bruno)) && (await flowing(bruno, alice)), 15_000, 'cross-region media');
    const downs: string[] = [];
    eu.cascade!.on('linkdown', ({ reason }) => downs.push(reason));
    // eu-west-1 → us-west-1 (a → b) black-holed: HTTP still works, media does not.
    const relay = mesh.relay('s', 'eu-west-1', 'us-west-1')!;
    relay.setProfile('ab', { delayMs: 66.5, loss: 1 });
    await waitUntil(() => downs.some((r) => r.startsWith('stalled')), 10_000, 'stall detected');
    relay.setProfile('ab', { delayMs: 66.5 });
    const got = alice.received(bruno.audio!.id);
    await waitUntil(() => alice.received(bruno.audio!.id) > got + 3, 10_000, 'media back after the rebuild');
  }, 60_000);

  it('a room that shrinks back into one region closes its pipes', async () => {
    const { cluster, mesh } = makeCluster();
    cleanups.push(() => mesh.close(), () => cluster.close());
    const us = await cluster.add('us-west-1', 'us-west');
    const eu = await cluster.add('eu-west-1', 'eu-west');
    const alice = await Participant.join(us, 'k', 'alice');
    const alice2 = await Participant.join(us, 'k', 'alice2');
    const bruno = await Participant.join(eu, 'k', 'bruno');
    cleanups.push(() => alice.leave(), () => alice2.leave());
    await waitUntil(() => us.room('k')!.remotePeers.has('bruno') && eu.room('k')!.remotePeers.size === 2, 10_000, 'piped');
    const usPipe = us.cascade!.link('k', 'eu-west-1')!;
    const transportsBefore = (await us.pool!.getLoad()).workers[0]!.transports;
    bruno.leave();
    await waitUntil(() => us.cascade!.links().length === 0 && eu.cascade!.links().length === 0, 5_000, 'links closed on both sides');
    expect(usPipe.closed).toBe(true);
    expect(usPipe.transport.closed).toBe(true);
    expect(eu.room('k')).toBeUndefined();
    expect(us.room('k')!.remotePeers.size).toBe(0);
    expect((await us.pool!.getLoad()).workers[0]!.transports).toBe(transportsBefore - 1);
  }, 30_000);

  it('two rooms’ pipes never cross: each room’s relay carries only that room’s streams', async () => {
    const { cluster, mesh } = makeCluster();
    cleanups.push(() => mesh.close(), () => cluster.close());
    const us = await cluster.add('us-west-1', 'us-west');
    const eu = await cluster.add('eu-west-1', 'eu-west');
    const people = [
      await Participant.join(us, 'room-1', 'a1'),
      await Participant.join(eu, 'room-1', 'b1'),
      await Participant.join(us, 'room-2', 'a2'),
      await Participant.join(eu, 'room-2', 'b2'),
    ];
    cleanups.push(() => people.forEach((p) => p.leave()));
    for (const p of people) p.startMedia();
    await waitUntil(async () => (await flowing(people[0]!, people[1]!)) && (await flowing(people[1]!, people[0]!)) && (await flowing(people[2]!, people[3]!)) && (await flowing(people[3]!, people[2]!)), 15_000, 'media in both rooms');
    await sleep(1_000);
    // Wire SSRCs of each room's pipe consumers, from both sides' exports.
    const wire = async (roomId: string): Promise<Set<number>> => {
      const ssrcs = new Set<number>();
      for (const [node, remote] of [[us, 'eu-west-1'], [eu, 'us-west-1']] as const) {
        const state = await node.cascade!.link(roomId, remote)!.exportState();
        for (const p of state.producers) for (const e of p.rtpParameters.encodings ?? []) {
          if (e.ssrc !== undefined) ssrcs.add(e.ssrc);
          if (e.rtx?.ssrc !== undefined) ssrcs.add(e.rtx.ssrc);
        }
      }
      return ssrcs;
    };
    const wire1 = await wire('room-1');
    const wire2 = await wire('room-2');
    const seen1 = mesh.relay('room-1', 'us-west-1', 'eu-west-1')!.ssrcs();
    const seen2 = mesh.relay('room-2', 'us-west-1', 'eu-west-1')!.ssrcs();
    expect(seen1.size).toBeGreaterThanOrEqual(4);
    expect(seen2.size).toBeGreaterThanOrEqual(4);
    for (const s of seen1) expect(wire1.has(s), `room-1 relay carried ${s}`).toBe(true);
    for (const s of seen2) expect(wire2.has(s), `room-2 relay carried ${s}`).toBe(true);
    for (const s of seen1) expect(wire2.has(s)).toBe(false);
    // Far sides hold only their own room's producers.
    expect([...eu.room('room-1')!.producers.values()].map((p) => p.peerId).sort()).toEqual(['a1', 'a1', 'b1', 'b1']);
    expect([...eu.room('room-2')!.producers.values()].map((p) => p.peerId).sort()).toEqual(['a2', 'a2', 'b2', 'b2']);
    // And receivers only got their room's streams.
    expect(people[1]!.consumers.size).toBe(2);
    expect([...people[1]!.consumers.keys()].sort()).toEqual([people[0]!.audio!.id, people[0]!.video!.id].sort());
  }, 60_000);
});
