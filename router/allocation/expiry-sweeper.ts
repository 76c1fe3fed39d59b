import type { RoomStore, SessionLog } from '../state/types.ts';

export interface ExpirySweeperDeps {
  rooms: RoomStore;
  sessions: SessionLog;
  now: () => number;
  /** Only the leader sweeps (the store would make a second sweeper harmless, but idle). */
  isLeader: () => boolean;
  onExpired?: (count: number) => void;
}

/**
 * Releases allocations that were never followed by a join (GEO_SFU_ALLOCATION_TTL_MS), so their
 * capacity reservations return to the node. Safe on several router replicas at once: the store
 * removes each expired allocation atomically, so exactly one replica sees it.
 */
export class ExpirySweeper {
  #timer: NodeJS.Timeout | null = null;
  #running = false;

  constructor(private readonly deps: ExpirySweeperDeps) {}

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.sweep(), intervalMs);
    this.#timer.unref();
  }

  async sweep(): Promise<number> {
    if (this.#running || !this.deps.isLeader()) return 0;
    this.#running = true;
    try {
      const nowMs = this.deps.now();
      const expired = await this.deps.rooms.expireAllocations(nowMs);
      for (const { participant } of expired) this.deps.sessions.setStatus(participant.allocationId, 'expired', new Date(nowMs));
      if (expired.length > 0) this.deps.onExpired?.(expired.length);
      return expired.length;
    } catch {
      // The store is unreachable: the next sweep retries; reservations stay until then.
      return 0;
    } finally {
      this.#running = false;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
