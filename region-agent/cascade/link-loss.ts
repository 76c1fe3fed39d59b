import { firstTransmissions, type PipedStreamRawStats } from '../../sfu/index.ts';

/**
 * How long the loss of a link is counted over: mediasoup's longest receiver-report interval (5 s,
 * audio's), so each stream's losses of the window are in it whatever its kind. A constant of
 * mediasoup, not a tunable; how long a loss must last to raise an alert is the router's
 * GEO_SFU_ALERT_WINDOW_MS.
 */
export const LINK_LOSS_WINDOW_MS = 5_000;

interface Totals {
  /** First transmissions expected and lost on the link since it was first read (every stream's increments summed). */
  expected: number;
  lost: number;
  /** The totals at each read of the last window (and the one just before it). */
  history: Array<{ atMs: number; expected: number; lost: number }>;
}

/**
 * The packet loss of each cascade link (what this node receives from one other node, all rooms),
 * counted rather than averaged: each read adds every piped-in stream's new first transmissions
 * expected and lost (firstTransmissions, since the previous read) to its link's totals, and the
 * loss is lost / expected over the last LINK_LOSS_WINDOW_MS. Streams and links come and go
 * without disturbing the others; state is kept per stream and link, nothing per read beyond the
 * window.
 */
export class LinkLossMeter {
  /** The last counters of each stream, by link then `producerId ssrc`. */
  #streams = new Map<string, Map<string, { expected: number; lost: number }>>();
  #totals = new Map<string, Totals>();

  /** Reads the streams arriving from each peer node now; returns each link's loss fraction over the window (undefined: nothing expected in it). */
  read(nowMs: number, streamsByPeer: ReadonlyMap<string, readonly PipedStreamRawStats[]>): Map<string, number | undefined> {
    const losses = new Map<string, number | undefined>();
    for (const peer of [...this.#totals.keys()]) {
      if (!streamsByPeer.has(peer)) {
        this.#totals.delete(peer);
        this.#streams.delete(peer);
      }
    }
    for (const [peer, streams] of streamsByPeer) {
      const previous = this.#streams.get(peer) ?? new Map<string, { expected: number; lost: number }>();
      const current = new Map<string, { expected: number; lost: number }>();
      const totals = this.#totals.get(peer) ?? { expected: 0, lost: 0, history: [] };
      for (const stream of streams) {
        for (const s of stream.stats) {
          if (s.type !== 'inbound-rtp') continue;
          const key = `${stream.producerId} ${s.ssrc}`;
          const counters = firstTransmissions(s);
          current.set(key, counters);
          // A stream first seen counts from now on.
          const before = previous.get(key);
          if (!before) continue;
          totals.expected += counters.expected - before.expected;
          totals.lost += counters.lost - before.lost;
        }
      }
      this.#streams.set(peer, current);
      totals.history.push({ atMs: nowMs, expected: totals.expected, lost: totals.lost });
      while (totals.history.length > 2 && totals.history[1]!.atMs <= nowMs - LINK_LOSS_WINDOW_MS) totals.history.shift();
      this.#totals.set(peer, totals);
      const base = totals.history[0]!;
      const expected = totals.expected - base.expected;
      // mediasoup's packetsLost may go down (a late packet arrived after a report): never below 0.
      losses.set(peer, expected > 0 ? Math.round(Math.min(1, Math.max(0, (totals.lost - base.lost) / expected)) * 10_000) / 10_000 : undefined);
    }
    return losses;
  }
}
