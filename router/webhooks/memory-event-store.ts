import type { AppEvent } from '../../shared/app-webhook-events.ts';
import { type AppEventStore, CLOSED_ROOM, type ClaimedEvent, DEAD_LETTERS_MAX, type DeadLetter, type RoomPresence, type UnqueuedEvent } from './types.ts';

/** A closed room's record (its sequence counter) is forgotten this long after its last event. */
export const CLOSED_ROOM_RETENTION_MS = 24 * 3_600_000;

interface MemoryRoom {
  presence: RoomPresence;
  version: number;
  seq: number;
  /** Closed rooms only: forgotten after this. */
  forgetAtMs: number | null;
  queue: Array<{ entryId: string; event: AppEvent }>;
  /** The head's failed attempts (for the entry named). */
  head: { entryId: string; attempts: number } | null;
  /** When the head is next due; null: nothing queued. */
  dueAtMs: number | null;
  lock: { token: string; untilMs: number } | null;
}

/** The application webhook queue of a single router (the embedded default): in memory, lost with the process. */
export class MemoryAppEventStore implements AppEventStore {
  /** By room id (client-chosen): a Map. */
  readonly #rooms = new Map<string, MemoryRoom>();
  readonly #dead: DeadLetter[] = [];
  #nextEntry = 0;

  #room(roomId: string, nowMs: number): MemoryRoom | undefined {
    const room = this.#rooms.get(roomId);
    if (room && room.forgetAtMs !== null && room.forgetAtMs <= nowMs && room.queue.length === 0) {
      this.#rooms.delete(roomId);
      return undefined;
    }
    return room;
  }

  async readRoom(roomId: string): Promise<{ presence: RoomPresence; version: number }> {
    const room = this.#room(roomId, Date.now());
    return room ? { presence: room.presence, version: room.version } : { presence: CLOSED_ROOM, version: 0 };
  }

  async commit(input: { roomId: string; expectedVersion: number; presence: RoomPresence; events: UnqueuedEvent[]; nowMs: number }): Promise<AppEvent[] | null> {
    const { roomId, nowMs } = input;
    let room = this.#room(roomId, nowMs);
    if ((room?.version ?? 0) !== input.expectedVersion) return null;
    room ??= { presence: CLOSED_ROOM, version: 0, seq: 0, forgetAtMs: null, queue: [], head: null, dueAtMs: null, lock: null };
    this.#rooms.set(roomId, room);
    room.presence = input.presence;
    room.version += 1;
    room.forgetAtMs = input.presence.open ? null : nowMs + CLOSED_ROOM_RETENTION_MS;
    const queued = input.events.map((e) => ({ ...e, seq: ++room.seq, queuedAtMs: nowMs }) as AppEvent);
    for (const event of queued) room.queue.push({ entryId: String(++this.#nextEntry), event });
    if (queued.length > 0) room.dueAtMs ??= nowMs;
    return queued;
  }

  async roomsToFinish(nowMs: number, max: number): Promise<string[]> {
    const due: string[] = [];
    for (const [roomId, room] of this.#rooms) {
      if (due.length >= max) break;
      if (room.presence.finishAtMs !== null && room.presence.finishAtMs <= nowMs) due.push(roomId);
    }
    return due;
  }

  async dueRooms(nowMs: number, max: number): Promise<string[]> {
    const due: string[] = [];
    for (const [roomId, room] of this.#rooms) {
      if (due.length >= max) break;
      if (room.dueAtMs !== null && room.dueAtMs <= nowMs) due.push(roomId);
    }
    return due;
  }

  async claim(roomId: string, token: string, leaseMs: number, nowMs: number): Promise<ClaimedEvent | null> {
    const room = this.#rooms.get(roomId);
    if (!room || (room.lock && room.lock.untilMs > nowMs) || room.dueAtMs === null || room.dueAtMs > nowMs) return null;
    const head = room.queue[0];
    if (!head) {
      room.dueAtMs = null;
      return null;
    }
    room.lock = { token, untilMs: nowMs + leaseMs };
    if (room.head?.entryId !== head.entryId) room.head = { entryId: head.entryId, attempts: 0 };
    return { entryId: head.entryId, event: head.event, attempts: room.head.attempts };
  }

  #release(room: MemoryRoom, token: string): boolean {
    if (room.lock?.token !== token) return false;
    room.lock = null;
    return true;
  }

  #drop(room: MemoryRoom, entryId: string, nowMs: number): void {
    room.queue = room.queue.filter((e) => e.entryId !== entryId);
    if (room.head?.entryId === entryId) room.head = null;
    room.dueAtMs = room.queue.length > 0 ? nowMs : null;
  }

  async ack(roomId: string, token: string, entryId: string, nowMs: number): Promise<void> {
    const room = this.#rooms.get(roomId);
    if (!room) return;
    this.#drop(room, entryId, nowMs);
    this.#release(room, token);
  }

  async retry(roomId: string, token: string, entryId: string, nextAtMs: number): Promise<void> {
    const room = this.#rooms.get(roomId);
    if (!room || !this.#release(room, token)) return;
    if (room.head?.entryId === entryId) room.head.attempts += 1;
    room.dueAtMs = nextAtMs;
  }

  async deadLetter(claimed: ClaimedEvent, roomId: string, token: string, error: string, nowMs: number): Promise<void> {
    const room = this.#rooms.get(roomId);
    if (!room || !this.#release(room, token)) return;
    this.#dead.push({ id: `${nowMs}-${++this.#nextEntry}`, event: claimed.event, attempts: claimed.attempts + 1, error, deadAtMs: nowMs });
    if (this.#dead.length > DEAD_LETTERS_MAX) this.#dead.shift();
    this.#drop(room, claimed.entryId, nowMs);
  }

  async listDead(max: number): Promise<{ total: number; deadLetters: DeadLetter[] }> {
    return { total: this.#dead.length, deadLetters: this.#dead.slice(0, max) };
  }

  async replayDead(id: string, nowMs: number): Promise<boolean> {
    const index = this.#dead.findIndex((d) => d.id === id);
    if (index < 0) return false;
    const [letter] = this.#dead.splice(index, 1);
    const { roomId } = letter!.event;
    const room = this.#rooms.get(roomId) ?? { presence: CLOSED_ROOM, version: 0, seq: letter!.event.seq, forgetAtMs: nowMs + CLOSED_ROOM_RETENTION_MS, queue: [], head: null, dueAtMs: null, lock: null };
    this.#rooms.set(roomId, room);
    room.queue.push({ entryId: String(++this.#nextEntry), event: letter!.event });
    room.dueAtMs ??= nowMs;
    return true;
  }

  async close(): Promise<void> {}
}
