/**
 * The counters behind the limits every server enforces (GEO_SFU_FAILED_AUTH_PER_MINUTE,
 * GEO_SFU_RATE_LIMIT_PER_MINUTE) and the replay check of signed requests. A process alone uses the
 * local ones below; the router, given Redis, shares them among its replicas
 * (router/limits.ts, router/state/redis-limit-store.ts) so N replicas enforce one limit, not N.
 */

/** Events of one key in its current window: a window opens at the key's first event and lasts `windowMs`. */
export interface WindowCount {
  count: number;
  /** Milliseconds until the window ends (0 when no window is open). */
  resetInMs: number;
}

export interface WindowCounter {
  /** Counts one event of `key`. */
  hit(key: string, windowMs: number): Promise<WindowCount>;
  /** The key's count, counting nothing. */
  peek(key: string, windowMs: number): Promise<WindowCount>;
}

/** Nonces of signed requests seen by any server that shares this store. */
export interface NonceStore {
  /** False if the nonce was already seen within `windowMs` (a replay); records it otherwise. */
  remember(nonce: string, windowMs: number): Promise<boolean>;
}

/** A WindowCounter in this process's memory. */
export class LocalWindowCounter implements WindowCounter {
  readonly #windows = new Map<string, { since: number; count: number }>();
  constructor(private readonly now: () => number = Date.now) {}

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const at = this.now();
    // Windows are kept in the order they opened, so the expired ones are the first: each hit drops
    // those, at a cost that stays constant however many keys are open (a scan of them all per hit
    // would let many addresses make every hit slow).
    for (const [k, w] of this.#windows) {
      if (at - w.since < windowMs) break;
      this.#windows.delete(k);
    }
    const open = this.#open(key, windowMs, at);
    if (open) open.count++;
    else {
      // Re-inserted, not overwritten in place: the new window goes to the end of the order.
      this.#windows.delete(key);
      this.#windows.set(key, { since: at, count: 1 });
    }
    return this.#count(key, windowMs, at);
  }

  async peek(key: string, windowMs: number): Promise<WindowCount> {
    return this.#count(key, windowMs, this.now());
  }

  #open(key: string, windowMs: number, at: number): { since: number; count: number } | null {
    const window = this.#windows.get(key);
    return window && at - window.since < windowMs ? window : null;
  }

  #count(key: string, windowMs: number, at: number): WindowCount {
    const open = this.#open(key, windowMs, at);
    return open ? { count: open.count, resetInMs: open.since + windowMs - at } : { count: 0, resetInMs: 0 };
  }
}
