/** How often expired entries are swept out (amortised over admissions). */
const SWEEP_INTERVAL_MS = 10_000;

/**
 * The allocation ids (`aid`) this agent admitted a session for, each kept until its join token
 * expires: a join token admits one session, so a replay (after `leave`, or while the session it
 * opened lives) is refused without asking the router. Memory is bounded by the tokens admitted
 * within one token lifetime: entries go at their token's `exp`.
 */
export class AdmittedAllocations {
  /** aid → when its token expires (ms). */
  readonly #expiresAt = new Map<string, number>();
  #nextSweepMs = 0;

  /** Records the allocation; false when a session was admitted for it already (and its token still lives). */
  admit(allocationId: string, tokenExpiresAtMs: number, nowMs: number): boolean {
    if (nowMs >= this.#nextSweepMs) {
      for (const [aid, at] of this.#expiresAt) if (at <= nowMs) this.#expiresAt.delete(aid);
      this.#nextSweepMs = nowMs + SWEEP_INTERVAL_MS;
    }
    const known = this.#expiresAt.get(allocationId);
    if (known !== undefined && known > nowMs) return false;
    this.#expiresAt.set(allocationId, tokenExpiresAtMs);
    return true;
  }

  get size(): number {
    return this.#expiresAt.size;
  }
}
