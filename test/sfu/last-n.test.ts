/**
 * Last-N through a real worker: three publishers send synthetic Opus (speech-like levels for the
 * one talking) and VP8 over UDP into PlainTransports; a subscriber with lastN = 1 consumes all of
 * it on a PlainTransport. Only the dominant speaker's video leaves the SFU; audio always does.
 */
import { afterEach, describe, expect, it } from 'vitest';

import type { types as ms } from 'mediasoup';

import { lastNPeers, RoomRouter, WorkerPool, type Peer } from '../../sfu/index.ts';
import { MediaSender, UdpEndpoint, opusRtpParameters, sleep, speechLevel, vp8RtpParameters, waitUntil } from './helpers/rtp.ts';

const ssrcOf = (c: ms.Consumer): number => c.rtpParameters.encodings?.[0]?.ssrc ?? -1;

describe('lastNPeers', () => {
  it('ranks by speaker order, unknown candidates last, 0 = all', () => {
    expect([...lastNPeers(['c', 'a', 'b'], ['a', 'b'], 1)]).toEqual(['a']);
    expect([...lastNPeers(['c', 'a'], ['x', 'a', 'c'], 2)]).toEqual(['c', 'a']);
    expect([...lastNPeers(['a'], ['x', 'y'], 1)]).toEqual(['x']);
    expect([...lastNPeers(['a', 'b'], ['b', 'a'], 0)].sort()).toEqual(['a', 'b']);
  });
});

describe('last-N by active speaker (real worker, real UDP)', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });

  it('forwards only the dominant speaker video with lastN = 1, switches with the speaker, refills on leave', async () => {
    const pool = await WorkerPool.create({ numWorkers: 1 });
    cleanups.push(() => pool.close());
    const rooms = new RoomRouter({ pool, spread: false, activeSpeakerIntervalMs: 200 });
    cleanups.push(() => rooms.close());

    let talking: string | null = null;
    const publishers: Record<string, { peer: Peer; video: ms.Producer; audio: ms.Producer }> = {};
    // Join order c, b, a: before anyone speaks, c ranks first.
    for (const [i, name] of ['c', 'b', 'a'].entries()) {
      const peer = await rooms.join('lastn', name);
      const t = await peer.createPlainTransport({ comedia: true });
      const audio = await peer.produce({ transportId: t.id, kind: 'audio', rtpParameters: opusRtpParameters(1000 + i) });
      const video = await peer.produce({ transportId: t.id, kind: 'video', rtpParameters: vp8RtpParameters(2000 + i) });
      const endpoint = await UdpEndpoint.open();
      const media = new MediaSender(endpoint, t.tuple.localPort)
        .startOpus(1000 + i, (frame) => (talking === name ? speechLevel(frame) : 127))
        .startVp8(2000 + i);
      cleanups.push(() => endpoint.close(), () => media.stop());
      publishers[name] = { peer, video, audio };
    }
    const room = publishers.a!.peer.room;

    const sub = await rooms.join('lastn', 'sub', { rtpCapabilities: room.rtpCapabilities, lastN: 1 });
    expect(sub.lastN).toBe(1);
    const receiver = await UdpEndpoint.open();
    cleanups.push(() => receiver.close());
    const subTransport = await sub.createPlainTransport();
    await sub.connectTransport(subTransport.id, { ip: '127.0.0.1', port: receiver.port });
    const video: Record<string, ms.Consumer> = {};
    const audio: Record<string, ms.Consumer> = {};
    for (const [name, p] of Object.entries(publishers)) {
      video[name] = await sub.consume({ transportId: subTransport.id, producerId: p.video.id });
      audio[name] = await sub.consume({ transportId: subTransport.id, producerId: p.audio.id });
      await sub.resumeConsumer(video[name].id);
      await sub.resumeConsumer(audio[name].id);
    }

    const resumedVideo = () => Object.keys(video).filter((n) => !video[n]!.paused).sort();
    const rtpCount = (c: ms.Consumer) => receiver.rtpOf(ssrcOf(c)).length;
    /** Video RTP reaches the receiver for `on` only; audio for everybody. */
    const expectFlowing = async (on: string) => {
      await waitUntil(() => rtpCount(video[on]!) > 0, 10_000, `${on} video RTP`);
      await sleep(150); // in-flight packets of a just-paused consumer
      const before = Object.fromEntries(Object.entries(video).map(([n, c]) => [n, rtpCount(c)]));
      const audioBefore = Object.fromEntries(Object.entries(audio).map(([n, c]) => [n, rtpCount(c)]));
      await sleep(500);
      for (const n of Object.keys(video)) {
        if (n === on) expect(rtpCount(video[n]!), `${n} video grows`).toBeGreaterThan(before[n]!);
        else expect(rtpCount(video[n]!), `${n} video stopped`).toBe(before[n]);
        expect(rtpCount(audio[n]!), `${n} audio grows`).toBeGreaterThan(audioBefore[n]!);
        expect(audio[n]!.paused).toBe(false);
      }
    };

    // Nobody has spoken: join order.
    expect(resumedVideo()).toEqual(['c']);

    talking = 'a';
    await waitUntil(() => room.speakerOrder[0] === 'a' && resumedVideo().join() === 'a', 15_000, 'a dominant, only a video resumed');
    expect(video.b!.paused && video.c!.paused).toBe(true);
    await expectFlowing('a');

    talking = 'b';
    await waitUntil(() => room.speakerOrder[0] === 'b' && resumedVideo().join() === 'b', 15_000, 'b dominant, only b video resumed');
    expect(room.speakerOrder.slice(0, 2)).toEqual(['b', 'a']);
    await expectFlowing('b');

    // b leaves: its consumer closes and the slot goes to the next in order (a, who talks again;
    // the observer may briefly pick c once b's audio is gone, which is last-N working too).
    talking = 'a';
    rooms.leave('lastn', 'b');
    delete video.b;
    delete audio.b;
    await waitUntil(() => resumedVideo().length === 1 && resumedVideo()[0] === room.speakerOrder.find((id) => id === 'a' || id === 'c'), 5_000, 'the next speaker resumed after b left');
    await waitUntil(() => resumedVideo().join() === 'a', 15_000, 'a video resumed after b left');
    await expectFlowing('a');

    // Lifting the limit resumes every video consumer the client resumed.
    await sub.setLastN(0);
    expect(resumedVideo()).toEqual(['a', 'c']);
  }, 60_000);
});
