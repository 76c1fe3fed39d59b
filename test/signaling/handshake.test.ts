import { afterAll, beforeAll, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { type Ack, HANDSHAKE_REQUESTS_MAX, PROTOCOL_VERSION, type ResponseData } from '../../shared/signaling.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, connect, joinWith, ok, recordEvents, sfuCounts, signalingConfig, startSignalingRouter, token, vp8Parameters, waitFor } from './helpers.ts';

/**
 * Protocol 1.3: a connection's first requests ride in its handshake (`auth.requests`), run right
 * after the welcome as if emitted then, each answered by a `handshakeAnswer`: a joiner that got
 * the agent's RTP capabilities from /allocate (its registration carries them) joins and gets its
 * transports, with the room's consumers, without a round trip of its own after the connection's.
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
const sockets: Socket[] = [];
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 0 }));
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await agents.closeAll();
  await router.close();
});

/** Connects with `requests` in the handshake; resolves once `answers` handshake answers arrived, with every server event in order. */
async function handshake(auth: Record<string, unknown>, answers: number): Promise<{ socket: Socket; events: Array<{ event: string; msg: unknown }> }> {
  const socket = io(agent.url, { auth: { protocolVersion: PROTOCOL_VERSION, ...auth }, transports: ['websocket'], reconnection: false, forceNew: true });
  sockets.push(socket);
  const events = recordEvents(socket);
  await waitFor(`${answers} handshake answers`, () => events.filter((e) => e.event === 'handshakeAnswer').length >= answers, 10_000);
  return { socket, events };
}
const answerOf = (events: Array<{ event: string; msg: unknown }>, index: number) =>
  (events.find((e) => e.event === 'handshakeAnswer' && (e.msg as { index: number }).index === index)!.msg as { reply: Ack<unknown> }).reply;

it("the agent registers its SFU's RTP capabilities: what a client loads its Device with before connecting", async () => {
  await waitFor('the registration', () => router.registrations.length > 0, 10_000);
  const { socket } = await joinWith(agent.url, { token: token({ room: 'room-caps', sub: 'caps' }).token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  socket.close();
  expect(router.registrations.at(-1)!.rtpCapabilities).toEqual(rtpCapabilities);
  expect((rtpCapabilities as { codecs: unknown[] }).codecs.length).toBeGreaterThan(0);
});

it('a handshake carries the join and both transports: answered after the welcome, in order, the recv transport with the room\'s consumers', async () => {
  const roomId = 'room-handshake';
  // A publisher already in the room, joined the usual way.
  const publisher = await joinWith(agent.url, { token: token({ room: roomId, sub: 'publisher' }).token });
  sockets.push(publisher.socket);
  const rtpCapabilities = publisher.welcome.rtpCapabilities as Record<string, unknown>;
  await ok(publisher.socket, 'join', { rtpCapabilities });
  const send = await ok(publisher.socket, 'createWebRtcTransport', { direction: 'send' });
  const { producerId } = await ok(publisher.socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(1111) });

  const requests = [
    { name: 'join', payload: { rtpCapabilities, displayName: 'Joiner' } },
    { name: 'createWebRtcTransport', payload: { direction: 'recv', consumeAll: true } },
    { name: 'createWebRtcTransport', payload: { direction: 'send' } },
  ];
  const { events } = await handshake({ token: token({ room: roomId, sub: 'joiner' }).token, requests }, 3);
  const order = events.filter((e) => e.event === 'welcome' || e.event === 'handshakeAnswer').map((e) => (e.event === 'welcome' ? 'welcome' : `answer ${(e.msg as { index: number }).index}`));
  expect(order).toEqual(['welcome', 'answer 0', 'answer 1', 'answer 2']);
  const join = answerOf(events, 0) as Ack<ResponseData['join']>;
  const recv = answerOf(events, 1) as Ack<ResponseData['createWebRtcTransport']>;
  const sendAnswer = answerOf(events, 2) as Ack<ResponseData['createWebRtcTransport']>;
  expect(join.ok && join.data.producers.map((p) => p.producerId)).toEqual([producerId]);
  expect(recv.ok && recv.data.consumers?.map((c) => c.producerId)).toEqual([producerId]);
  expect(sendAnswer.ok && sendAnswer.data.transportId).toEqual(expect.any(String));
  const peer = agent.sfu.rooms.getRoom(roomId)!.getPeer('joiner')!;
  expect(peer.consumers.size).toBe(1);
  expect(peer.transports.size).toBe(2);
});

it('a handshake request is checked as an emitted one: a bad payload, an unknown or Object.prototype name, a transport the token does not allow: each refused in its answer, changing nothing', async () => {
  const bad = await handshake(
    {
      token: token({ room: 'room-bad-handshake', sub: 'bad' }).token,
      requests: [{ name: 'join', payload: { rtpCapabilities: 5 } }, { name: '__proto__' }, { name: 'constructor', payload: {} }],
    },
    3,
  );
  const refusals = [0, 1, 2].map((i) => answerOf(bad.events, i));
  expect(refusals.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['INVALID_PAYLOAD', 'UNKNOWN_REQUEST', 'UNKNOWN_REQUEST']);
  expect(!refusals[0]!.ok && refusals[0]!.error.field).toBe('rtpCapabilities');
  expect(agent.sfu.rooms.getRoom('room-bad-handshake')?.getPeer('bad')).toBeUndefined();
  bad.socket.close();

  // A viewer's handshake: the join and recv transport pass, the send transport is refused.
  const caps = (await agent.sfu.rooms.rtpCapabilities()) as unknown as Record<string, unknown>;
  const viewer = await handshake(
    {
      token: token({ room: 'room-viewer', sub: 'viewer', perm: { publish: false, subscribe: true } }).token,
      requests: [
        { name: 'join', payload: { rtpCapabilities: caps } },
        { name: 'createWebRtcTransport', payload: { direction: 'recv', consumeAll: true } },
        { name: 'createWebRtcTransport', payload: { direction: 'send' } },
      ],
    },
    3,
  );
  expect([0, 1, 2].map((i) => answerOf(viewer.events, i)).map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok', 'FORBIDDEN']);
  viewer.socket.close();
  for (const s of sockets.splice(0)) s.close();
  await waitFor('the sessions to end', () => agent.signaling?.sessionCount === 0, 5_000);
  expect(await sfuCounts(agent)).toMatchObject({ peers: 0, transports: 0, consumers: 0 });
});

it('a handshake is refused at connect when it carries requests with a resume credential, too many requests or a request without a name', async () => {
  const first = await joinWith(agent.url, { token: token({ room: 'room-resume', sub: 'resumer' }).token });
  first.socket.disconnect();
  const tooMany = Array.from({ length: HANDSHAKE_REQUESTS_MAX + 1 }, () => ({ name: 'leave' }));
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['requests with a resume', { resume: first.welcome.resume, requests: [{ name: 'leave' }] }, 'requests'],
    ['too many requests', { token: token().token, requests: tooMany }, 'requests'],
    ['a request without a name', { token: token().token, requests: [{ payload: {} }] }, 'requests.0.name'],
    ['not a list', { token: token().token, requests: { name: 'join' } }, 'requests'],
  ];
  for (const [what, auth, field] of cases) {
    const r = await connect(agent.url, auth);
    expect(r.welcome, what).toBeUndefined();
    expect(r.error?.data?.code, what).toBe('BAD_AUTH');
    expect(r.error?.data?.message, what).toContain(field);
  }
});
