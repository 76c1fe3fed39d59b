import type { ParticipantRecord } from '../state/types.ts';
import type { AppOccurrence } from '../webhooks/types.ts';

/** An allocation made while Redis was unreachable, waiting to be written there. */
export interface JournalEntry {
  roomId: string;
  participant: ParticipantRecord;
  /** The room's home and epoch as this router knew them when it placed the participant. */
  home: { region: string; nodeId: string };
  epoch: number;
}

/** What replaying one entry did (see DegradedAllocator.replayJournal). */
export type ReplayResult =
  /** Written into the room as this router knew it. */
  | 'applied'
  /** Redis already held this allocation (an earlier replay whose answer was lost). */
  | 'already_applied'
  /** The room was re-homed meanwhile (another epoch): the participant is counted into the room as it is now. */
  | 'rehomed'
  /** The participant holds a newer allocation in Redis: this one is dropped. */
  | 'superseded';

/**
 * The allocations this router made from local state while Redis was away (by allocation id, in
 * allocation order), and the seats it took per node meanwhile. Seats are not given back when a
 * journaled participant leaves: the budget stays conservative until the journal is written out.
 */
export class DegradedJournal {
  readonly #entries = new Map<string, JournalEntry>();
  readonly #seatsTaken = new Map<string, number>();

  get size(): number {
    return this.#entries.size;
  }

  entries(): JournalEntry[] {
    return [...this.#entries.values()];
  }

  seatsTaken(nodeId: string): number {
    return this.#seatsTaken.get(nodeId) ?? 0;
  }

  /** The participant's journaled allocation in the room, if any. */
  heldBy(roomId: string, participantId: string): JournalEntry | null {
    return this.entries().find((e) => e.roomId === roomId && e.participant.participantId === participantId) ?? null;
  }

  /**
   * Records the allocation; an earlier journaled allocation of the same participant in the room is
   * dropped (returned) and its seat given back, as the store releases a replaced reservation.
   */
  add(entry: JournalEntry): JournalEntry | null {
    const earlier = this.heldBy(entry.roomId, entry.participant.participantId);
    if (earlier) {
      this.#entries.delete(earlier.participant.allocationId);
      this.#seatsTaken.set(earlier.participant.nodeId, this.seatsTaken(earlier.participant.nodeId) - 1);
    }
    this.#entries.set(entry.participant.allocationId, entry);
    this.#seatsTaken.set(entry.participant.nodeId, this.seatsTaken(entry.participant.nodeId) + 1);
    return earlier;
  }

  has(allocationId: string): boolean {
    return this.#entries.has(allocationId);
  }

  /** The participant joined its node: the entry is written as joined (no expiry). False if not journaled. */
  markJoined(allocationId: string): boolean {
    const entry = this.#entries.get(allocationId);
    if (!entry) return false;
    entry.participant = { ...entry.participant, status: 'joined' };
    return true;
  }

  /** Drops the entry (written out, or the participant left before it was). */
  remove(allocationId: string): boolean {
    const removed = this.#entries.delete(allocationId);
    if (this.#entries.size === 0) this.#seatsTaken.clear();
    return removed;
  }

  // --- Application webhook occurrences (router/webhooks/app-events.ts), a kind of entry of their
  // own: raised while Redis was away, queued in this order once it is back.
  readonly #appEvents: AppOccurrence[] = [];

  get appEventCount(): number {
    return this.#appEvents.length;
  }

  addAppEvent(occurrence: AppOccurrence): void {
    this.#appEvents.push(occurrence);
  }

  firstAppEvent(): AppOccurrence | undefined {
    return this.#appEvents[0];
  }

  dropFirstAppEvent(): void {
    this.#appEvents.shift();
  }
}
