/**
 * Signaling connection attempts per client IP in fixed one-minute windows: the counts are dropped
 * wholesale when the window rolls over, so memory is bounded by the addresses seen in one minute.
 * An address may get up to twice the limit across a window boundary; the limit is against floods,
 * not an exact quota.
 */
export class ConnectionLimiter {
  readonly #counts = new Map<string, number>();
  #windowStartMs = Number.NEGATIVE_INFINITY;

  /** `perMinute` 0: no limit. */
  constructor(
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Counts an attempt from `ip`; false when it is over the limit (the attempt is refused). */
  admit(ip: string): boolean {
    if (this.perMinute === 0) return true;
    const nowMs = this.now();
    if (nowMs - this.#windowStartMs >= 60_000) {
      this.#counts.clear();
      this.#windowStartMs = nowMs;
    }
    const count = (this.#counts.get(ip) ?? 0) + 1;
    this.#counts.set(ip, count);
    return count <= this.perMinute;
  }
}
