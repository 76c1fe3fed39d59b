import type { FastifyBaseLogger } from 'fastify';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import type { AppEvent } from '../../shared/app-webhook-events.ts';
import { deriveEvents } from './derive.ts';
import type { AppEventStore, AppOccurrence } from './types.ts';

/** Where occurrences wait while Redis is away: the degraded journal (router/allocation/degraded-journal.ts). */
export interface OccurrenceJournal {
  readonly appEventCount: number;
  addAppEvent(occurrence: AppOccurrence): void;
  firstAppEvent(): AppOccurrence | undefined;
  dropFirstAppEvent(): void;
}

export interface AppEventsDeps {
  store: AppEventStore;
  journal: OccurrenceJournal;
  /** GEO_SFU_ROOM_IDLE_TTL_MS: room_finished comes this long after the last participant left. */
  idleTtlMs: number;
  now: () => number;
  newId: () => string;
  log: FastifyBaseLogger;
  /** Events were queued (with their sequence numbers). */
  onQueued: (events: AppEvent[]) => void;
}

/** Lost compare-and-set races tolerated per occurrence (each means another router changed the room meanwhile). */
const MAX_RACES = 50;
/** Occurrences the journal holds at most while Redis is away; past it new ones are dropped (logged), so an outage cannot exhaust memory. */
const JOURNAL_MAX = 100_000;
/** Rooms checked for room_finished per round. */
const FINISH_BATCH = 200;

/**
 * Raises application webhook events: each occurrence is turned into events against the room's
 * presence and queued with them, atomically (a compare-and-set on the room's version, so router
 * replicas raising for one room at once queue each event once, in one order). While Redis is away,
 * occurrences go into the degraded journal and are queued, in order, once it is back; meanwhile
 * later occurrences queue behind them, so a room's order holds.
 */
export class AppEvents {
  #flushing: Promise<void> | null = null;

  constructor(private readonly deps: AppEventsDeps) {}

  /** Never rejects: an occurrence that cannot be queued now is journaled (Redis away) or logged (a bug). */
  async raise(occurrence: AppOccurrence): Promise<void> {
    const { journal, log } = this.deps;
    if (journal.appEventCount > 0) {
      this.#journal(occurrence);
      void this.flushJournal().catch(() => undefined);
      return;
    }
    try {
      await this.#queue(occurrence);
    } catch (err) {
      if (err instanceof DependencyUnavailableError) this.#journal(occurrence);
      else log.error({ err, roomId: occurrence.roomId, kind: occurrence.kind }, 'application webhook event not queued');
    }
  }

  #journal(occurrence: AppOccurrence): void {
    const { journal, log } = this.deps;
    if (journal.appEventCount < JOURNAL_MAX) journal.addAppEvent(occurrence);
    else log.error({ roomId: occurrence.roomId, kind: occurrence.kind }, `application webhook event dropped: ${JOURNAL_MAX} already journaled while Redis is away`);
  }

  /** Queues the journaled occurrences, oldest first; rejects with DependencyUnavailableError while Redis is still away. Concurrent callers share one run. */
  flushJournal(): Promise<void> {
    this.#flushing ??= (async () => {
      const { journal } = this.deps;
      for (let next = journal.firstAppEvent(); next; next = journal.firstAppEvent()) {
        await this.#queue(next);
        journal.dropFirstAppEvent();
      }
    })().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Raises room_finished for the rooms whose idle TTL passed since their last participant left. */
  async finishIdleRooms(): Promise<void> {
    const atMs = this.deps.now();
    for (const roomId of await this.deps.store.roomsToFinish(atMs, FINISH_BATCH)) await this.raise({ kind: 'idle', roomId, atMs });
  }

  async #queue(occurrence: AppOccurrence): Promise<void> {
    const { store, idleTtlMs, newId, now } = this.deps;
    for (let race = 0; race < MAX_RACES; race++) {
      const { presence, version } = await store.readRoom(occurrence.roomId);
      const next = deriveEvents(presence, occurrence, idleTtlMs, newId);
      if (next.presence === presence && next.events.length === 0) return;
      const queued = await store.commit({ roomId: occurrence.roomId, expectedVersion: version, presence: next.presence, events: next.events, nowMs: now() });
      if (queued) {
        if (queued.length > 0) this.deps.onQueued(queued);
        return;
      }
    }
    throw new Error(`room ${occurrence.roomId} kept changing: ${MAX_RACES} lost races`);
  }
}
