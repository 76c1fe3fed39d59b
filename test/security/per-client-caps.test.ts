import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_SPEC } from '../../shared/config/spec.ts';
import type { Peer } from '../../sfu/index.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { fakeMediaClient, fakeTrack } from '../sdk/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, joinWith, ok, request, signalingConfig, startSignalingRouter, token, waitFor, vp8Parameters } from '../signaling/helpers.ts';

/**
 * Issue 14, row 4: one participant tried 1,000 WebRTC transports and 200 consumers of one
 * producer. With the default caps (an agent started with the spec's defaults) each attempt past a
 * cap is refused with its code, the SFU holds exactly the cap, and the peer stays usable.
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});

const opus = (ssrc: number) => ({ codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc }] });
async function joinedAs(room: string, sub: string): Promise<{ socket: Socket; caps: Record<string, unknown>; peer: Peer }> {
  const { socket } = await joinWith(agent.url, { token: token({ room, sub }).token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  const peer = agent.sfu.rooms.rooms.get(room)?.getPeer(sub);
  if (!peer) throw new Error(`${sub} not in ${room}`);
  return { socket, caps: rtpCapabilities, peer };
}

/** Sends `n` requests at once; counts the answers by code ('ok' for successes). */
async function burst(socket: Socket, n: number, name: Parameters<typeof request>[1], payload: (i: number) => unknown): Promise<Record<string, number>> {
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => request(socket, name, payload(i))));
  const codes: Record<string, number> = {};
  for (const r of replies) {
    const code = r.ok ? 'ok' : r.error.code;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return codes;
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

describe('issue 14 row 4: per-client caps at the agent (defaults)', () => {
  it('1,000 WebRTC transports attempted: the SFU holds the cap, the rest refused (TOO_MANY_TRANSPORTS, RATE_LIMITED); the peer stays usable', async () => {
    const a = await joinedAs('caps-transports', 'mallory');
    const workerRssBefore = (await agent.sfu.pool.getLoad()).totals.memoryRssBytes;
    const started = performance.now();
    const codes = await burst(a.socket, 1_000, 'createWebRtcTransport', (i) => ({ direction: i % 2 ? 'send' : 'recv', sctp: true }));
    const elapsed = Math.round(performance.now() - started);
    const load = await agent.sfu.pool.getLoad();
    console.log(`1,000 createWebRtcTransport in ${elapsed} ms: ${JSON.stringify(codes)}; the peer holds ${a.peer.transports.size} transports (worker totals ${load.totals.transports}); worker RSS ${mib(workerRssBefore)} → ${mib(load.totals.memoryRssBytes)} MiB`);
    const cap = CONFIG_SPEC.maxTransportsPerPeer.default;
    expect(a.peer.transports.size).toBe(cap);
    expect(load.totals.transports).toBe(cap);
    expect(codes.ok).toBe(cap);
    expect(Object.keys(codes).sort()).toEqual(['RATE_LIMITED', 'TOO_MANY_TRANSPORTS', 'ok']);
    expect(a.socket.connected).toBe(true);

    // Within its caps the peer still works (once its request bucket has refilled a little).
    await new Promise((r) => setTimeout(r, 1_000));
    const send = [...a.peer.transports.values()].find((t) => (t.appData as { direction?: string }).direction === 'send')!;
    await ok(a.socket, 'produce', { transportId: send.id, kind: 'video', rtpParameters: vp8Parameters(9001) });
    expect(a.peer.producers.size).toBe(1);
    // A refused request changed nothing: closing one transport frees a place for exactly one more.
    send.close();
    await ok(a.socket, 'createWebRtcTransport', { direction: 'send' });
    expect(await request(a.socket, 'createWebRtcTransport', { direction: 'send' })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_TRANSPORTS' } });
    await ok(a.socket, 'leave', {});
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('caps-transports'));
  });

  it('250 consumers of one producer attempted: the SFU holds the consumer cap, the rest TOO_MANY_CONSUMERS', async () => {
    const alice = await joinedAs('caps-consumers', 'alice');
    const send = await ok(alice.socket, 'createWebRtcTransport', { direction: 'send' });
    const { producerId } = await ok(alice.socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(9101) });
    const m = await joinedAs('caps-consumers', 'mallory');
    const recv = await ok(m.socket, 'createWebRtcTransport', { direction: 'recv' });
    const started = performance.now();
    const codes = await burst(m.socket, 250, 'consume', () => ({ transportId: recv.transportId, producerId }));
    const load = await agent.sfu.pool.getLoad();
    console.log(`250 consume of one producer in ${Math.round(performance.now() - started)} ms: ${JSON.stringify(codes)}; mallory holds ${m.peer.consumers.size} consumers (worker totals ${load.totals.consumers})`);
    const cap = CONFIG_SPEC.maxConsumersPerPeer.default;
    expect(codes).toEqual({ ok: cap, TOO_MANY_CONSUMERS: 250 - cap });
    expect(m.peer.consumers.size).toBe(cap);
    expect(load.totals.consumers).toBe(cap);
    // A recv transport with the room's consumers (protocol 1.2 consumeAll) stays within the cap too.
    await ok(alice.socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(9102) });
    expect((await ok(m.socket, 'createWebRtcTransport', { direction: 'recv', consumeAll: true })).consumers).toEqual([]);
    expect(m.peer.consumers.size).toBe(cap);
    // Still usable: resume one of its consumers.
    const [consumerId] = m.peer.consumers.keys();
    await ok(m.socket, 'resumeConsumer', { consumerId: consumerId! });
    for (const s of [alice.socket, m.socket]) await ok(s, 'leave', {});
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('caps-consumers'));
  });

  it('producers, data producers and data consumers are capped too', async () => {
    const a = await joinedAs('caps-other', 'alice');
    const send = await ok(a.socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
    const recv = await ok(a.socket, 'createWebRtcTransport', { direction: 'recv', sctp: true });
    const producers = await burst(a.socket, 20, 'produce', (i) => ({ transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(9200 + i) }));
    const dataProducers = await burst(a.socket, 20, 'produceData', (i) => ({ transportId: send.transportId, sctpStreamParameters: { streamId: i } }));
    const [dataProducerId] = await dataProducerIds(a.peer);
    const dataConsumers = await burst(a.socket, 250, 'consumeData', () => ({ transportId: recv.transportId, dataProducerId }));
    console.log(`20 produce: ${JSON.stringify(producers)}; 20 produceData: ${JSON.stringify(dataProducers)}; 250 consumeData: ${JSON.stringify(dataConsumers)}`);
    expect(producers).toEqual({ ok: CONFIG_SPEC.maxProducersPerPeer.default, TOO_MANY_PRODUCERS: 20 - CONFIG_SPEC.maxProducersPerPeer.default });
    expect(dataProducers).toEqual({ ok: CONFIG_SPEC.maxDataProducersPerPeer.default, TOO_MANY_DATA_PRODUCERS: 20 - CONFIG_SPEC.maxDataProducersPerPeer.default });
    expect(dataConsumers).toEqual({ ok: CONFIG_SPEC.maxDataConsumersPerPeer.default, TOO_MANY_DATA_CONSUMERS: 250 - CONFIG_SPEC.maxDataConsumersPerPeer.default });
    expect(a.peer.producers.size).toBe(CONFIG_SPEC.maxProducersPerPeer.default);
    expect((await dataProducerIds(a.peer)).length).toBe(CONFIG_SPEC.maxDataProducersPerPeer.default);
    await ok(a.socket, 'leave', {});
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('caps-other'));
  });

  it('signaling requests per connection: a flood is RATE_LIMITED past the burst, the connection stays, the bucket refills', async () => {
    const { socket } = await joinWith(agent.url, { token: token({ room: 'caps-rate', sub: 'flooder' }).token });
    const codes = await burst(socket, 2_000, 'getRouterRtpCapabilities', () => ({}));
    console.log(`2,000 requests at once on one connection: ${JSON.stringify(codes)}`);
    expect(Object.keys(codes).sort()).toEqual(['RATE_LIMITED', 'ok']);
    expect(codes.ok).toBeGreaterThanOrEqual(4 * CONFIG_SPEC.maxRoomParticipants.default + 32);
    expect(codes.ok).toBeLessThan(2_000);
    expect(socket.connected).toBe(true);
    // Another connection has its own bucket.
    const { socket: other } = await joinWith(agent.url, { token: token({ room: 'caps-rate', sub: 'neighbour' }).token });
    await ok(other, 'getRouterRtpCapabilities', {});
    await new Promise((r) => setTimeout(r, 200));
    await ok(socket, 'getRouterRtpCapabilities', {});
    socket.close();
    other.close();
  });
});

