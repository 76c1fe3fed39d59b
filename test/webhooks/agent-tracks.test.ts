import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, joinWith, ok, signalingConfig, startSignalingRouter, token, waitFor } from '../signaling/helpers.ts';

/**
 * The agent's side of application webhooks: a real agent (real SFU) reports each track published
 * and unpublished, with its kind, source and simulcast layers, over the signed control plane, in
 * order with the participant's joined and left; a left says why (left, or timed out).
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 300 }));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});

const OPUS = { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 5001 }] };
const VP8_SIMULCAST = {
  codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }],
  encodings: [
    { ssrc: 6001, maxBitrate: 150_000 },
    { ssrc: 6002, maxBitrate: 500_000 },
    { ssrc: 6003, maxBitrate: 1_500_000 },
  ],
};

async function joined(room: string, sub: string) {
  const { token: t, claims } = token({ room, sub });
  const { socket } = await joinWith(agent.url, { token: t });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  const send = await ok(socket, 'createWebRtcTransport', { direction: 'send' });
  return { socket, send: send.transportId, allocationId: claims.aid };
}

it('reports tracks published and unpublished (kind, source, layers) between joined and left', async () => {
  const alice = await joined('tracks', 'alice');
  const mic = await ok(alice.socket, 'produce', { transportId: alice.send, kind: 'audio', rtpParameters: OPUS, appData: { source: 'microphone' } });
  const cam = await ok(alice.socket, 'produce', { transportId: alice.send, kind: 'video', rtpParameters: VP8_SIMULCAST, appData: { source: 'camera' } });
  await ok(alice.socket, 'closeProducer', { producerId: cam.producerId });
  await ok(alice.socket, 'leave', {});
  await waitFor('the left report', () => router.participantEvents.some((e) => e.participantId === 'alice' && e.event === 'left'));

  const tracks = router.trackEvents.filter((e) => e.participantId === 'alice');
  expect(tracks.map((e) => [e.event, e.track.trackId, e.track.kind, e.track.source])).toEqual([
    ['published', mic.producerId, 'audio', 'microphone'],
    ['published', cam.producerId, 'video', 'camera'],
    ['unpublished', cam.producerId, 'video', 'camera'],
    // Its remaining track ends with the session, reported before the left.
    ['unpublished', mic.producerId, 'audio', 'microphone'],
  ]);
  expect(tracks[1]!.track.layers).toEqual([{ maxBitrate: 150_000 }, { maxBitrate: 500_000 }, { maxBitrate: 1_500_000 }]);
  for (const e of tracks) expect(e).toMatchObject({ nodeId: agent.config.agentId, roomId: 'tracks', allocationId: alice.allocationId });
  expect(router.participantEvents.filter((e) => e.participantId === 'alice').map((e) => [e.event, e.reason])).toEqual([
    ['joined', undefined],
    ['left', 'left'],
  ]);
});

it('a source the client does not name is unknown; a dropped connection not resumed in time leaves as timed out', async () => {
  const bob = await joined('tracks', 'bob');
  await ok(bob.socket, 'produce', { transportId: bob.send, kind: 'audio', rtpParameters: { ...OPUS, encodings: [{ ssrc: 7001 }] }, appData: { source: '__proto__' } });
  bob.socket.disconnect();
  await waitFor('the left report', () => router.participantEvents.some((e) => e.participantId === 'bob' && e.event === 'left'), 5_000);
  expect(router.trackEvents.filter((e) => e.participantId === 'bob').map((e) => [e.event, e.track.source])).toEqual([
    ['published', 'unknown'],
    ['unpublished', 'unknown'],
  ]);
  expect(router.participantEvents.find((e) => e.participantId === 'bob' && e.event === 'left')?.reason).toBe('timed_out');
});
