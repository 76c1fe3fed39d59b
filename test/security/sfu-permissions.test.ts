import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Permissions } from '../../shared/tokens.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, connect, joinWith, ok, request, sfuCounts, signalingConfig, startSignalingRouter, token, waitFor, vp8Parameters } from '../signaling/helpers.ts';

/**
 * Issue 14, row 2: the join token's `perm` is enforced by the agent. `publish` allows produce,
 * `subscribe` consume and consumeData, `publishData` (default: `publish`) produceData; a transport
 * is opened only in a direction the participant may use. A refusal is `FORBIDDEN` and creates
 * nothing on the SFU.
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

/** Joined, with its transports opened when it may have them. */
async function joinedAs(room: string, sub: string, perm?: Permissions): Promise<{ socket: Socket; caps: Record<string, unknown> }> {
  const { socket } = await joinWith(agent.url, { token: token({ room, sub, ...(perm ? { perm } : {}) }).token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  return { socket, caps: rtpCapabilities };
}

/** Everything the SFU holds, data producers and consumers included. */
async function held() {
  return { ...(await sfuCounts(agent)), dataProducers: await countOnTransports('dataProducers'), dataConsumers: await countOnTransports('dataConsumers') };
}

/** Data producers / consumers as the workers report them in their transports' dumps. */
async function countOnTransports(field: 'dataProducers' | 'dataConsumers'): Promise<number> {
  let n = 0;
  for (const room of agent.sfu.rooms.rooms.values()) {
    for (const peer of room.peers.values()) {
      for (const t of peer.transports.values()) {
        const dump = (await t.dump()) as unknown as { dataProducerIds: string[]; dataConsumerIds: string[] };
        n += (field === 'dataProducers' ? dump.dataProducerIds : dump.dataConsumerIds).length;
      }
    }
  }
  return n;
}

describe('issue 14 row 2: permissions at the SFU', () => {
  it('perm {publish: false, subscribe: false}: transports, produce, consume, produceData, consumeData all FORBIDDEN; nothing created', async () => {
    // A full participant publishing media and data, so there is something to consume.
    const alice = await joinedAs('perm-room', 'alice');
    const send = await ok(alice.socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
    const recv = await ok(alice.socket, 'createWebRtcTransport', { direction: 'recv', sctp: true });
    const { producerId } = await ok(alice.socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(7001) });
    const { dataProducerId } = await ok(alice.socket, 'produceData', { transportId: send.transportId, sctpStreamParameters: { streamId: 1, ordered: true }, label: 'chat' });

    const mallory = await joinedAs('perm-room', 'mallory', { publish: false, subscribe: false });
    const before = await held();
    // What an attacker does: open transports, then use them (or, refused, anyone's ids).
    const replies: Record<string, unknown> = {};
    const sendT = await request(mallory.socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
    const recvT = await request(mallory.socket, 'createWebRtcTransport', { direction: 'recv', sctp: true });
    replies.sendTransport = sendT;
    replies.recvTransport = recvT;
    const sendId = sendT.ok ? sendT.data.transportId : send.transportId;
    const recvId = recvT.ok ? recvT.data.transportId : recv.transportId;
    replies.produce = await request(mallory.socket, 'produce', { transportId: sendId, kind: 'video', rtpParameters: vp8Parameters(7002) });
    replies.consume = await request(mallory.socket, 'consume', { transportId: recvId, producerId });
    replies.produceData = await request(mallory.socket, 'produceData', { transportId: sendId, sctpStreamParameters: { streamId: 2, ordered: true } });
    replies.consumeData = await request(mallory.socket, 'consumeData', { transportId: recvId, dataProducerId });
    const codes = Object.fromEntries(Object.entries(replies).map(([k, r]) => [k, (r as { ok: boolean; error?: { code: string } }).ok ? 'ok' : (r as { error: { code: string } }).error.code]));
    console.log(`perm {publish:false, subscribe:false}: ${JSON.stringify(codes)}`);
    expect(codes).toEqual({ sendTransport: 'FORBIDDEN', recvTransport: 'FORBIDDEN', produce: 'FORBIDDEN', consume: 'FORBIDDEN', produceData: 'FORBIDDEN', consumeData: 'FORBIDDEN' });
    expect((replies.produce as { error: { message: string } }).error.message).toMatch(/publish/);
    expect(await held()).toEqual(before);
    // Refused, not thrown out: the connection stays, and the rest of the room is untouched.
    expect(mallory.socket.connected).toBe(true);
    expect(before).toMatchObject({ peers: 2, transports: 2, producers: 1, consumers: 0, dataProducers: 1, dataConsumers: 0 });
    for (const s of [alice.socket, mallory.socket]) await ok(s, 'leave', {});
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('perm-room'));
  });

  it('publish-only, subscribe-only, and publishData defaulting to publish', async () => {
    const pub = await joinedAs('perm-split', 'pub', { publish: true, subscribe: false });
    const sub = await joinedAs('perm-split', 'sub', { publish: false, subscribe: true });
    const mediaOnly = await joinedAs('perm-split', 'media-only', { publish: true, subscribe: false, publishData: false });
    const dataOnly = await joinedAs('perm-split', 'data-only', { publish: false, subscribe: false, publishData: true });

    // Directions: a publisher has no recv transport, a subscriber no send transport.
    const pubSend = await ok(pub.socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
    expect(await request(pub.socket, 'createWebRtcTransport', { direction: 'recv' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const subRecv = await ok(sub.socket, 'createWebRtcTransport', { direction: 'recv', sctp: true });
    expect(await request(sub.socket, 'createWebRtcTransport', { direction: 'send' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

    const { producerId } = await ok(pub.socket, 'produce', { transportId: pubSend.transportId, kind: 'video', rtpParameters: vp8Parameters(7101) });
    // publishData absent: follows publish.
    const { dataProducerId } = await ok(pub.socket, 'produceData', { transportId: pubSend.transportId, sctpStreamParameters: { streamId: 1, ordered: true } });
    await ok(sub.socket, 'consume', { transportId: subRecv.transportId, producerId });
    await ok(sub.socket, 'consumeData', { transportId: subRecv.transportId, dataProducerId });
    expect(await request(sub.socket, 'produce', { transportId: subRecv.transportId, kind: 'video', rtpParameters: vp8Parameters(7102) })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await request(pub.socket, 'consume', { transportId: pubSend.transportId, producerId })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

    // publish without publishData: media yes, data no; publishData alone: data yes, media no.
    const mSend = await ok(mediaOnly.socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
    await ok(mediaOnly.socket, 'produce', { transportId: mSend.transportId, kind: 'video', rtpParameters: vp8Parameters(7103) });
    expect(await request(mediaOnly.socket, 'produceData', { transportId: mSend.transportId, sctpStreamParameters: { streamId: 1 } })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const dSend = await ok(dataOnly.socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
    await ok(dataOnly.socket, 'produceData', { transportId: dSend.transportId, sctpStreamParameters: { streamId: 1 } });
    expect(await request(dataOnly.socket, 'produce', { transportId: dSend.transportId, kind: 'video', rtpParameters: vp8Parameters(7104) })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

    // The join answer tells the client what it may do (the SDK opens only the transports it can use).
    const { socket } = await joinWith(agent.url, { token: token({ room: 'perm-split', sub: 'late', perm: { publish: false, subscribe: true } }).token });
    const joined = await ok(socket, 'join', { rtpCapabilities: sub.caps });
    expect(joined.permissions).toEqual({ publish: false, subscribe: true, publishData: false });
    const { socket: legacy } = await joinWith(agent.url, { token: token({ room: 'perm-split', sub: 'no-perm-claim' }).token });
    expect((await ok(legacy, 'join', { rtpCapabilities: sub.caps })).permissions).toEqual({ publish: true, subscribe: true, publishData: true });

    // A perm claim of the wrong shape (the router never signs one) is refused at connect.
    const malformed = await connect(agent.url, { token: token({ room: 'perm-split', sub: 'odd', perm: { publish: 'yes', subscribe: true } as unknown as Permissions }).token });
    expect(malformed.error?.data?.code).toBe('TOKEN_MALFORMED');

    for (const s of [pub.socket, sub.socket, mediaOnly.socket, dataOnly.socket, socket, legacy]) await ok(s, 'leave', {});
    await waitFor('room gone', () => !agent.sfu.rooms.rooms.has('perm-split'));
  });
});
