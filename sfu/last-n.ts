/**
 * Last-N: which peers' video a subscriber keeps receiving.
 *
 * The room keeps a speaker order (Room.speakerOrder): peers that were the dominant speaker, most
 * recent first, then peers that never spoke, in join order. A peer with `lastN > 0` receives video
 * only from the first `lastN` peers of that order among the peers whose video it has asked to
 * receive (its resumed video consumers); its other video consumers are paused on the SFU side
 * (mediasoup `consumer.pause()`: no media leaves the SFU for them). Audio is never limited.
 */
import { SfuError } from './errors.ts';

/** Validates a last-N value: a non-negative integer, 0 meaning no limit. */
export function assertLastN(lastN: number): void {
  if (!Number.isSafeInteger(lastN) || lastN < 0) {
    throw new SfuError('INVALID_ARGUMENT', `lastN must be a non-negative integer (0 = no limit), got ${lastN}`);
  }
}

/**
 * The peers (of `candidates`) whose video is forwarded: the first `lastN` in `order`
 * (candidates missing from `order` come last, in their own order). `lastN` 0 = all candidates.
 */
export function lastNPeers(order: readonly string[], candidates: Iterable<string>, lastN: number): Set<string> {
  const wanted = new Set(candidates);
  if (lastN <= 0) return wanted;
  const ranked = [...order.filter((id) => wanted.has(id)), ...[...wanted].filter((id) => !order.includes(id))];
  return new Set(ranked.slice(0, lastN));
}
