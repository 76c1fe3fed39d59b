import { FakeHandler, testFakeParameters } from 'mediasoup-client';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSfuClient, type GeoSfuRoom, type RoomEvents } from '../../sdk/index.ts';
import type { TokenKey } from '../../shared/config/index.ts';
import { createGrant } from '../../shared/tokens.ts';
import { fakeTrack } from '../sdk/helpers.ts';
import { type RunningAgent, SfuAgents, connect, joinWith, ok, recordEvents, signalingConfig, waitFor } from '../signaling/helpers.ts';
import { allocate } from '../utils/http.ts';
import { type RunningRouter, cleanupNamespaces, startRouter, testConfig } from '../utils/router-harness.ts';

/**
 * Issue #14, row 3: one live session per participant, and kicks that bite. A real router (memory
 * stores) and three in-process agents with real SFUs in one region; clients are raw socket.io
 * connections (and the SDK with mediasoup-client's FakeHandler for `removed` being final).
 */
const GRANT_KEY: TokenKey = { kid: 'app-1', secret: 'security-sessions-grant-secret-0123456789' };
const GRANT_AUDIENCE = 'geo-sfu';
const OVERLAP_MS = 1_000;
/** Allocations not joined within this expire (short, for the test of an unjoined replacement). */
const ALLOCATION_TTL_MS = 2_000;
const NODES = ['west-1', 'west-2', 'west-3'];
const LATENCIES = { 'us-west': 20, 'us-east': 70, 'eu-west': 140, apac: 170 };

let router: RunningRouter;
const agents = new SfuAgents();
const byNode = new Map<string, RunningAgent>();

const grant = (roomId: string, participantId: string, nowMs = Date.now()) =>
  createGrant({ key: GRANT_KEY, issuer: 'security-test', audience: GRANT_AUDIENCE, roomId, participantId, ttlSeconds: 600, nowMs });

beforeAll(async () => {
  router = await startRouter(testConfig('memory', { grantKeys: [GRANT_KEY], requireAuth: true, sessionOverlapMs: OVERLAP_MS, allocationTtlMs: ALLOCATION_TTL_MS, rebalance: false }));
  for (const agentId of NODES) {
    const agent = await agents.start(
      signalingConfig(router.url, { agentId, clusterSecret: router.config.clusterSecret, tokenKeys: router.config.tokenKeys, heartbeatIntervalMs: 200, resumeGraceMs: 2_000 }),
    );
    byNode.set(agentId, agent);
  }
  await waitFor('every node alive on the router', () => {
    const nodes = router.app.registry.snapshot().nodes;
    return NODES.every((id) => nodes.some((n) => n.nodeId === id && n.state === 'alive'));
  }, 10_000);
}, 60_000);
afterAll(async () => {
  await agents.closeAll();
  await router?.close();
  await cleanupNamespaces();
});

async function allocateWith(credential: string, roomId: string, participantId: string, excludeNodeIds: string[] = []) {
  return allocate(router.url, { roomId, participantId, latencies: LATENCIES, ...(excludeNodeIds.length > 0 ? { excludeNodeIds } : {}) }, { authorization: `Bearer ${credential}` });
}

/** Connects with the allocation's join token, joins the room and publishes one (SFU-side) video producer. */
async function joinAndPublish(allocation: { node: { signalingUrl: string }; token: string }, ssrc: number) {
  const { socket, welcome } = await joinWith(allocation.node.signalingUrl, { token: allocation.token });
  const events = recordEvents(socket);
  const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  const send = await ok(socket, 'createWebRtcTransport', { direction: 'send' });
  const { producerId } = await ok(socket, 'produce', {
    transportId: send.transportId,
    kind: 'video',
    rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc }] },
  });
  return { socket, welcome, events, disconnected, producerId };
}

/** Peers of this participant held by the SFUs of all agents (local peers only: what carries its media). */
function livePeers(roomId: string, participantId: string): string[] {
  return NODES.filter((id) => {
    const peer = byNode.get(id)!.sfu.rooms.getRoom(roomId)?.getPeer(participantId);
    return peer !== undefined && !peer.closed && !peer.origin;
  });
}

