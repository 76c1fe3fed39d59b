import { Ticker } from '../../shared/ticker.ts';
import type { RoomStore, SessionLog } from '../state/types.ts';

export interface ExpirySweeperDeps {
  rooms: RoomStore;
  sessions: SessionLog;
  now: () => number;
  /** Only the leader sweeps (the store would make a second sweeper harmless, but idle). */
  isLeader: () => boolean;
  onExpired?: (count: number) => void;
  /**
   * An expired allocation had replaced this participant's allocations on these nodes: their
   * sessions hold no current allocation any more (the router does not count them) and are closed.
   */
  onOrphanedSessions?: (roomId: string, participantId: string, nodeIds: string[]) => void;
  /** An expired allocation was removed from its room (its node may have left the room's node set). */
  onRemoved?: (roomId: string, nodeId: string) => void;
}

/**
 * Releases allocations that were never followed by a join (GEO_SFU_ALLOCATION_TTL_MS), so their
 * capacity reservations return to the node. Safe on several router replicas at once: the store
 * removes each expired allocation atomically, so exactly one replica sees it.
 */
export class ExpirySweeper {
  #ticker: Ticker | null = null;

  constructor(private readonly deps: ExpirySweeperDeps) {}

  start(intervalMs: number): void {
    this.#ticker = new Ticker(intervalMs, async () => void (await this.sweep()), () => undefined);
    this.#ticker.start();
  }

  async sweep(): Promise<number> {
    if (!this.deps.isLeader()) return 0;
    try {
      const nowMs = this.deps.now();
      const expired = await this.deps.rooms.expireAllocations(nowMs);
      for (const { roomId, participant, earlierNodeIds } of expired) {
        this.deps.sessions.setStatus(participant.allocationId, 'expired', new Date(nowMs));
        if (earlierNodeIds.length > 0) this.deps.onOrphanedSessions?.(roomId, participant.participantId, earlierNodeIds);
        this.deps.onRemoved?.(roomId, participant.nodeId);
      }
      if (expired.length > 0) this.deps.onExpired?.(expired.length);
      return expired.length;
    } catch {
      // The store is unreachable: the next sweep retries; reservations stay until then.
      return 0;
    }
  }

  async stop(): Promise<void> {
    await this.#ticker?.stop();
  }
}
