import type { PlacedParticipant } from '../placement/types.ts';

/** A room as this router last knew it: what placement needs of it, at a room version (see RoomStore). */
export interface KnownRoom {
  /** 0: no such room. */
  version: number;
  home: { region: string; nodeId: string } | null;
  participants: readonly PlacedParticipant[];
}

export const NO_ROOM: KnownRoom = { version: 0, home: null, participants: [] };

/**
 * The rooms this router saw last, least recently used dropped first. An entry is only a guess: an
 * allocation placed on it states its version, and the store refuses it (with the room as it is
 * now) when the room changed since.
 */
export class KnownRooms {
  readonly #rooms = new Map<string, KnownRoom>();

  constructor(private readonly capacity: number) {}

  /** The room as last seen; NO_ROOM for a room never seen (a new room is the common case). */
  get(roomId: string): KnownRoom {
    const room = this.#rooms.get(roomId);
    if (room === undefined) return NO_ROOM;
    // A Map iterates in insertion order: re-inserting makes this the most recently used.
    this.#rooms.delete(roomId);
    this.#rooms.set(roomId, room);
    return room;
  }

  set(roomId: string, room: KnownRoom): void {
    this.#rooms.delete(roomId);
    this.#rooms.set(roomId, room);
    if (this.#rooms.size > this.capacity) this.#rooms.delete(this.#rooms.keys().next().value!);
  }

  delete(roomId: string): void {
    this.#rooms.delete(roomId);
  }
}
