/**
 * Real media through a real worker: synthetic Opus and VP8 RTP over UDP on
 * 127.0.0.1 into a PlainTransport producer, out of a PlainTransport consumer.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { types as ms } from 'mediasoup';

import type { Peer} from '../../sfu/index.ts';
import { RoomRouter, WorkerPool } from '../../sfu/index.ts';
import {
  MediaSender,
  UdpEndpoint,
  answerSenderReports,
  nextEvent,
  opusRtpParameters,
  parseRtp,
  sleep,
  vp8RtpParameters,
  waitUntil,
} from './helpers/rtp.ts';

const AUDIO_SSRC = 11111111;
const VIDEO_SSRC = 22222222;

async function outboundPacketCount(consumer: ms.Consumer): Promise<number> {
  const stats = await consumer.getStats();
  return stats.filter((s) => s.type === 'outbound-rtp').reduce((n, s) => n + s.packetCount, 0);
}

interface Fixture {
  pool: WorkerPool;
  rooms: RoomRouter;
  alice: Peer;
  bob: Peer;
  sender: UdpEndpoint;
  receiver: UdpEndpoint;
  media: MediaSender;
  audio: ms.Producer;
  video: ms.Producer;
  bobTransport: ms.PlainTransport;
  audioConsumer: ms.Consumer;
  videoConsumer: ms.Consumer;
}

describe('media through a real worker', () => {
  let f: Fixture;
  const cleanups: (() => void)[] = [];

  beforeEach(async () => {
    const pool = await WorkerPool.create({ numWorkers: 1 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool, spread: false });
    cleanups.push(() => rooms.close());
    const sender = await UdpEndpoint.open();
    const receiver = await UdpEndpoint.open();
    cleanups.push(() => sender.close(), () => receiver.close());

    const alice = await rooms.join('media-room', 'alice');
    const bob = await rooms.join('media-room', 'bob', { rtpCapabilities: alice.room.rtpCapabilities });

    const aliceTransport = await alice.createPlainTransport({ comedia: true });
    const audio = await alice.produce({ transportId: aliceTransport.id, kind: 'audio', rtpParameters: opusRtpParameters(AUDIO_SSRC) });
    const video = await alice.produce({ transportId: aliceTransport.id, kind: 'video', rtpParameters: vp8RtpParameters(VIDEO_SSRC) });

    const bobTransport = await bob.createPlainTransport();
    await bob.connectTransport(bobTransport.id, { ip: '127.0.0.1', port: receiver.port });
    const audioConsumer = await bob.consume({ transportId: bobTransport.id, producerId: audio.id });
    const videoConsumer = await bob.consume({ transportId: bobTransport.id, producerId: video.id });

    const media = new MediaSender(sender, aliceTransport.tuple.localPort).startOpus(AUDIO_SSRC).startVp8(VIDEO_SSRC);
    cleanups.push(() => media.stop());

    f = { pool, rooms, alice, bob, sender, receiver, media, audio, video, bobTransport, audioConsumer, videoConsumer };
  });

  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  it('listens on ephemeral ports only', () => {
    expect(f.bobTransport.tuple.localPort).toBeGreaterThan(0);
    expect(f.bobTransport.tuple.localAddress).toBe('127.0.0.1');
  });

  it('consumers start paused and forward Opus and VP8 once resumed', async () => {
    expect(f.audioConsumer.paused).toBe(true);
    expect(f.videoConsumer.paused).toBe(true);
    await sleep(300);
    expect(f.media.sent.audio).toBeGreaterThan(5);
    const audioSsrc = f.audioConsumer.rtpParameters.encodings?.[0]?.ssrc ?? -1;
    const videoSsrc = f.videoConsumer.rtpParameters.encodings?.[0]?.ssrc ?? -1;
    // Only bandwidth probation packets (not media) while paused.
    expect(f.receiver.rtpOf(audioSsrc).length + f.receiver.rtpOf(videoSsrc).length).toBe(0);

    await f.bob.resumeConsumer(f.audioConsumer.id);
    await f.bob.resumeConsumer(f.videoConsumer.id);
    await waitUntil(
      () => f.receiver.rtpOf(audioSsrc).length > 10 && f.receiver.rtpOf(videoSsrc).length > 5,
      10_000,
      'Opus and VP8 RTP at the receiver',
    );

    // A video consumer starts forwarding at a keyframe.
    const firstVideo = parseRtp(f.receiver.rtpOf(videoSsrc)[0] as Buffer);
    expect(firstVideo.payload[0]! & 0x10).toBe(0x10); // start of partition
    expect(firstVideo.payload[6]! & 0x01).toBe(0); // VP8 keyframe (inverse keyframe bit 0)

    // getStats packet counts grow.
    const a1 = await outboundPacketCount(f.audioConsumer);
    const v1 = await outboundPacketCount(f.videoConsumer);
    await sleep(400);
    expect(await outboundPacketCount(f.audioConsumer)).toBeGreaterThan(a1);
    expect(await outboundPacketCount(f.videoConsumer)).toBeGreaterThan(v1);
  });

  it('producer pause and close reach the consumers', async () => {
    await f.bob.resumeConsumer(f.audioConsumer.id);
    await f.bob.resumeConsumer(f.videoConsumer.id);
    await waitUntil(async () => (await outboundPacketCount(f.videoConsumer)) > 3, 10_000, 'video flowing');

    const paused = nextEvent(f.bob, 'consumerproducerpause');
    await f.alice.pauseProducer(f.video.id);
    const [pausedConsumer] = await paused;
    expect(pausedConsumer.id).toBe(f.videoConsumer.id);
    expect(f.videoConsumer.producerPaused).toBe(true);
    await sleep(150);
    const frozen = await outboundPacketCount(f.videoConsumer);
    await sleep(400);
    expect(await outboundPacketCount(f.videoConsumer)).toBe(frozen);

    const resumed = nextEvent(f.bob, 'consumerproducerresume');
    await f.alice.resumeProducer(f.video.id);
    await resumed;
    expect(f.videoConsumer.producerPaused).toBe(false);
    await waitUntil(async () => (await outboundPacketCount(f.videoConsumer)) > frozen, 10_000, 'video after resume');

    const closed = nextEvent(f.bob, 'consumerclose');
    const roomSawClose = nextEvent(f.alice.room, 'producerclose');
    f.alice.closeProducer(f.audio.id);
    const [closedConsumer, reason] = await closed;
    expect(closedConsumer.id).toBe(f.audioConsumer.id);
    expect(reason).toBe('producerclose');
    expect(f.audioConsumer.closed).toBe(true);
    expect(f.bob.consumers.has(f.audioConsumer.id)).toBe(false);
    expect(f.alice.producers.has(f.audio.id)).toBe(false);
    expect((await roomSawClose)[1].id).toBe(f.audio.id);
    expect(f.alice.room.producers.has(f.audio.id)).toBe(false);
  });

  it('reports bitrate, loss, RTT and jitter per participant and room', async () => {
    answerSenderReports(f.receiver, f.bobTransport.tuple.localPort, 40);
    await f.bob.resumeConsumer(f.audioConsumer.id);
    await f.bob.resumeConsumer(f.videoConsumer.id);

    await waitUntil(async () => (await f.bob.getStats()).rttMs !== undefined, 15_000, 'RTT from receiver reports');
    await waitUntil(
      async () => {
        const a = await f.alice.getStats();
        return a.recvBitrate > 0 && a.jitterMs !== undefined;
      },
      10_000,
      'bitrate and jitter',
    );

    const alice = await f.alice.getStats();
    expect(alice.recvBitrate).toBeGreaterThan(10_000); // ~120 kbit/s of VP8 + Opus
    expect(alice.jitterMs).toBeGreaterThanOrEqual(0);
    expect(alice.jitterMs).toBeLessThan(1000);
    expect(alice.lossReceived).toBeGreaterThanOrEqual(0);
    expect(alice.lossReceived).toBeLessThanOrEqual(1);
    expect(alice.producers).toBe(2);

    const bob = await f.bob.getStats();
    expect(bob.sendBitrate).toBeGreaterThan(10_000);
    expect(bob.rttMs).toBeGreaterThan(20);
    expect(bob.rttMs).toBeLessThan(500);
    expect(bob.lossSent).toBe(0);
    expect(bob.consumers).toBe(2);

    // Per track: alice's two producers arrive ('in'), bob's two consumers leave the SFU ('out'), with the RTT of his reports.
    const inVideo = alice.tracks.find((t) => t.direction === 'in' && t.kind === 'video');
    expect(alice.tracks.map((t) => `${t.direction} ${t.kind}`).sort()).toEqual(['in audio', 'in video']);
    expect(inVideo).toMatchObject({ producerId: f.video.id, paused: false, spatialLayers: 1, temporalLayers: 1, spatialLayer: 0 });
    expect(inVideo!.bitrateBps).toBeGreaterThan(0);
    expect(inVideo!.jitterMs).toBeGreaterThanOrEqual(0);
    const outVideo = bob.tracks.find((t) => t.direction === 'out' && t.kind === 'video');
    expect(bob.tracks.map((t) => `${t.direction} ${t.kind}`).sort()).toEqual(['out audio', 'out video']);
    expect(outVideo).toMatchObject({ producerId: f.video.id, paused: false });
    expect(bob.tracks.reduce((sum, t) => sum + t.bitrateBps, 0)).toBeGreaterThan(0);
    expect(Math.max(...bob.tracks.map((t) => t.rttMs ?? 0))).toBeGreaterThan(20);
    // No capture declared by this producer: nothing derived.
    expect(inVideo).not.toHaveProperty('width');

    const room = await f.alice.room.getStats();
    expect(room.roomId).toBe('media-room');
    expect(room.participants.map((p) => p.peerId).sort()).toEqual(['alice', 'bob']);
    expect(room.recvBitrate).toBeGreaterThan(0);
    expect(room.sendBitrate).toBeGreaterThan(0);
    expect(room.rttMs).toBeCloseTo(bob.rttMs ?? 0, -2);
  });

  it('reports the dominant speaker', async () => {
    const [speaker] = await nextEvent(f.alice.room, 'activespeaker', 10_000);
    expect(speaker).toEqual({ peerId: 'alice', producerId: f.audio.id });
  });
});
