/**
 * The router's push of a room's node set (POST /v1/cascade/room-nodes, signed): links form from
 * it with the reconcile poll far away, a set older than the one held is ignored, and nothing but a
 * request signed with the cluster secret gets in (verified before the body is parsed).
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { controlCall, controlPlane as cp } from '../../shared/control-plane.ts';
import type { RoomNodeSet } from '../../shared/schemas/index.ts';
import { signRequest } from '../../shared/signed-request.ts';
import { sleep, waitUntil } from '../sfu/helpers/rtp.ts';
import { Cluster, Participant, SECRET, type AgentNode } from './harness.ts';

describe('room node-set push', () => {
  // The reconcile poll once an hour: only pushes can link the room.
  const cluster = new Cluster({ pollIntervalMs: 3_600_000 });
  let us: AgentNode;
  let eu: AgentNode;
  const people: Participant[] = [];

  beforeAll(async () => {
    us = await cluster.add('us-west-1', 'us-west');
    eu = await cluster.add('eu-west-1', 'eu-west');
  }, 30_000);

  afterAll(async () => {
    for (const p of people) p.leave();
    await cluster.close();
  });

  it('links the room from the push, with no room-nodes poll', async () => {
    const started = performance.now();
    people.push(await Participant.join(us, 'pushed', 'alice'), await Participant.join(eu, 'pushed', 'bruno'));
    await waitUntil(() => eu.room('pushed')!.remotePeers.has('alice') && us.room('pushed')!.remotePeers.has('bruno'), 10_000, 'piped both ways');
    console.log(`[push] room piped both ways ${(performance.now() - started).toFixed(0)} ms after the first join; room-nodes polls: ${cluster.queries}`);
    expect(cluster.queries).toBe(0);
    expect(us.cascade!.nodeSet('pushed')?.nodes.map((n) => n.nodeId).sort()).toEqual(['eu-west-1', 'us-west-1']);
  });

  it('ignores a push older than the set it holds, applies a newer one', async () => {
    const held = us.cascade!.nodeSet('pushed')!;
    const alone = { nodes: held.nodes.filter((n) => n.nodeId === 'us-west-1') };
    // Another replica's set from before eu-west joined, arriving late: us-west keeps its link.
    await cluster.push('pushed', { version: held.version - 1, ...alone });
    await sleep(300);
    expect(us.cascade!.nodeSet('pushed')).toEqual(held);
    expect(us.cascade!.links().map((l) => l.remoteNodeId)).toEqual(['eu-west-1']);
    // A newer set without eu-west: the link goes.
    await cluster.push('pushed', { version: held.version + 1, ...alone });
    await waitUntil(() => us.cascade!.links().length === 0, 5_000, 'link torn down by the newer set');
    expect(us.cascade!.nodeSet('pushed')?.version).toBe(held.version + 1);
  });

  it('refuses unsigned, forged and replayed pushes before reading the body', async () => {
    const before = us.cascade!.nodeSet('pushed');
    const body = JSON.stringify({ rooms: [{ roomId: 'pushed', version: 1_000_000, nodes: [] }] });
    const post = async (headers: Record<string, string>, payload = body) => {
      const res = await request(`${us.url}${cp.roomNodesPush.path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
      return { status: res.statusCode, code: res.statusCode === 204 ? null : ((await res.body.json()) as { error: { code: string } }).error.code };
    };
    expect(await post({})).toEqual({ status: 401, code: 'SIGNATURE_MISSING' });
    // Not even JSON: still refused for its signature, not its body.
    expect((await post({}, '{"rooms": ')).status).toBe(401);
    expect((await post(signRequest('not-the-cluster-secret-0123456789abcdef', { method: 'POST', path: cp.roomNodesPush.path, body }, Date.now()))).status).toBe(401);
    const signed = signRequest(SECRET, { method: 'POST', path: cp.roomNodesPush.path, body }, Date.now());
    expect(await post(signed)).toEqual({ status: 204, code: null });
    expect(await post(signed)).toEqual({ status: 401, code: 'SIGNATURE_REPLAYED' });
    // Only the signed one was applied.
    expect(before?.version).toBeLessThan(1_000_000);
    expect(us.cascade!.nodeSet('pushed')?.version).toBe(1_000_000);
  });
});

describe('a room opened ahead of a join (GEO_SFU_CASCADE_PREWARM_MS)', () => {
  const HOLD_MS = 1_500;
  const cluster = new Cluster({ pollIntervalMs: 3_600_000, prewarmMs: HOLD_MS });
  let us: AgentNode;
  let eu: AgentNode;
  const people: Participant[] = [];
  /** The set the router pushes right after allocating a participant on eu-west: eu-west is named, nobody joined there yet. */
  const allocatedOnEu = (roomId: string): RoomNodeSet => {
    const set = cluster.nodeSet(roomId);
    return { version: set.version, nodes: [...set.nodes, { nodeId: eu.nodeId, region: eu.region, controlUrl: eu.url, state: 'alive' }] };
  };
  const pushTo = (node: AgentNode, roomId: string, set: RoomNodeSet) =>
    controlCall(cp.roomNodesPush, { baseUrl: node.url, secret: SECRET, timeoutMs: 2_000, nowMs: Date.now() }, { rooms: [{ roomId, ...set }] });

  beforeAll(async () => {
    us = await cluster.add('us-west-1', 'us-west');
    eu = await cluster.add('eu-west-1', 'eu-west');
  }, 30_000);

  afterAll(async () => {
    for (const p of people) p.leave();
    await cluster.close();
  });

  it('a pushed set naming this node opens the room and pipes the other nodes\' streams in before anyone joins here', async () => {
    const alice = await Participant.join(us, 'ahead', 'alice');
    people.push(alice);
    expect(eu.room('ahead')).toBeUndefined();
    const set = allocatedOnEu('ahead');
    const started = performance.now();
    await Promise.all([pushTo(us, 'ahead', set), pushTo(eu, 'ahead', set)]);
    await waitUntil(() => (eu.room('ahead')?.producers.size ?? 0) === 2, 10_000, "alice's two streams piped into eu-west's room");
    console.log(`[prewarm] alice's streams in eu-west's room ${(performance.now() - started).toFixed(0)} ms after the push, with nobody joined there`);
    const room = eu.room('ahead')!;
    expect(room.peers.size).toBe(0);
    expect([...room.producers.values()].map((p) => ({ peerId: p.peerId, remote: p.remote }))).toEqual([
      { peerId: 'alice', remote: true },
      { peerId: 'alice', remote: true },
    ]);
    // Bruno joins: alice's streams are there at his join, and the room outlives the hold while he is in it.
    const bruno = await Participant.join(eu, 'ahead', 'bruno', { publish: false });
    people.push(bruno);
    await waitUntil(() => bruno.consumers.size === 2, 5_000, 'bruno consuming both of alice\'s streams');
    await sleep(HOLD_MS + 300);
    expect(eu.room('ahead')).toBe(room);
    expect(room.closed).toBe(false);
  });

  it('closes a room opened ahead that nobody joins within the hold, and its links', async () => {
    people.push(await Participant.join(us, 'nobody', 'carla'));
    const set = allocatedOnEu('nobody');
    await Promise.all([pushTo(us, 'nobody', set), pushTo(eu, 'nobody', set)]);
    await waitUntil(() => us.cascade!.links().some((l) => l.roomId === 'nobody' && l.connected), 10_000, 'us-west linked to the room opened ahead');
    const opened = eu.room('nobody')!;
    await waitUntil(() => opened.closed, HOLD_MS + 5_000, 'room opened ahead closed after the hold');
    await waitUntil(() => !us.cascade!.links().some((l) => l.roomId === 'nobody') && !eu.cascade!.links().some((l) => l.roomId === 'nobody'), 5_000, 'links gone on both sides');
    expect(eu.room('nobody')).toBeUndefined();
  });

  it('closes a room opened ahead at once when a newer set no longer names this node (the allocation expired or moved)', async () => {
    people.push(await Participant.join(us, 'moved', 'dan'));
    const set = allocatedOnEu('moved');
    await Promise.all([pushTo(us, 'moved', set), pushTo(eu, 'moved', set)]);
    await waitUntil(() => eu.room('moved') !== undefined, 5_000, 'room opened ahead');
    const opened = eu.room('moved')!;
    const without = cluster.nodeSet('moved');
    await Promise.all([pushTo(us, 'moved', without), pushTo(eu, 'moved', without)]);
    await waitUntil(() => opened.closed, 2_000, 'room closed by the newer set');
    expect(eu.room('moved')).toBeUndefined();
  });

  it('a set naming only this node opens nothing (a room on one node needs no cascade)', async () => {
    await pushTo(eu, 'alone', { version: ++cluster.version, nodes: [{ nodeId: eu.nodeId, region: eu.region, controlUrl: eu.url, state: 'alive' }] });
    await sleep(200);
    expect(eu.room('alone')).toBeUndefined();
  });
});
