import { type NormalizedPolicy, policyKey } from '../../shared/schemas/index.ts';
import { compareParticipants } from './participants.ts';
import type {
  AllocateInput,
  AllocateOutcome,
  ExpiredAllocation,
  MarkJoinedOutcome,
  MovePlan,
  P2pAllocateInput,
  P2pAllocateOutcome,
  P2pParticipantRecord,
  P2pRoomState,
  ParticipantRecord,
  RoomRecord,
  RoomState,
  RoomStore,
} from './types.ts';

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
  /** Participant id → the other nodes it held allocations on since it last joined. */
  earlierNodes: Map<string, string[]>;
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
  /** P2P rooms: room id → participant id → record (expired leases pruned when the room is read). */
  private readonly p2pRooms = new Map<string, Map<string, P2pParticipantRecord>>();
  /** The region policy of each P2P room (kept while its mesh is live). */
  private readonly p2pPolicies = new Map<string, NormalizedPolicy | null>();
  /** Admin removals: room id → participant id → when, and until when (store clock) it is remembered; outlives the room. */
  private readonly kicks = new Map<string, Map<string, { atMs: number; untilMs: number }>>();
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
    const kick = this.liveKick(input.roomId, participant.participantId);
    if (kick && input.grantIssuedAtMs !== undefined && input.grantIssuedAtMs <= kick.atMs) return { status: 'kicked' };
    const wanted = policyKey(input.policy);
    if (this.liveP2p(input.roomId, input.nowMs)) {
      const policy = this.p2pPolicies.get(input.roomId) ?? null;
      return policyKey(policy) === wanted ? { status: 'p2p' } : { status: 'policy_conflict', policy };
    }
    const existing = this.liveRoom(input.roomId);
    if (existing && policyKey(existing.record.policy) !== wanted) return { status: 'policy_conflict', policy: copyPolicy(existing.record.policy) };
    const homeMoved = existing !== undefined && existing.record.homeRegion !== input.expectedHomeRegion;
    const versionMoved = input.expectedVersion !== undefined && (existing?.version ?? 0) !== input.expectedVersion;
    if (homeMoved || versionMoved) return { status: 'stale', current: existing ? stateOf(existing) : null };
    const previous = existing?.participants.get(participant.participantId) ?? null;
    if (input.roomLimit > 0 && (existing?.participants.size ?? 0) - (previous ? 1 : 0) >= input.roomLimit) return { status: 'room_full' };
    const ownReservation = previous?.nodeId === participant.nodeId ? 1 : 0;
    if (this.countOn(participant.nodeId) - ownReservation >= input.nodeLimit) return { status: 'node_full' };

    const room = existing ?? this.pin(input);
    const previousVersion = room.version;
    if (previous) this.release(previous.nodeId);
    const earlier = (room.earlierNodes.get(participant.participantId) ?? []).filter((id) => id !== participant.nodeId);
    if (previous && previous.nodeId !== participant.nodeId && !earlier.includes(previous.nodeId)) earlier.push(previous.nodeId);
    if (earlier.length > 0) room.earlierNodes.set(participant.participantId, earlier);
    else room.earlierNodes.delete(participant.participantId);
    this.counts.set(participant.nodeId, this.countOn(participant.nodeId) + 1);
    room.participants.set(participant.participantId, copyParticipant(participant));
    room.plans.delete(participant.participantId);
    room.emptySinceMs = null;
    this.bump(room);
    return { status: 'ok', room: copyRecord(room.record), replaced: previous, version: room.version, previousVersion };
  }

  async markJoined(roomId: string, participantId: string, allocationId: string): Promise<MarkJoinedOutcome> {
    const room = this.liveRoom(roomId);
    const participant = room?.participants.get(participantId);
    if (!room || !participant) return { status: this.liveKick(roomId, participantId) ? 'removed' : 'unknown' };
    if (participant.allocationId !== allocationId) return { status: 'replaced' };
    participant.status = 'joined';
    const earlierNodeIds = room.earlierNodes.get(participantId) ?? [];
    room.earlierNodes.delete(participantId);
    return { status: 'joined', earlierNodeIds };
  }

  async kick(roomId: string, participantId: string, atMs: number, untilMs: number): Promise<{ removed: ParticipantRecord; earlierNodeIds: string[] } | null> {
    const room = this.liveRoom(roomId);
    const participant = room?.participants.get(participantId);
    if (!room || !participant) return null;
    const earlierNodeIds = room.earlierNodes.get(participantId) ?? [];
    this.remove(room, participant);
    const kicks = this.kicks.get(roomId) ?? new Map<string, { atMs: number; untilMs: number }>();
    kicks.set(participantId, { atMs, untilMs });
    this.kicks.set(roomId, kicks);
    return { removed: participant, earlierNodeIds };
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
    return copyRecord(room.record);
  }

  async expireAllocations(nowMs: number): Promise<ExpiredAllocation[]> {
    // The sweeper's round also forgets the kicks whose time is up (on the store's clock, as Redis's key expiry).
    const clockMs = this.now();
    for (const [roomId, kicks] of this.kicks) {
      for (const [participantId, kick] of kicks) if (kick.untilMs <= clockMs) kicks.delete(participantId);
      if (kicks.size === 0) this.kicks.delete(roomId);
    }
    const expired: ExpiredAllocation[] = [];
    for (const roomId of [...this.rooms.keys()]) {
      const room = this.liveRoom(roomId);
      if (!room) continue;
      for (const participant of room.participants.values()) {
        if (participant.status !== 'allocated' || participant.expiresAtMs > nowMs) continue;
        const earlierNodeIds = room.earlierNodes.get(participant.participantId) ?? [];
        this.remove(room, participant);
        expired.push({ roomId, participant, earlierNodeIds });
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

  async allocateP2p(input: P2pAllocateInput): Promise<P2pAllocateOutcome> {
    const sfu = this.liveRoom(input.roomId);
    const live = this.liveP2p(input.roomId, input.nowMs);
    const roomPolicy = sfu ? sfu.record.policy : live ? (this.p2pPolicies.get(input.roomId) ?? null) : input.policy;
    if (policyKey(roomPolicy) !== policyKey(input.policy)) return { status: 'policy_conflict', policy: copyPolicy(roomPolicy) };
    if (sfu && sfu.participants.size > 0) return { status: 'sfu' };
    const mesh = live ?? new Map<string, P2pParticipantRecord>();
    const previous = mesh.get(input.participant.participantId) ?? null;
    if (mesh.size - (previous ? 1 : 0) >= input.maxParticipants) return { status: 'full', room: p2pStateOf(input.roomId, roomPolicy, mesh) };
    // An SFU room left empty gives way to the P2P one (its policy with it: it is the same).
    if (sfu) this.rooms.delete(input.roomId);
    mesh.set(input.participant.participantId, copyP2pParticipant(input.participant));
    this.p2pRooms.set(input.roomId, mesh);
    this.p2pPolicies.set(input.roomId, copyPolicy(input.policy));
    return { status: 'ok', room: p2pStateOf(input.roomId, input.policy, mesh), replaced: previous };
  }

  async getP2pRoom(roomId: string, nowMs: number): Promise<P2pRoomState | null> {
    const mesh = this.liveP2p(roomId, nowMs);
    return mesh ? p2pStateOf(roomId, this.p2pPolicies.get(roomId) ?? null, mesh) : null;
  }

  async renewP2p(
    roomId: string,
    participants: ReadonlyArray<{ participantId: string; allocationId: string }>,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<P2pRoomState | null> {
    const mesh = this.liveP2p(roomId, nowMs);
    if (!mesh) return null;
    for (const { participantId, allocationId } of participants) {
      const record = mesh.get(participantId);
      if (record?.allocationId !== allocationId) continue;
      record.status = 'connected';
      record.leaseUntilMs = Math.max(record.leaseUntilMs, leaseUntilMs);
    }
    return p2pStateOf(roomId, this.p2pPolicies.get(roomId) ?? null, mesh);
  }

  async removeP2pParticipant(roomId: string, participantId: string, allocationId: string, nowMs: number): Promise<boolean> {
    const mesh = this.liveP2p(roomId, nowMs);
    if (mesh?.get(participantId)?.allocationId !== allocationId) return false;
    mesh.delete(participantId);
    if (mesh.size === 0) this.forgetP2p(roomId);
    return true;
  }

  async endP2p(roomId: string): Promise<boolean> {
    return this.forgetP2p(roomId);
  }

  replicaAckShortfalls(): number {
    return 0;
  }

  async close(): Promise<void> {
    this.rooms.clear();
    this.counts.clear();
    this.p2pRooms.clear();
    this.p2pPolicies.clear();
    this.kicks.clear();
  }

  private forgetP2p(roomId: string): boolean {
    this.p2pPolicies.delete(roomId);
    return this.p2pRooms.delete(roomId);
  }

  /** A kick still remembered, on the store's clock (Redis expires the kicks key on its own). */
  private liveKick(roomId: string, participantId: string): { atMs: number; untilMs: number } | undefined {
    const kick = this.kicks.get(roomId)?.get(participantId);
    return kick && kick.untilMs > this.now() ? kick : undefined;
  }

  /** The P2P room with its expired leases dropped; undefined (and forgotten) when none is left. */
  private liveP2p(roomId: string, nowMs: number): Map<string, P2pParticipantRecord> | undefined {
    const mesh = this.p2pRooms.get(roomId);
    if (!mesh) return undefined;
    for (const [id, record] of mesh) if (record.leaseUntilMs <= nowMs) mesh.delete(id);
    if (mesh.size > 0) return mesh;
    this.forgetP2p(roomId);
    return undefined;
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
        policy: copyPolicy(input.policy),
      },
      participants: new Map(),
      plans: new Map(),
      earlierNodes: new Map(),
      version: 0,
      emptySinceMs: null,
    };
    this.rooms.set(input.roomId, room);
    return room;
  }

  private remove(room: MemoryRoom, participant: ParticipantRecord): void {
    room.participants.delete(participant.participantId);
    room.plans.delete(participant.participantId);
    room.earlierNodes.delete(participant.participantId);
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
    room: copyRecord(room.record),
    participants: [...room.participants.values()].sort(compareParticipants).map(copyParticipant),
    plans: [...room.plans.values()].map((plan) => ({ ...plan })),
    version: room.version,
  };
}

/** Only `rttMs` is nested, so a spread and one more copy it (structuredClone costs several times more). */
function copyParticipant(participant: ParticipantRecord): ParticipantRecord {
  return { ...participant, rttMs: { ...participant.rttMs } };
}

function p2pStateOf(roomId: string, policy: NormalizedPolicy | null, mesh: Map<string, P2pParticipantRecord>): P2pRoomState {
  return { roomId, policy: copyPolicy(policy), participants: [...mesh.values()].sort(compareParticipants).map(copyP2pParticipant) };
}

function copyRecord(record: RoomRecord): RoomRecord {
  return { ...record, policy: copyPolicy(record.policy) };
}

function copyPolicy(policy: NormalizedPolicy | null): NormalizedPolicy | null {
  return policy && { ...policy, allowedRegions: [...policy.allowedRegions], preferredRegions: [...policy.preferredRegions] };
}

function copyP2pParticipant(participant: P2pParticipantRecord): P2pParticipantRecord {
  return { ...participant, rttMs: { ...participant.rttMs } };
}
