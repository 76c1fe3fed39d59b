import { describe, expect, it } from 'vitest';

import type { types as ms } from 'mediasoup';

import { aggregateRoomStats, computeParticipantStats, computeTrackStats, jitterToMs, type TrackRawStats } from '../../sfu/index.ts';

const transport = (over: Partial<ms.BaseTransportStats> = {}): ms.BaseTransportStats =>
  ({ transportId: 't', timestamp: 0, sendBitrate: 1000, recvBitrate: 2000, ...over }) as ms.BaseTransportStats;

const stream = (type: string, over: Record<string, unknown>): ms.ProducerStat =>
  ({ type, fractionLost: 0, packetsLost: 0, ...over }) as unknown as ms.ProducerStat;

const track = (direction: 'in' | 'out', clockRate: number, stats: ms.ProducerStat[], over: Partial<TrackRawStats> = {}): TrackRawStats => ({
  direction,
  kind: clockRate === 90000 ? 'video' : 'audio',
  producerId: 'prod',
  paused: false,
  clockRate,
  encodings: [{ ssrc: 1 }],
  stats,
  ...over,
});
const producer = (clockRate: number, stats: ms.ProducerStat[]) => track('in', clockRate, stats);
const consumer = (stats: ms.ProducerStat[]) => track('out', 90000, stats);

