/**
 * In-node spread: a room whose consumers pass the configured share of a
 * worker's capacity gets a second router on another worker, joined with
 * pipeToRouter(), and media crosses between the workers.
 */
import { afterEach, describe, expect, it } from 'vitest';

import type { types as ms } from 'mediasoup';

import { RoomRouter, WorkerPool, type PipeOptions, type Room } from '../../sfu/index.ts';
import {
  MediaSender,
  UdpEndpoint,
  nextEvent,
  opusRtpParameters,
  parseRtp,
  speechLevel,
  vp8RtpParameters,
  waitUntil,
} from './helpers/rtp.ts';

const AUDIO_SSRC = 31313131;
const VIDEO_SSRC = 42424242;

async function outboundPacketCount(consumer: ms.Consumer): Promise<number> {
  const stats = await consumer.getStats();
  return stats.filter((s) => s.type === 'outbound-rtp').reduce((n, s) => n + s.packetCount, 0);
}

describe('room spread over two workers', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  async function spreadRoom(pipe: PipeOptions): Promise<void> {
    const pool = await WorkerPool.create({ numWorkers: 2 });
    cleanups.push(() => pool.close());
    // Capacity 2 consumers per worker, spread at 50 %: a router with one
    // room consumer is full for newcomers.
    const rooms = new RoomRouter({ pool, spread: { consumersPerWorker: 2, threshold: 0.5 }, pipe });
    cleanups.push(() => rooms.close());
    const sender = await UdpEndpoint.open();
    const receiver = await UdpEndpoint.open();
    const local = await UdpEndpoint.open();
    cleanups.push(() => sender.close(), () => receiver.close(), () => local.close());

    const alice = await rooms.join('big-room', 'alice');
    const room: Room = alice.room;
    const caps = room.rtpCapabilities;
    const aliceTransport = await alice.createPlainTransport({ comedia: true });
    const audio = await alice.produce({ transportId: aliceTransport.id, kind: 'audio', rtpParameters: opusRtpParameters(AUDIO_SSRC) });
    const video = await alice.produce({ transportId: aliceTransport.id, kind: 'video', rtpParameters: vp8RtpParameters(VIDEO_SSRC) });
    const media = new MediaSender(sender, aliceTransport.tuple.localPort).startOpus(AUDIO_SSRC).startVp8(VIDEO_SSRC);
    cleanups.push(() => media.stop());

    // Bob lands on alice's router and consumes: the router reaches the threshold.
    const bob = await rooms.join('big-room', 'bob', { rtpCapabilities: caps });
    expect(bob.router).toBe(alice.router);
    const bobTransport = await bob.createPlainTransport();
    await bob.connectTransport(bobTransport.id, { ip: '127.0.0.1', port: local.port });
    const bobAudio = await bob.consume({ transportId: bobTransport.id, producerId: audio.id });
    await bob.resumeConsumer(bobAudio.id);
    expect(room.routers[0]?.consumers).toBe(1);

    // Carol gets a new router on the other worker.
    const added = nextEvent(room, 'routeradded');
    const carol = await rooms.join('big-room', 'carol', { rtpCapabilities: caps });
    const [{ router: newRouter, worker: newWorker }] = await added;
    expect(carol.router).toBe(newRouter);
    expect(carol.worker).toBe(newWorker);
    expect(carol.worker).not.toBe(alice.worker);
    expect(room.routers.map((s) => s.worker.pid).sort()).toEqual(pool.workers.map((w) => w.pid).sort());
    expect(pool.workers.every((w) => w.roomIds.includes('big-room'))).toBe(true);

    const carolTransport = await carol.createPlainTransport();
    await carol.connectTransport(carolTransport.id, { ip: '127.0.0.1', port: receiver.port });
    const carolAudio = await carol.consume({ transportId: carolTransport.id, producerId: audio.id });
    const carolVideo = await carol.consume({ transportId: carolTransport.id, producerId: video.id });
    await carol.resumeConsumer(carolAudio.id);
    await carol.resumeConsumer(carolVideo.id);

    // Pipe transports now exist on both workers.
    expect(alice.worker.counts.consumers).toBeGreaterThanOrEqual(3); // bob + 2 pipe consumers
    expect(carol.worker.counts.producers).toBe(2); // 2 pipe producers

    const audioSsrc = carolAudio.rtpParameters.encodings?.[0]?.ssrc ?? -1;
    const videoSsrc = carolVideo.rtpParameters.encodings?.[0]?.ssrc ?? -1;
    await waitUntil(
      () => receiver.rtpOf(audioSsrc).length > 10 && receiver.rtpOf(videoSsrc).length > 5,
      10_000,
      'media across workers',
    );
    const firstVideo = parseRtp(receiver.rtpOf(videoSsrc)[0] as Buffer);
    expect(firstVideo.payload[6]! & 0x01).toBe(0); // starts at a keyframe
    const before = await outboundPacketCount(carolVideo);
    await waitUntil(async () => (await outboundPacketCount(carolVideo)) > before + 3, 5_000, 'growing counts');

    // Pause crosses the pipe too.
    const paused = nextEvent(carol, 'consumerproducerpause');
    await alice.pauseProducer(video.id);
    await paused;
    expect(carolVideo.producerPaused).toBe(true);

    // Closing the producer closes the piped consumer on the other worker.
    const closed = nextEvent(carol, 'consumerclose');
    alice.closeProducer(audio.id);
    const [closedConsumer, reason] = await closed;
    expect(closedConsumer.id).toBe(carolAudio.id);
    expect(reason).toBe('producerclose');

    // When carol leaves, the second router (and its pipes) go away.
    carol.close();
    expect(room.routers).toHaveLength(1);
    await waitUntil(() => carol.worker.counts.routers === 0, 5_000, 'secondary router closed');
    expect(newRouter.closed).toBe(true);
    await waitUntil(() => alice.worker.counts.transports === 2, 5_000, 'pipe transport closed'); // alice + bob
  }

  it('carries media between the workers through pipe transports', async () => {
    await spreadRoom({});
  });

  it('carries media through SRTP-protected pipe transports (libsrtp shim)', async () => {
    await spreadRoom({ enableSrtp: true });
  });

  it('pipes audio from another router into the active speaker observer', async () => {
    const pool = await WorkerPool.create({ numWorkers: 2 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool, spread: { consumersPerWorker: 2, threshold: 0.5 } });
    cleanups.push(() => rooms.close());
    const quietSender = await UdpEndpoint.open();
    const loudSender = await UdpEndpoint.open();
    cleanups.push(() => quietSender.close(), () => loudSender.close());

    const host = await rooms.join('talk', 'host');
    const room = host.room;
    const speakers: string[] = [];
    room.on('activespeaker', ({ peerId }) => speakers.push(peerId));
    const caps = room.rtpCapabilities;
    const listener = await rooms.join('talk', 'listener', { rtpCapabilities: caps });
    const hostTransport = await host.createPlainTransport({ comedia: true });
    const hostAudio = await host.produce({ transportId: hostTransport.id, kind: 'audio', rtpParameters: opusRtpParameters(7) });
    const quiet = new MediaSender(quietSender, hostTransport.tuple.localPort).startOpus(7, 127);
    cleanups.push(() => quiet.stop());
    const lt = await listener.createWebRtcTransport();
    await listener.consume({ transportId: lt.id, producerId: hostAudio.id });

    // The primary router is now "full": the speaker lands on the other worker.
    const speaker = await rooms.join('talk', 'speaker', { rtpCapabilities: caps });
    expect(speaker.worker).not.toBe(host.worker);
    const st = await speaker.createPlainTransport({ comedia: true });
    const audio = await speaker.produce({ transportId: st.id, kind: 'audio', rtpParameters: opusRtpParameters(AUDIO_SSRC) });
    const loud = new MediaSender(loudSender, st.tuple.localPort).startOpus(AUDIO_SSRC, speechLevel);
    cleanups.push(() => loud.stop());

    await waitUntil(() => speakers.at(-1) === 'speaker', 15_000, 'the piped speaker to become dominant');
    expect(room.activeSpeakerObserver?.closed).toBe(false);
    expect(room.producers.get(audio.id)?.peerId).toBe('speaker');
  });
});
