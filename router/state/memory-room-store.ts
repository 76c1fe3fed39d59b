import { compareParticipants } from './participants.ts';
import type { AllocateInput, AllocateOutcome, MovePlan, ParticipantRecord, RoomRecord, RoomState, RoomStore } from './types.ts';

export interface MemoryRoomStoreOptions {
  /** An empty room is forgotten this long after its last participant left. */
  roomIdleTtlMs: number;
  /** Clock of the idle TTL (Redis uses its own); defaults to Date.now. */
  now?: () => number;
}

interface MemoryRoom {
  record: RoomRecord;
  participants: Map<string, ParticipantRecord>;
  plans: Map<string, MovePlan>;
  version: number;
  /** Set while the room has no participants: when its idle TTL started. */
  emptySinceMs: number | null;
}

/**
 * Room state of a single router. Every method runs synchronously inside one promise job, so each
 * is atomic like its Redis script counterpart. Records are copied in and out, as they are
 * serialised in Redis, so a caller can never alter the stored state by mutating a result.
 */
export class MemoryRoomStore implements RoomStore {
  private readonly rooms = new Map<string, MemoryRoom>();
  private readonly counts = new Map<string, number>();
  /** The last room version handed out (see RoomStore). */
  private lastVersion = 0;
  private readonly roomIdleTtlMs: number;
  private readonly now: () => number;

  constructor(options: MemoryRoomStoreOptions) {
    this.roomIdleTtlMs = options.roomIdleTtlMs;
    this.now = options.now ?? Date.now;
  }

  async getRoom(roomId: string): Promise<RoomState | null> {
    const room = this.liveRoom(roomId);
    if (!room) return null;
    return stateOf(room);
  }

  async allocate(input: AllocateInput): Promise<AllocateOutcome> {
    const { participant } = input;
    const existing = this.liveRoom(input.roomId);
    const homeMoved = existing !== undefined && existing.record.homeRegion !== input.expectedHomeRegion;
    const versionMoved = input.expectedVersion !== undefined && (existing?.version ?? 0) !== input.expectedVersion;
    if (homeMoved || versionMoved) return { status: 'stale', current: existing ? stateOf(existing) : null };
    const previous = existing?.participants.get(participant.participantId) ?? null;
    const ownReservation = previous?.nodeId === participant.nodeId ? 1 : 0;
    if (this.countOn(participant.nodeId) - ownReservation >= input.nodeLimit) return { status: 'node_full' };

    const room = existing ?? this.pin(input);
    const previousVersion = room.version;
    if (previous) this.release(previous.nodeId);
    this.counts.set(participant.nodeId, this.countOn(participant.nodeId) + 1);
    room.participants.set(participant.participantId, copyParticipant(participant));
    room.plans.delete(participant.participantId);
    room.emptySinceMs = null;
    this.bump(room);
    return { status: 'ok', room: { ...room.record }, replaced: previous, version: room.version, previousVersion };
  }

  async markJoined(roomId: string, participantId: string, allocationId: string): Promise<boolean> {
    const participant = this.liveRoom(roomId)?.participants.get(participantId);
    if (participant?.allocationId !== allocationId) return false;
    participant.status = 'joined';
    return true;
  }

  async removeParticipant(roomId: string, participantId: string, allocationId?: string): Promise<ParticipantRecord | null> {
    const room = this.liveRoom(roomId);
    const participant = room?.participants.get(participantId);
    if (!room || !participant || (allocationId !== undefined && participant.allocationId !== allocationId)) return null;
    this.remove(room, participant);
    return participant;
  }

  async planMoves(roomId: string, expectedVersion: number, plans: MovePlan[], nowMs: number): Promise<number | null> {
    const room = this.liveRoom(roomId);
    if (!room || room.version !== expectedVersion) return null;
    for (const plan of room.plans.values()) if (plan.expiresAtMs > nowMs) return null;
    room.plans = new Map(plans.map((plan) => [plan.participantId, { ...plan }]));
    this.bump(room);
    return room.version;
  }

  async rehome(roomId: string, expectedEpoch: number, home: { region: string; nodeId: string }): Promise<RoomRecord | null> {
    const room = this.liveRoom(roomId);
    if (!room || room.record.epoch !== expectedEpoch) return null;
    room.record = { ...room.record, homeRegion: home.region, homeNodeId: home.nodeId, epoch: expectedEpoch + 1 };
    this.bump(room);
    return { ...room.record };
  }

  async expireAllocations(nowMs: number): Promise<Array<{ roomId: string; participant: ParticipantRecord }>> {
    const expired: Array<{ roomId: string; participant: ParticipantRecord }> = [];
    for (const roomId of [...this.rooms.keys()]) {
      const room = this.liveRoom(roomId);
      if (!room) continue;
      for (const participant of room.participants.values()) {
        if (participant.status !== 'allocated' || participant.expiresAtMs > nowMs) continue;
        this.remove(room, participant);
        expired.push({ roomId, participant });
      }
    }
    return expired;
  }

  async nodeCounts(): Promise<Map<string, number>> {
    return new Map(this.counts);
  }

  async listRoomIds(): Promise<string[]> {
    return [...this.rooms.keys()].filter((roomId) => this.liveRoom(roomId));
  }

  async close(): Promise<void> {
    this.rooms.clear();
    this.counts.clear();
  }

  /** The room, unless it has sat empty past its idle TTL (then it is forgotten now). */
  private liveRoom(roomId: string): MemoryRoom | undefined {
    const room = this.rooms.get(roomId);
    if (room?.emptySinceMs != null && this.now() - room.emptySinceMs >= this.roomIdleTtlMs) {
      this.rooms.delete(roomId);
      return undefined;
    }
    return room;
  }

  private pin(input: AllocateInput): MemoryRoom {
    const room: MemoryRoom = {
      record: {
        roomId: input.roomId,
        homeRegion: input.proposedHome.region,
        homeNodeId: input.proposedHome.nodeId,
        epoch: 0,
        createdAtMs: input.nowMs,
      },
      participants: new Map(),
      plans: new Map(),
      version: 0,
      emptySinceMs: null,
    };
    this.rooms.set(input.roomId, room);
    return room;
  }

  private remove(room: MemoryRoom, participant: ParticipantRecord): void {
    room.participants.delete(participant.participantId);
    room.plans.delete(participant.participantId);
    this.release(participant.nodeId);
    this.bump(room);
    if (room.participants.size === 0) room.emptySinceMs = this.now();
  }

  private bump(room: MemoryRoom): void {
    room.version = ++this.lastVersion;
  }

  private countOn(nodeId: string): number {
    return this.counts.get(nodeId) ?? 0;
  }

  private release(nodeId: string): void {
    const left = this.countOn(nodeId) - 1;
    if (left > 0) this.counts.set(nodeId, left);
    else this.counts.delete(nodeId);
  }
}

function stateOf(room: MemoryRoom): RoomState {
  return {
    room: { ...room.record },
    participants: [...room.participants.values()].sort(compareParticipants).map(copyParticipant),
    plans: [...room.plans.values()].map((plan) => ({ ...plan })),
    version: room.version,
  };
}

/** Only `rttMs` is nested, so a spread and one more copy it (structuredClone costs several times more). */
function copyParticipant(participant: ParticipantRecord): ParticipantRecord {
  return { ...participant, rttMs: { ...participant.rttMs } };
}
