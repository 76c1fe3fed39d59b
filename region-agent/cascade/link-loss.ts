import { firstTransmissions, type PipedStreamRawStats } from '../../sfu/index.ts';

/**
 * One source of a link's loss, as counted since it began: first transmissions expected and lost (a
 * piped-in stream as mediasoup counts it, or a pipe conditioner's count of the wire). `key` follows
 * it from read to read (a new key counts from its second read).
 */
export interface LossCounters {
  key: string;
  expected: number;
  lost: number;
}

/** Piped-in streams as mediasoup counts them (first transmissions: retransmissions are repairs, not arrivals). */
export function pipedStreamCounters(streams: readonly PipedStreamRawStats[]): LossCounters[] {
  return streams.flatMap((stream) => stream.stats.filter((s) => s.type === 'inbound-rtp').map((s) => ({ key: `${stream.producerId} ${s.ssrc}`, ...firstTransmissions(s) })));
}

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
 * counted rather than averaged: each read adds every source's new first transmissions expected
 * and lost (LossCounters, since the previous read) to its link's totals, and the loss is lost /
 * expected over the last LINK_LOSS_WINDOW_MS. Sources and links come and go without disturbing
 * the others; state is kept per source and link, nothing per read beyond the window.
 */
export class LinkLossMeter {
  /** The last counters of each source, by link then key. */
  readonly #sources = new Map<string, Map<string, { expected: number; lost: number }>>();
  #totals = new Map<string, Totals>();

  /** Reads the sources of each peer node's link now; returns each link's loss fraction over the window (undefined: nothing expected in it). */
  read(nowMs: number, countersByPeer: ReadonlyMap<string, readonly LossCounters[]>): Map<string, number | undefined> {
    const losses = new Map<string, number | undefined>();
    for (const peer of [...this.#totals.keys()]) {
      if (!countersByPeer.has(peer)) {
        this.#totals.delete(peer);
        this.#sources.delete(peer);
      }
    }
    for (const [peer, sources] of countersByPeer) {
      const previous = this.#sources.get(peer) ?? new Map<string, { expected: number; lost: number }>();
      const current = new Map<string, { expected: number; lost: number }>();
      const totals = this.#totals.get(peer) ?? { expected: 0, lost: 0, history: [] };
      for (const { key, expected, lost } of sources) {
        current.set(key, { expected, lost });
        // A source first seen counts from now on.
        const before = previous.get(key);
        if (!before) continue;
        totals.expected += expected - before.expected;
        totals.lost += lost - before.lost;
      }
      this.#sources.set(peer, current);
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
