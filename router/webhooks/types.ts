import type { AppEvent, ParticipantLeftReason, ParticipantMoveReason } from '../../shared/app-webhook-events.ts';
import type { TrackInfo } from '../../shared/schemas/index.ts';

/**
 * Application webhooks (docs/webhooks.md): what the router saw happen (an occurrence), what it
 * turns into (events), and the queue events wait in until every receiver took them. The queue is
 * an interface with an in-memory implementation (embedded default, one router) and a Redis one
 * (streams, shared by router replicas); one contract suite runs against both
 * (test/webhooks/event-store-contract.ts).
 */

/** Something the router saw, as raised (and journaled while Redis is away); events are derived from it at enqueue. */
export type AppOccurrence =
  | {
      kind: 'joined';
      roomId: string;
      participantId: string;
      allocationId: string;
      region: string;
      nodeId: string;
      /** Set when this allocation replaces one that moved (then one participant_moved, not a left and a joined). */
      moveReason: ParticipantMoveReason | null;
      atMs: number;
    }
  | {
      kind: 'left';
      roomId: string;
      participantId: string;
      /** Only this allocation leaves (a late `left` of an allocation already replaced changes nothing); null: whichever it holds (a kick). */
      allocationId: string | null;
      reason: Exclude<ParticipantLeftReason, 'replaced'>;
      atMs: number;
    }
  | { kind: 'track'; roomId: string; participantId: string; allocationId: string; published: boolean; track: TrackInfo; atMs: number }
  /** The room's idle TTL may have passed since its last participant left. */
  | { kind: 'idle'; roomId: string; atMs: number };

export interface PresentParticipant {
  participantId: string;
  allocationId: string;
  region: string;
  nodeId: string;
}

/** A room as application webhooks see it: who is in it, and whether room_started was sent without room_finished. */
export interface RoomPresence {
  open: boolean;
  participants: PresentParticipant[];
  /** The edge of the room's last event with one (room_finished is dated there). */
  last: { region: string; nodeId: string } | null;
  /** While open and empty: when room_finished is due (the last participant left + the room idle TTL). */
  finishAtMs: number | null;
}

export const CLOSED_ROOM: RoomPresence = { open: false, participants: [], last: null, finishAtMs: null };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before it is queued: the queue gives it its sequence number and queuing time. */
export type UnqueuedEvent = DistributiveOmit<AppEvent, 'seq' | 'queuedAtMs'>;

/** The head of a room's queue, held by one consumer (see AppEventStore.claim). */
export interface ClaimedEvent {
  /** The queue entry (not the event id). */
  entryId: string;
  event: AppEvent;
  /** Failed attempts so far. */
  attempts: number;
}

export interface DeadLetter {
  /** Its id in the dead-letter stream (what replay takes). */
  id: string;
  event: AppEvent;
  attempts: number;
  error: string;
  deadAtMs: number;
}

/** Dead letters kept at most (the oldest are dropped past it). */
export const DEAD_LETTERS_MAX = 100_000;

export interface AppEventStore {
  /** The room's presence and its version (0: never seen, or forgotten after room_finished). */
  readRoom(roomId: string): Promise<{ presence: RoomPresence; version: number }>;
  /**
   * If the room is still at `expectedVersion`: stores `presence` (and schedules its room_finished
   * check at `presence.finishAtMs`), gives each event the room's next sequence number, appends
   * them to the room's queue and makes the room due. Returns the queued events, or null on a lost
   * race (read again). A closed room's record is kept a day, so sequence numbers keep increasing
   * across a room finished and started again within it.
   */
  commit(input: { roomId: string; expectedVersion: number; presence: RoomPresence; events: UnqueuedEvent[]; nowMs: number }): Promise<AppEvent[] | null>;
  /** Rooms whose room_finished check is due. */
  roomsToFinish(nowMs: number, max: number): Promise<string[]>;
  /** Rooms with events whose next attempt is due. */
  dueRooms(nowMs: number, max: number): Promise<string[]>;
  /**
   * Takes the room's head event for `leaseMs` under `token` (one consumer per room at a time): null
   * when another consumer holds the room, its next attempt is not due, or its queue is empty.
   */
  claim(roomId: string, token: string, leaseMs: number, nowMs: number): Promise<ClaimedEvent | null>;
  /** Every receiver took the head: it leaves the queue, the room's next event is due now. */
  ack(roomId: string, token: string, entryId: string, nowMs: number): Promise<void>;
  /** The attempt failed: counted, and the room's head is due again at `nextAtMs`. */
  retry(roomId: string, token: string, entryId: string, nextAtMs: number): Promise<void>;
  /** Gives up on the head: it moves to the dead-letter stream, the room's next event is due now. */
  deadLetter(claimed: ClaimedEvent, roomId: string, token: string, error: string, nowMs: number): Promise<void>;
  /** Dead letters, oldest first, and how many there are. */
  listDead(max: number): Promise<{ total: number; deadLetters: DeadLetter[] }>;
  /** Queues a dead letter again (same event id and sequence number) at the end of its room's queue; false if there is no such dead letter. */
  replayDead(id: string, nowMs: number): Promise<boolean>;
  close(): Promise<void>;
}
