import type { NormalizedPolicy } from '../../shared/schemas/index.ts';
import type { PlacedParticipant } from '../placement/types.ts';
import type { MovePlan } from '../state/types.ts';

/** A room as this router last knew it: what placement needs of it, at a room version (see RoomStore). */
export interface KnownRoom {
  /** 0: no such room. */
  version: number;
  home: { region: string; nodeId: string } | null;
  /** The home's epoch (see RoomRecord); 0 with no room. */
  epoch: number;
  /** The room's region policy (see RoomRecord); null with no room. */
  policy: NormalizedPolicy | null;
  participants: readonly PlacedParticipant[];
  /** Rebalancing plans by participant id. */
  plans: ReadonlyMap<string, MovePlan>;
}

export const NO_ROOM: KnownRoom = { version: 0, home: null, epoch: 0, policy: null, participants: [], plans: new Map() };

/**
 * The rooms this router saw last, least recently used dropped first once they hold more than
 * `maxParticipants` participants in all. An entry is only a guess: an allocation placed on it
 * states its version, and the store refuses it (with the room as it is now) when the room changed.
 */
export class KnownRooms {
  readonly #rooms = new Map<string, KnownRoom>();
  /** Participants of the rooms held, plus one per room (so empty rooms count too). */
  #size = 0;

  constructor(private readonly maxParticipants: number) {}

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
    this.delete(roomId);
    this.#rooms.set(roomId, room);
    this.#size += sizeOf(room);
    for (const leastRecent of this.#rooms.keys()) {
      if (this.#size <= this.maxParticipants) break;
      this.delete(leastRecent);
    }
  }

  delete(roomId: string): void {
    const room = this.#rooms.get(roomId);
    if (room === undefined) return;
    this.#rooms.delete(roomId);
    this.#size -= sizeOf(room);
  }
}

function sizeOf(room: KnownRoom): number {
  return room.participants.length + 1;
}
