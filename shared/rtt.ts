import type { RttStats } from './schemas/common.ts';

/**
 * Smoothed RTT from a stream of probe outcomes: EWMA of the RTT, EWMA of |sample − previous
 * sample| as jitter (RFC 3550 style), loss over the last `lossWindow` probes, and the median of the
 * samples in that window. Used by the router's prober and by agents probing each other.
 */
export class RttEstimator {
  #ewma: number | null = null;
  #jitter = 0;
  #previous: number | null = null;
  #samples = 0;
  /** Recent outcomes: an RTT in ms, or null for a lost probe. */
  readonly #window: Array<number | null> = [];

  constructor(
    private readonly alpha: number,
    private readonly lossWindow: number,
  ) {}

  addSample(rttMs: number): void {
    this.#ewma = this.#ewma === null ? rttMs : this.#ewma + this.alpha * (rttMs - this.#ewma);
    if (this.#previous !== null) this.#jitter += this.alpha * (Math.abs(rttMs - this.#previous) - this.#jitter);
    this.#previous = rttMs;
    this.#samples++;
    this.#push(rttMs);
  }

  addLoss(): void {
    this.#push(null);
  }

  #push(outcome: number | null): void {
    this.#window.push(outcome);
    if (this.#window.length > this.lossWindow) this.#window.shift();
  }

  stats(): RttStats {
    const answered = this.#window.filter((x): x is number => x !== null).sort((a, b) => a - b);
    const lost = this.#window.length - answered.length;
    return {
      rttMs: this.#ewma === null ? null : round2(this.#ewma),
      medianMs: answered.length === 0 ? null : round2(median(answered)),
      jitterMs: round2(this.#jitter),
      loss: this.#window.length === 0 ? 0 : round2(lost / this.#window.length),
      samples: this.#samples,
    };
  }
}

export function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
