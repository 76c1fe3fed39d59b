import { describe, expect, it } from 'vitest';

import { LINK_LOSS_WINDOW_MS, LinkLossMeter, pipedStreamCounters } from '../../region-agent/cascade/link-loss.ts';
import type { PipedStreamRawStats, types as ms } from '../../sfu/index.ts';

/** An imported producer's inbound-rtp stats with these cumulative counters (RTX: video on the pipe; none: audio). */
const stream = (producerId: string, c: { packetCount: number; packetsLost: number; packetsRepaired?: number; rtx?: boolean; ssrc?: number }): PipedStreamRawStats => ({
  producerId,
  kind: c.rtx ? 'video' : 'audio',
  clockRate: 90_000,
  stats: [
    {
      type: 'inbound-rtp',
      timestamp: 0,
      ssrc: c.ssrc ?? 1,
      ...(c.rtx ? { rtxSsrc: 2 } : {}),
      kind: 'video',
      mimeType: 'video/VP8',
      packetCount: c.packetCount,
      packetsLost: c.packetsLost,
      packetsRepaired: c.packetsRepaired ?? 0,
      packetsDiscarded: 0,
      packetsRetransmitted: c.packetsRepaired ?? 0,
      byteCount: c.packetCount * 1_000,
      bitrate: 100_000,
      fractionLost: 0,
      jitter: 0,
      score: 10,
      nackCount: 0,
      nackPacketCount: 0,
      pliCount: 0,
      firCount: 0,
    } as ms.ProducerStat,
  ],
});

describe('LinkLossMeter', () => {
  it('counts first transmissions lost over the window, summed over the streams: RTX repairs stay losses, repairs without RTX are losses packetsLost no longer shows', () => {
    const meter = new LinkLossMeter();
    // First read: a baseline only (nothing counted yet).
    expect(meter.read(0, new Map([['eu-1', pipedStreamCounters([stream('v', { packetCount: 1_000, packetsLost: 0, rtx: true }), stream('a', { packetCount: 1_000, packetsLost: 0 })])]]))).toEqual(new Map([['eu-1', undefined]]));
    // 1 s: video (RTX) got 90 of 100 originals + 8 repairs: 10 lost. Audio (no RTX) got 50 packets, 5 of them repairs filling its gaps: 5 lost of 50.
    const second = meter.read(1_000, new Map([['eu-1', pipedStreamCounters([stream('v', { packetCount: 1_098, packetsLost: 10, packetsRepaired: 8, rtx: true }), stream('a', { packetCount: 1_050, packetsLost: 0, packetsRepaired: 5 })])]]));
    expect(second.get('eu-1')).toBe(Math.round((15 / 150) * 10_000) / 10_000);
  });

  it('forgets what is older than the window, and a new stream counts from its second read', () => {
    const meter = new LinkLossMeter();
    let at = 0;
    let count = 0;
    let lost = 0;
    const read = (extra: PipedStreamRawStats[] = []) => meter.read(at, new Map([['eu-1', pipedStreamCounters([stream('v', { packetCount: count, packetsLost: lost, rtx: true }), ...extra])]])).get('eu-1');
    read();
    // 20 % lost for 3 s, then clean.
    for (let s = 1; s <= 3; s++) {
      at += 1_000;
      count += 80;
      lost += 20;
      read();
    }
    const clean: Array<number | undefined> = [];
    for (let s = 1; s <= 5; s++) {
      at += 1_000;
      count += 100;
      clean.push(read());
    }
    // Over the last 5 s (from the read at or just before 5 s ago): 60 of 400, 60 of 500, 40, 20, 0.
    expect(LINK_LOSS_WINDOW_MS).toBe(5_000);
    expect(clean).toEqual([0.15, 0.12, 0.08, 0.04, 0]);
    // A stream that appears with counters of its own past adds nothing yet.
    at += 1_000;
    count += 100;
    expect(read([stream('late', { packetCount: 5_000, packetsLost: 4_000, ssrc: 9 })])).toBe(0);
  });

  it('a link nothing arrives on has no loss; a link gone is forgotten', () => {
    const meter = new LinkLossMeter();
    meter.read(0, new Map([['eu-1', pipedStreamCounters([stream('v', { packetCount: 10, packetsLost: 0, rtx: true })])]]));
    expect(meter.read(1_000, new Map([['eu-1', pipedStreamCounters([stream('v', { packetCount: 10, packetsLost: 0, rtx: true })])]])).get('eu-1')).toBeUndefined();
    expect(meter.read(2_000, new Map([['ap-1', pipedStreamCounters([])]]))).toEqual(new Map([['ap-1', undefined]]));
    // eu-1 back: a baseline again, not a delta from before it was gone.
    expect(meter.read(3_000, new Map([['eu-1', pipedStreamCounters([stream('v', { packetCount: 500, packetsLost: 400, rtx: true })])]])).get('eu-1')).toBeUndefined();
  });
});