/** Until the router's room state has this participant joined. */
async function routerJoined(roomId: string, participantId: string): Promise<void> {
  const deadline = performance.now() + 5_000;
  for (;;) {
    const state = await router.app.rooms.getRoom(roomId);
    if (state?.participants.some((p) => p.participantId === participantId && p.status === 'joined')) return;
    if (performance.now() > deadline) throw new Error(`${participantId} never joined ${roomId} on the router`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function kick(roomId: string, participantId: string): Promise<number> {
  const res = await request(`${router.url}/rooms/${roomId}/participants/${participantId}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${router.config.adminToken}` },
  });
  await res.body.text();
  return res.statusCode;
}

describe('row 3: one live session per participant, and kicks that bite', () => {
  it('(a) a join token replayed after `leave` is refused with TOKEN_USED', async () => {
    const g = grant('replay', 'mallory');
    const res = await allocateWith(g, 'replay', 'mallory');
    expect(res.status).toBe(200);
    const first = await joinAndPublish(res.body, 0x1001);
    await ok(first.socket, 'leave', {});
    await first.disconnected;
    await waitFor('the left participant gone from the SFU', () => livePeers('replay', 'mallory').length === 0);

    const replay = await connect(res.body.node.signalingUrl, { token: res.body.token });
    replay.socket.close();
    console.log(`join token replayed after leave: ${replay.error ? `refused ${replay.error.data?.code}` : 'welcomed'}`);
    expect(replay.welcome).toBeUndefined();
    expect(replay.error?.data?.code).toBe('TOKEN_USED');
    // A replay while the session it opened lives is refused too (it no longer replaces it).
    const fresh = await allocateWith(g, 'replay', 'mallory');
    const live = await joinAndPublish(fresh.body, 0x1002);
    const again = await connect(fresh.body.node.signalingUrl, { token: fresh.body.token });
    again.socket.close();
    expect(again.error?.data?.code).toBe('TOKEN_USED');
    expect(live.socket.connected).toBe(true);
    expect(livePeers('replay', 'mallory')).toEqual([fresh.body.node.id]);
    await ok(live.socket, 'leave', {});
  });

  it('(b) admin removal closes the live session (`removed`, then disconnect; its producer closed on the SFU) and the old grant is refused', async () => {
    const g = grant('kick', 'mallory');
    const mallory = await allocateWith(g, 'kick', 'mallory');
    const bob = await allocateWith(grant('kick', 'bob'), 'kick', 'bob', NODES.filter((id) => id !== mallory.body.node.id));
    const m = await joinAndPublish(mallory.body, 0x2001);
    const b = await joinAndPublish(bob.body, 0x2002);
    const sfu = byNode.get(mallory.body.node.id)!.sfu;
    expect(sfu.rooms.getRoom('kick')?.producers.has(m.producerId)).toBe(true);
    await routerJoined('kick', 'mallory');

    const order: string[] = [];
    m.socket.on('removed', () => order.push('removed'));
    m.socket.on('disconnect', () => order.push('disconnect'));
    const started = performance.now();
    expect(await kick('kick', 'mallory')).toBe(204);
    const answeredMs = performance.now() - started;
    // The router answers once the agent closed the session: its peer and producer are gone already.
    const producerGoneAtAnswer = !sfu.rooms.getRoom('kick')?.producers.has(m.producerId);
    const disconnect = await Promise.race([m.disconnected, new Promise((r) => setTimeout(() => r('still connected 3 s after the removal'), 3_000))]);
    const disconnectedMs = performance.now() - started;
    console.log(`admin removal: DELETE answered after ${answeredMs.toFixed(0)} ms, socket closed after ${disconnectedMs.toFixed(0)} ms; events ${order.join(' → ')}`);
    expect(producerGoneAtAnswer).toBe(true);
    expect(disconnect).toBe('io server disconnect');
    expect(order).toEqual(['removed', 'disconnect']);
    expect(m.events.find((e) => e.event === 'removed')?.msg).toEqual({ reason: 'removed' });
    expect(livePeers('kick', 'mallory')).toEqual([]);
    // The others see its producer close (bob's edge gets it through the cascade only if it consumed; the room state says it).
    expect(b.socket.connected).toBe(true);

    // Neither a resume nor the old grant gets it back; a grant issued after the kick does.
    const resumed = await connect(mallory.body.node.signalingUrl, { resume: String(m.welcome.resume) });
    resumed.socket.close();
    expect(resumed.error?.data?.code).toBe('RESUME_EXPIRED');
    const again = await allocateWith(g, 'kick', 'mallory');
    console.log(`re-/allocate with the old grant: ${again.status} ${again.body.error?.code ?? ''}`);
    expect(again.status).toBe(403);
    expect(again.body.error?.code).toBe('KICKED');
    const newGrant = await allocateWith(grant('kick', 'mallory', Date.now() + 1_000), 'kick', 'mallory');
    expect(newGrant.status).toBe(200);
    await ok(b.socket, 'leave', {});
  });

  it('(c) one grant + excludeNodeIds: after the overlap at most one session per participant carries media', async () => {
    const g = grant('multi', 'mallory');
    const sessions: Array<Awaited<ReturnType<typeof joinAndPublish>> & { nodeId: string }> = [];
    const used: string[] = [];
    for (let i = 0; i < NODES.length; i++) {
      const res = await allocateWith(g, 'multi', 'mallory', used);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      used.push(res.body.node.id);
      sessions.push({ ...(await joinAndPublish(res.body, 0x3001 + i)), nodeId: res.body.node.id });
    }
    expect(new Set(used).size).toBe(NODES.length);
    const newest = sessions.at(-1)!;
    const atLastJoin = livePeers('multi', 'mallory').length;
    // The last join report is on its way; the overlap counts from it.
    await waitFor('older sessions closed after the overlap', () => livePeers('multi', 'mallory').length <= 1, OVERLAP_MS + 5_000);
    const after = livePeers('multi', 'mallory');
    await Promise.all(sessions.slice(0, -1).map((s) => s.disconnected));
    const removed = sessions.map((s) => s.events.find((e) => e.event === 'removed')?.msg ?? null);
    console.log(`sessions of one grant on ${used.length} nodes: ${atLastJoin} carrying media at the last join, ${after.length} after the ${OVERLAP_MS} ms overlap (${after.join(', ')}); removed events: ${JSON.stringify(removed)}`);
    expect(after).toEqual([newest.nodeId]);
    expect(removed).toEqual([{ reason: 'replaced' }, { reason: 'replaced' }, null]);
    expect(newest.socket.connected).toBe(true);
    const state = await router.app.rooms.getRoom('multi');
    expect(state?.participants.map((p) => [p.participantId, p.nodeId])).toEqual([['mallory', newest.nodeId]]);
    await ok(newest.socket, 'leave', {});
  });
});

describe('no session runs uncounted', () => {
  it('a replacement allocation that expires unjoined closes the session it replaced (`moved`: allocate again)', async () => {
    const g = grant('orphan', 'mallory');
    const first = await allocateWith(g, 'orphan', 'mallory');
    const live = await joinAndPublish(first.body, 0x4001);
    await routerJoined('orphan', 'mallory');
    const replacement = await allocateWith(g, 'orphan', 'mallory', [first.body.node.id]);
    expect(replacement.status).toBe(200);
    // Never joined: it expires, and the router counts nobody for mallory.
    const disconnect = await Promise.race([live.disconnected, new Promise((r) => setTimeout(() => r('still connected'), ALLOCATION_TTL_MS + 5_000))]);
    const state = await router.app.rooms.getRoom('orphan');
    console.log(`replacement expired unjoined: older session ${String(disconnect)}; events ${JSON.stringify(live.events.map((e) => [e.event, e.msg]))}`);
    expect(disconnect).toBe('io server disconnect');
    expect(live.events.map((e) => [e.event, e.msg])).toEqual([['moved', { reason: 'allocation_not_current', excludeNodeIds: [] }]]);
    expect(state?.participants ?? []).toEqual([]);
    expect(livePeers('orphan', 'mallory')).toEqual([]);
  });
});

describe('SDK: `removed` is final', () => {
  it('a removed participant’s room closes without allocating again', async () => {
    const client = new GeoSfuClient({ routerUrl: router.url, handlerFactory: FakeHandler.createFactory(testFakeParameters) });
    const allocation = await client.allocate('sdk-kick', 'mallory', { grant: grant('sdk-kick', 'mallory'), latencies: LATENCIES });
    let reallocations = 0;
    const room: GeoSfuRoom = await client.join({
      allocation,
      tracks: [fakeTrack('audio')],
      reallocate: async (excludeNodeIds) => {
        reallocations++;
        return client.allocate('sdk-kick', 'mallory', { grant: grant('sdk-kick', 'mallory'), latencies: LATENCIES, excludeNodeIds });
      },
    });
    const log: Array<{ event: keyof RoomEvents; payload: unknown }> = [];
    for (const event of ['moved', 'reconnecting', 'reconnected', 'error', 'closed'] as const) room.on(event, (payload) => log.push({ event, payload }));
    await routerJoined('sdk-kick', 'mallory');
    expect(await kick('sdk-kick', 'mallory')).toBe(204);
    await waitFor('room closed', () => room.closed, 5_000);
    // Anything the SDK would do after a loss (resume, then failover) has had time to start.
    await new Promise((r) => setTimeout(r, 1_500));
    console.log(`SDK after removal: ${JSON.stringify(log.map((l) => l.event))}, reallocations ${reallocations}`);
    expect(reallocations).toBe(0);
    expect(log.map((l) => l.event)).toEqual(['closed']);
    expect(log[0]!.payload).toEqual({ reason: 'removed' });
    expect(livePeers('sdk-kick', 'mallory')).toEqual([]);
  });
});