describe('quality stats', () => {
  it('converts jitter from RTP clock units to ms', () => {
    expect(jitterToMs(480, 48000)).toBe(10);
    expect(jitterToMs(900, 90000)).toBe(10);
    expect(jitterToMs(5, 0)).toBe(0);
  });

  it('prefers transport-cc loss and falls back to RTCP fraction lost', () => {
    const withTcc = computeParticipantStats({
      peerId: 'p',
      transports: [transport({ rtpPacketLossReceived: 0.1, rtpPacketLossSent: 0.2 })],
      tracks: [producer(48000, [stream('inbound-rtp', { jitter: 96, fractionLost: 128 })]), consumer([stream('outbound-rtp', { roundTripTime: 30, fractionLost: 64 })])],
    });
    expect(withTcc).toMatchObject({ sendBitrate: 1000, recvBitrate: 2000, lossReceived: 0.1, lossSent: 0.2, rttMs: 30, jitterMs: 2 });

    const withoutTcc = computeParticipantStats({
      peerId: 'p',
      transports: [transport(), transport()],
      tracks: [
        producer(48000, [stream('inbound-rtp', { jitter: 96, fractionLost: 128 })]),
        producer(90000, [stream('inbound-rtp', { jitter: 900, fractionLost: 0 })]),
        consumer([stream('outbound-rtp', { roundTripTime: 30, fractionLost: 64 }), stream('inbound-rtp', { jitter: 1e6 })]),
        consumer([stream('outbound-rtp', { roundTripTime: 50, fractionLost: 0 })]),
        consumer([stream('outbound-rtp', { roundTripTime: 0 })]), // no RR yet: ignored for RTT
      ],
    });
    expect(withoutTcc).toMatchObject({ sendBitrate: 2000, recvBitrate: 4000, lossReceived: 0.25, rttMs: 40, jitterMs: 10 });
    expect(withoutTcc.lossSent).toBeCloseTo(0.25 / 3);
    expect(withoutTcc).toMatchObject({ transports: 2, producers: 2, consumers: 3 });
  });

  it('leaves metrics out when nothing reports them and aggregates rooms', () => {
    const idle = computeParticipantStats({ peerId: 'idle', transports: [], tracks: [] });
    expect(idle).not.toHaveProperty('rttMs');
    expect(idle).not.toHaveProperty('lossReceived');
    const a = { ...idle, peerId: 'a', sendBitrate: 10, recvBitrate: 1, rttMs: 20, jitterMs: 5, lossSent: 0.1 };
    const b = { ...idle, peerId: 'b', sendBitrate: 5, recvBitrate: 2, rttMs: 40, jitterMs: 9 };
    const room = aggregateRoomStats('r', [a, b, idle]);
    expect(room).toMatchObject({ roomId: 'r', sendBitrate: 15, recvBitrate: 3, rttMs: 30, jitterMs: 9, lossSent: 0.1 });
    expect(room).not.toHaveProperty('lossReceived');
  });

  it('gives each track its bitrate, loss, RTT, jitter and score (measured) and its resolution and frame rate (derived)', () => {
    // A simulcast video producer: three encodings, L1T3 each; the top one is not arriving.
    const encodings = [
      { rid: 'r0', scaleResolutionDownBy: 4, scalabilityMode: 'L1T3' },
      { rid: 'r1', scaleResolutionDownBy: 2, scalabilityMode: 'L1T3' },
      { rid: 'r2', scaleResolutionDownBy: 1, scalabilityMode: 'L1T3' },
    ] as unknown as ms.RtpEncodingParameters[];
    const capture = { width: 1280, height: 720, frameRate: 30 };
    const published = computeTrackStats(
      track('in', 90000, [
        stream('inbound-rtp', { rid: 'r0', bitrate: 150_000, fractionLost: 0, jitter: 900, score: 10 }),
        stream('inbound-rtp', { rid: 'r1', bitrate: 450_000, fractionLost: 64, jitter: 1800, score: 7 }),
        stream('inbound-rtp', { rid: 'r2', bitrate: 0, fractionLost: 0, jitter: 0, score: 0 }),
        stream('outbound-rtp', { bitrate: 1e9 }), // not this direction: ignored
      ], { encodings, capture }),
    );
    expect(published).toMatchObject({ direction: 'in', kind: 'video', bitrateBps: 600_000, loss: 0.25, jitterMs: 20, score: 10, spatialLayers: 3, temporalLayers: 3, spatialLayer: 1, temporalLayer: 2, width: 640, height: 360, frameRate: 30 });

    // Its consumer on the lowest spatial layer, middle temporal layer: a quarter of the size, half the rate.
    const received = computeTrackStats(
      track('out', 90000, [stream('outbound-rtp', { bitrate: 90_000, fractionLost: 26, roundTripTime: 42, score: 9 }), stream('inbound-rtp', { jitter: 1e6 })], {
        encodings,
        capture,
        currentLayers: { spatialLayer: 0, temporalLayer: 1 },
      }),
    );
    expect(received).toMatchObject({ direction: 'out', bitrateBps: 90_000, rttMs: 42, score: 9, spatialLayer: 0, temporalLayer: 1, width: 320, height: 180, frameRate: 15 });
    expect(received.loss).toBeCloseTo(26 / 256);
    expect(received).not.toHaveProperty('jitterMs');

    // SVC (one encoding, L3T3) without scaleResolutionDownBy: 2 per spatial layer below the top.
    const svc = computeTrackStats(track('out', 90000, [stream('outbound-rtp', { bitrate: 1 })], { encodings: [{ ssrc: 5, scalabilityMode: 'L3T3' }], capture, currentLayers: { spatialLayer: 1, temporalLayer: 2 } }));
    expect(svc).toMatchObject({ spatialLayers: 3, temporalLayers: 3, width: 640, height: 360, frameRate: 30 });

    // Without a declared capture, nothing is derived; nothing arriving: no layer either.
    const plain = computeTrackStats(track('in', 90000, [stream('inbound-rtp', { bitrate: 0, jitter: 0, score: 0 })]));
    expect(plain).toMatchObject({ bitrateBps: 0, spatialLayers: 1, temporalLayers: 1 });
    expect(plain).not.toHaveProperty('width');
    expect(plain).not.toHaveProperty('spatialLayer');

    // The participant aggregate counts the tracks by direction and keeps each one.
    const participant = computeParticipantStats({ peerId: 'p', transports: [], tracks: [track('in', 90000, [], { encodings, capture }), track('out', 90000, [])] });
    expect(participant).toMatchObject({ producers: 1, consumers: 1 });
    expect(participant.tracks.map((t) => t.direction)).toEqual(['in', 'out']);
  });
});