describe('the request burst fits the SDK joining a full room', () => {
  it('an SDK participant joins a room of the default size (every other one publishing audio and video) without a refusal', async () => {
    const roomSize = CONFIG_SPEC.maxRoomParticipants.default;
    const others: Socket[] = [];
    for (let i = 0; i < roomSize - 1; i++) {
      const p = await joinedAs('caps-full-room', `p${i}`);
      const send = await ok(p.socket, 'createWebRtcTransport', { direction: 'send' });
      await ok(p.socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(20_000 + 2 * i) });
      await ok(p.socket, 'produce', { transportId: send.transportId, kind: 'audio', rtpParameters: opus(20_001 + 2 * i) });
      others.push(p.socket);
    }
    const client = fakeMediaClient(router.url);
    const errors: string[] = [];
    const { token: joinToken, claims } = token({ room: 'caps-full-room', sub: 'last' });
    const started = performance.now();
    const room = await client.join({
      allocation: {
        mode: 'sfu', allocationId: claims.aid, roomId: claims.room, participantId: claims.sub, homeRegion: claims.region, region: claims.region,
        node: { id: claims.node, region: claims.region, signalingUrl: agent.url }, token: joinToken, expiresAt: new Date(claims.exp * 1000).toISOString(),
        iceServers: [], cascade: { regions: [] }, rttSource: 'default', reasons: [], candidates: [],
      },
      tracks: [fakeTrack('audio'), fakeTrack('video')],
      on: { error: ({ error }) => errors.push(error.message) },
    });
    const consumers = agent.sfu.rooms.rooms.get('caps-full-room')?.getPeer('last')?.consumers.size;
    console.log(`SDK join of a full room (${roomSize - 1} others × audio + video) in ${Math.round(performance.now() - started)} ms: ${consumers} consumers, ${room.remoteTracks.length} remote tracks, errors ${JSON.stringify(errors)}; bucket ${4 * roomSize + 32}`);
    expect(errors).toEqual([]);
    expect(consumers).toBe(2 * (roomSize - 1));
    expect(room.remoteTracks).toHaveLength(2 * (roomSize - 1));
    await room.leave();
    for (const s of others) s.close();
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('caps-full-room'), 10_000);
  }, 120_000);
});

async function dataProducerIds(peer: Peer): Promise<string[]> {
  const ids: string[] = [];
  for (const t of peer.transports.values()) ids.push(...((await t.dump()) as unknown as { dataProducerIds: string[] }).dataProducerIds);
  return ids;
}
