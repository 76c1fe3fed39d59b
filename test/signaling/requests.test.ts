import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, joinWith, ok, recordEvents, request, sfuCounts, signalingConfig, startSignalingRouter, token, waitFor, vp8Parameters } from './helpers.ts';

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

async function participant(room: string, sub: string, lastN?: number): Promise<{ socket: Socket; send: string; recv: string; caps: Record<string, unknown> }> {
  const { socket } = await joinWith(agent.url, { token: token({ room, sub }).token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities, displayName: sub, ...(lastN !== undefined ? { lastN } : {}) });
  const send = await ok(socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
  const recv = await ok(socket, 'createWebRtcTransport', { direction: 'recv', sctp: true });
  return { socket, send: send.transportId, recv: recv.transportId, caps: rtpCapabilities };
}

describe('signaling requests', () => {
  it('refuses every request with a bad payload, naming the field, and changes nothing', async () => {
    const a = await participant('room-bad', 'alice');
    const producer = await ok(a.socket, 'produce', { transportId: a.send, kind: 'video', rtpParameters: vp8Parameters(1111) });
    const before = await sfuCounts(agent);
    const cases: Array<[string, unknown, string]> = [
      ['getRouterRtpCapabilities', { extra: 1 }, 'extra'],
      ['join', {}, 'rtpCapabilities'],
      ['join', { rtpCapabilities: 'x' }, 'rtpCapabilities'],
      ['join', { rtpCapabilities: {}, displayName: 'x'.repeat(200) }, 'displayName'],
      ['join', { rtpCapabilities: {}, lastN: -1 }, 'lastN'],
      ['join', { rtpCapabilities: {}, lastN: 1.5 }, 'lastN'],
      ['join', { rtpCapabilities: {}, lastN: '2' }, 'lastN'],
      ['createWebRtcTransport', { direction: 'sideways' }, 'direction'],
      ['createWebRtcTransport', { direction: 'send', sctp: 'yes' }, 'sctp'],
      ['createWebRtcTransport', { direction: 'recv', consumeAll: 'yes' }, 'consumeAll'],
      ['createWebRtcTransport', { direction: 'send', consumeAll: true }, 'consumeAll'],
      ['connectTransport', { transportId: a.send, dtlsParameters: 'x' }, 'dtlsParameters'],
      ['connectTransport', { dtlsParameters: {} }, 'transportId'],
      ['restartIce', { transportId: '' }, 'transportId'],
      ['produce', { transportId: a.send, kind: 'text', rtpParameters: vp8Parameters(2) }, 'kind'],
      ['produce', { transportId: a.send, kind: 'video', rtpParameters: vp8Parameters(2), appData: 5 }, 'appData'],
      ['closeProducer', {}, 'producerId'],
      ['pauseProducer', { producerId: 5 }, 'producerId'],
      ['resumeProducer', { producerId: 'x'.repeat(65) }, 'producerId'],
      ['consume', { transportId: a.recv }, 'producerId'],
      ['resumeConsumer', { consumerId: null }, 'consumerId'],
      ['setPreferredLayers', { consumerId: 'c', spatialLayer: 99 }, 'spatialLayer'],
      ['setPreferredLayers', { consumerId: 'c', spatialLayer: 1, temporalLayer: 0.5 }, 'temporalLayer'],
      ['produceData', { transportId: a.send }, 'sctpStreamParameters'],
      ['consumeData', { transportId: a.recv, dataProducerId: 1 }, 'dataProducerId'],
      ['leave', { now: true }, 'now'],
      ['leave', 'bye', ''],
    ];
    for (const [name, payload, field] of cases) {
      const reply = await request(a.socket, name as 'leave', payload);
      expect(reply, `${name} ${JSON.stringify(payload)}`).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD', field } });
    }
    expect(await sfuCounts(agent)).toEqual(before);
    expect(before).toMatchObject({ peers: 1, transports: 2, producers: 1, sessions: 1 });
    expect(a.socket.connected).toBe(true);

    // Well-formed but wrong: refused with a reason, nothing changed either.
    const refusals: Array<[string, unknown, string]> = [
      ['join', { rtpCapabilities: a.caps }, 'ALREADY_JOINED'],
      ['consume', { transportId: a.recv, producerId: 'nope' }, 'NOT_FOUND'],
      ['consume', { transportId: a.send, producerId: producer.producerId }, 'WRONG_DIRECTION'],
      ['produce', { transportId: a.recv, kind: 'video', rtpParameters: vp8Parameters(3) }, 'WRONG_DIRECTION'],
      ['produce', { transportId: a.send, kind: 'video', rtpParameters: { codecs: [] } }, 'INVALID_ARGUMENT'],
      ['pauseProducer', { producerId: 'nope' }, 'NOT_FOUND'],
      ['resumeConsumer', { consumerId: 'nope' }, 'NOT_FOUND'],
      ['connectTransport', { transportId: 'nope', dtlsParameters: {} }, 'NOT_FOUND'],
      ['consumeData', { transportId: a.recv, dataProducerId: 'nope' }, 'NOT_FOUND'],
    ];
    for (const [name, payload, code] of refusals) {
      const reply = await request(a.socket, name as 'leave', payload);
      expect(reply, `${name} ${JSON.stringify(payload)}`).toMatchObject({ ok: false, error: { code } });
    }
    expect(await request(a.socket, 'noSuchRequest' as 'leave', {})).toMatchObject({ ok: false, error: { code: 'UNKNOWN_REQUEST' } });
    expect(await sfuCounts(agent)).toEqual(before);

    // Before join, only getRouterRtpCapabilities, join and leave.
    const { socket: b } = await joinWith(agent.url, { token: token({ room: 'room-bad', sub: 'bob' }).token });
    expect(await request(b, 'createWebRtcTransport', { direction: 'send' })).toMatchObject({ ok: false, error: { code: 'NOT_JOINED' } });
    b.close();
    await ok(a.socket, 'leave', {});
    await waitFor('sessions gone', () => agent.signaling?.sessionCount === 0, 3_000);
    expect(await sfuCounts(agent)).toEqual({ rooms: 0, peers: 0, transports: 0, producers: 0, consumers: 0, routers: 0, sessions: 0 });
  });

  it('two peers: join, produce, consume, pause/resume, data channels, close, leave (with the router told)', async () => {
    const a = await participant('room-flow', 'alice');
    const aEvents = recordEvents(a.socket);
    const b = await participant('room-flow', 'bob');
    const bEvents = recordEvents(b.socket);
    await waitFor('alice hears bob joined', () => aEvents.find((e) => e.event === 'peerJoined'));
    expect(aEvents.find((e) => e.event === 'peerJoined')?.msg).toEqual({ peerId: 'bob', region: 'us-west', displayName: 'bob' });

    const { producerId } = await ok(a.socket, 'produce', { transportId: a.send, kind: 'video', rtpParameters: vp8Parameters(4242), appData: { source: 'camera' } });
    await waitFor('bob hears the new producer', () => bEvents.find((e) => e.event === 'newProducer'));
    expect(bEvents.find((e) => e.event === 'newProducer')?.msg).toEqual({ producerId, peerId: 'alice', kind: 'video', paused: false, region: 'us-west' });

    const consumer = await ok(b.socket, 'consume', { transportId: b.recv, producerId });
    expect(consumer).toMatchObject({ producerId, kind: 'video', producerPaused: false });
    await ok(b.socket, 'resumeConsumer', { consumerId: consumer.consumerId });
    await ok(b.socket, 'setPreferredLayers', { consumerId: consumer.consumerId, spatialLayer: 0 });

    await ok(a.socket, 'pauseProducer', { producerId });
    await waitFor('bob hears the pause', () => bEvents.find((e) => e.event === 'producerPaused'));
    await ok(a.socket, 'resumeProducer', { producerId });
    await waitFor('bob hears the resume', () => bEvents.find((e) => e.event === 'producerResumed'));
    expect(bEvents.filter((e) => e.event === 'producerPaused')).toHaveLength(1);

    const { dataProducerId } = await ok(a.socket, 'produceData', { transportId: a.send, sctpStreamParameters: { streamId: 1, ordered: true }, label: 'chat' });
    const dc = await ok(b.socket, 'consumeData', { transportId: b.recv, dataProducerId });
    expect(dc).toMatchObject({ dataProducerId, label: 'chat', protocol: '' });

    // A late joiner is told about the existing peers and producers in the join answer.
    const { socket: c } = await joinWith(agent.url, { token: token({ room: 'room-flow', sub: 'carol' }).token });
    const joined = await ok(c, 'join', { rtpCapabilities: a.caps });
    expect(joined.peers.map((p) => p.peerId).sort()).toEqual(['alice', 'bob']);
    expect(joined.producers).toEqual([{ producerId, peerId: 'alice', kind: 'video', paused: false, region: 'us-west' }]);
    // Protocol 1.2: its recv transport comes with a consumer of each (paused until resumed), once.
    const recvWithConsumers = await ok(c, 'createWebRtcTransport', { direction: 'recv', consumeAll: true });
    expect(recvWithConsumers.consumers).toEqual([{ consumerId: expect.any(String), producerId, kind: 'video', rtpParameters: expect.any(Object), producerPaused: false }]);
    const carolPeer = agent.sfu.rooms.getRoom('room-flow')!.getPeer('carol')!;
    const made = carolPeer.consumers.get(recvWithConsumers.consumers![0]!.consumerId)!;
    expect({ transport: [...carolPeer.transports.keys()].includes(recvWithConsumers.transportId), paused: made.paused }).toEqual({ transport: true, paused: true });
    expect((await ok(c, 'createWebRtcTransport', { direction: 'recv', consumeAll: true })).consumers).toEqual([]);

    await ok(a.socket, 'closeProducer', { producerId });
    await waitFor('bob hears the producer closed and its consumer closed', () => bEvents.find((e) => e.event === 'producerClosed') && bEvents.find((e) => e.event === 'consumerClosed'));
    expect(bEvents.find((e) => e.event === 'consumerClosed')?.msg).toEqual({ consumerId: consumer.consumerId, producerId });

    const aClosed = new Promise<string>((resolve) => a.socket.once('disconnect', resolve));
    await ok(a.socket, 'leave', {});
    expect(await aClosed).toBe('io server disconnect');
    await waitFor('bob hears alice left', () => bEvents.find((e) => e.event === 'peerLeft'));
    await waitFor('left reported', () => router.participantEvents.find((e) => e.participantId === 'alice' && e.event === 'left'));
    const aliceEvents = router.participantEvents.filter((e) => e.roomId === 'room-flow' && e.participantId === 'alice');
    expect(aliceEvents.map((e) => e.event)).toEqual(['joined', 'left']);
    expect(aliceEvents[0]).toMatchObject({ nodeId: 'west-1', allocationId: expect.stringMatching(/^alloc-/) });
    for (const s of [b.socket, c]) await ok(s, 'leave', {});
    await waitFor('room gone', () => agent.sfu.rooms.rooms.size === 0);
  });

  it('join with lastN limits the video the SFU forwards (server-side pause), audio untouched', async () => {
    const a = await participant('room-lastn', 'alice');
    const b = await participant('room-lastn', 'bob');
    const s = await participant('room-lastn', 'sub', 1);
    const sfuSub = agent.sfu.rooms.rooms.get('room-lastn')?.getPeer('sub');
    expect(sfuSub?.lastN).toBe(1);
    const opus = (ssrc: number) => ({ codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc }] });
    const producers = [
      await ok(a.socket, 'produce', { transportId: a.send, kind: 'video', rtpParameters: vp8Parameters(5001) }),
      await ok(b.socket, 'produce', { transportId: b.send, kind: 'video', rtpParameters: vp8Parameters(5002) }),
      await ok(b.socket, 'produce', { transportId: b.send, kind: 'audio', rtpParameters: opus(5003) }),
    ];
    const consumers: string[] = [];
    for (const { producerId } of producers) {
      const c = await ok(s.socket, 'consume', { transportId: s.recv, producerId });
      await ok(s.socket, 'resumeConsumer', { consumerId: c.consumerId });
      consumers.push(c.consumerId);
    }
    // Nobody spoke yet: join order, so alice's video flows, bob's video is paused, bob's audio flows.
    const paused = () => consumers.map((id) => sfuSub?.consumers.get(id)?.paused);
    expect(paused()).toEqual([false, true, false]);
    // Alice leaves: bob's video takes the freed slot.
    await ok(a.socket, 'leave', {});
    await waitFor('bob video resumed', () => sfuSub?.consumers.get(consumers[1]!)?.paused === false, 3_000);
    for (const p of [b, s]) await ok(p.socket, 'leave', {});
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('room-lastn'));
  });
});
