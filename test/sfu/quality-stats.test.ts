import { describe, expect, it } from 'vitest';

import type { types as ms } from 'mediasoup';

import { aggregateRoomStats, computeParticipantStats, jitterToMs } from '../../sfu/index.ts';

const transport = (over: Partial<ms.BaseTransportStats> = {}): ms.BaseTransportStats =>
  ({ transportId: 't', timestamp: 0, sendBitrate: 1000, recvBitrate: 2000, ...over }) as ms.BaseTransportStats;

const stream = (type: string, over: Record<string, unknown>): ms.ProducerStat =>
  ({ type, fractionLost: 0, packetsLost: 0, ...over }) as unknown as ms.ProducerStat;

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
      producers: [{ clockRate: 48000, stats: [stream('inbound-rtp', { jitter: 96, fractionLost: 128 })] }],
      consumers: [[stream('outbound-rtp', { roundTripTime: 30, fractionLost: 64 })]],
    });
    expect(withTcc).toMatchObject({ sendBitrate: 1000, recvBitrate: 2000, lossReceived: 0.1, lossSent: 0.2, rttMs: 30, jitterMs: 2 });

    const withoutTcc = computeParticipantStats({
      peerId: 'p',
      transports: [transport(), transport()],
      producers: [
        { clockRate: 48000, stats: [stream('inbound-rtp', { jitter: 96, fractionLost: 128 })] },
        { clockRate: 90000, stats: [stream('inbound-rtp', { jitter: 900, fractionLost: 0 })] },
      ],
      consumers: [
        [stream('outbound-rtp', { roundTripTime: 30, fractionLost: 64 }), stream('inbound-rtp', { jitter: 1e6 })],
        [stream('outbound-rtp', { roundTripTime: 50, fractionLost: 0 })],
        [stream('outbound-rtp', { roundTripTime: 0 })], // no RR yet: ignored for RTT
      ],
    });
    expect(withoutTcc).toMatchObject({ sendBitrate: 2000, recvBitrate: 4000, lossReceived: 0.25, rttMs: 40, jitterMs: 10 });
    expect(withoutTcc.lossSent).toBeCloseTo(0.25 / 3);
    expect(withoutTcc).toMatchObject({ transports: 2, producers: 2, consumers: 3 });
  });

  it('leaves metrics out when nothing reports them and aggregates rooms', () => {
    const idle = computeParticipantStats({ peerId: 'idle', transports: [], producers: [], consumers: [] });
    expect(idle).not.toHaveProperty('rttMs');
    expect(idle).not.toHaveProperty('lossReceived');
    const a = { ...idle, peerId: 'a', sendBitrate: 10, recvBitrate: 1, rttMs: 20, jitterMs: 5, lossSent: 0.1 };
    const b = { ...idle, peerId: 'b', sendBitrate: 5, recvBitrate: 2, rttMs: 40, jitterMs: 9 };
    const room = aggregateRoomStats('r', [a, b, idle]);
    expect(room).toMatchObject({ roomId: 'r', sendBitrate: 15, recvBitrate: 3, rttMs: 30, jitterMs: 9, lossSent: 0.1 });
    expect(room).not.toHaveProperty('lossReceived');
  });
});
