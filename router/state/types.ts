import type { Heartbeat, NodeRegistration, NormalizedPolicy } from '../../shared/schemas/index.ts';

/**
 * The router's state behind small interfaces, each with an in-memory implementation (embedded
 * default, a single router) and a real one (Redis, PostgreSQL) shared by router replicas. One test
 * suite runs against both. Times are wall-clock ms passed in by the caller (replicas share them).
 */

export interface RoomRecord {
  roomId: string;
  homeRegion: string;
  homeNodeId: string;
  /** Incremented on every re-home, so a later re-home cannot race a pin. */
  epoch: number;
  createdAtMs: number;
  /** The region policy the room's first allocation fixed (stored with the pin, forgotten with the room); null: none. */
  policy: NormalizedPolicy | null;
}

export interface ParticipantRecord {
  participantId: string;
  allocationId: string;
  region: string;
  nodeId: string;
  status: 'allocated' | 'joined';
  /** The client's RTT to each region as used for its placement, ms (kept for rebalancing). */
  rttMs: Record<string, number>;
  allocatedAtMs: number;
  /** An 'allocated' participant not joined by then is expired and its reservation released. */
  expiresAtMs: number;
  /** Set when this allocation followed a rebalancing plan: when (the per-person window counts from it). */
  movedAtMs?: number;
  /** Set when the reconcile re-created this record from its node's inventory (Redis had lost it): when. */
  adoptedAtMs?: number;
}

/**
 * A participant live rebalancing told to move: its next /allocate gets this edge (if the region can
 * still take it) until the plan expires. A plan is dropped when the participant allocates again or
 * leaves.
 */
export interface MovePlan {
  participantId: string;
  /** The allocation the participant held when the plan was made. */
  allocationId: string;
  region: string;
  nodeId: string;
  /** Why, for the allocation's reasons. */
  why: string;
  plannedAtMs: number;
  expiresAtMs: number;
}

export interface RoomState {
  room: RoomRecord;
  participants: ParticipantRecord[];
  /** Rebalancing plans, expired ones included (callers compare `expiresAtMs` with their clock). */
  plans: MovePlan[];
  /** See `RoomStore`: identifies the home, membership and plans this state shows. */
  version: number;
}

export interface AllocateInput {
  roomId: string;
  /** Home to pin if the room has none yet. */
  proposedHome: { region: string; nodeId: string };
  /**
   * The allocation's region policy (null: none): pinned with the home; a room (SFU or P2P) that has
   * another one (or none while this has one) refuses the allocation ('policy_conflict').
   */
  policy: NormalizedPolicy | null;
  /** The home the decision assumed (null = the room was empty when read). */
  expectedHomeRegion: string | null;
  /**
   * The room version the decision was made on (0 = no room), when the caller's view may be older
   * than one read: the allocation is then also stale if anything placement depends on changed.
   */
  expectedVersion?: number;
  participant: ParticipantRecord;
  /** The participant's node may hold at most this many participants (reserved + joined). */
  nodeLimit: number;
  /**
   * The room may hold at most this many participants (reserved + joined; 0 = no limit). The
   * participant's own earlier record, if any, is replaced, so it does not count.
   */
  roomLimit: number;
  nowMs: number;
  /**
   * When the caller's grant was issued (its `iat`, ms); absent for API-key and anonymous callers.
   * Refused ('kicked') when an admin removed the participant at or after it (see `kick`).
   */
  grantIssuedAtMs?: number;
}

/** A participant of a P2P fallback room (see RoomStore's P2P methods). */
export interface P2pParticipantRecord {
  participantId: string;
  allocationId: string;
  /** 'connected' once its relay connection renewed it. */
  status: 'allocated' | 'connected';
  /** The client's RTT to each region as used for the decision, ms (the relay places the room with them). */
  rttMs: Record<string, number>;
  allocatedAtMs: number;
  /** The participant is gone after this unless renewed: the allocation TTL, then the relay's lease. */
  leaseUntilMs: number;
}

export interface P2pRoomState {
  roomId: string;
  /** The region policy the room's first allocation fixed (see AllocateInput.policy); null: none. */
  policy: NormalizedPolicy | null;
  /** Participants whose lease has not run out, in allocation order. */
  participants: P2pParticipantRecord[];
}

export interface P2pAllocateInput {
  roomId: string;
  /** As AllocateInput.policy: a room (P2P, or an SFU room left empty) with another policy refuses ('policy_conflict'). */
  policy: NormalizedPolicy | null;
  participant: P2pParticipantRecord;
  maxParticipants: number;
  nowMs: number;
}

export type P2pAllocateOutcome =
  /** `replaced`: this participant's earlier record, if it had one. */
  | { status: 'ok'; room: P2pRoomState; replaced: P2pParticipantRecord | null }
  /** The mesh holds `maxParticipants` others already. */
  | { status: 'full'; room: P2pRoomState }
  /** The room is homed on an SFU and has participants there: it cannot become P2P. */
  | { status: 'sfu' }
  /** The room has another region policy (`policy`: the room's; null: none). */
  | { status: 'policy_conflict'; policy: NormalizedPolicy | null };

export type AllocateOutcome =
  /** `version`: the room's version with this allocation; `previousVersion`: just before it (0: it created the room). */
  | { status: 'ok'; room: RoomRecord; replaced: ParticipantRecord | null; version: number; previousVersion: number }
  /** The node is full (capacity reserved by others since the snapshot): place again without it. */
  | { status: 'node_full' }
  /** The room holds `roomLimit` other participants: refused, nothing changed. */
  | { status: 'room_full' }
  /**
   * The room is not as the decision assumed (another home, or another version when one was
   * expected): place again on `current`, its state now (null: no such room), without a read.
   */
  | { status: 'stale'; current: RoomState | null }
  /** The room is in P2P fallback mode: end it (endP2p) before placing it on an SFU. */
  | { status: 'p2p' }
  /** An admin removed this participant at or after its grant was issued. */
  | { status: 'kicked' }
  /** The room (SFU or P2P) has another region policy (`policy`: the room's; null: none); nothing changed. */
  | { status: 'policy_conflict'; policy: NormalizedPolicy | null };

export interface ExpiredAllocation {
  roomId: string;
  participant: ParticipantRecord;
  earlierNodeIds: string[];
}

/**
 * `joined`: the allocation is current, now marked joined; `earlierNodeIds` are the other nodes this
 * participant held allocations on since it last joined (their sessions are to close). Not current:
 * `replaced` (a newer allocation of the participant), `removed` (an admin removed it), `unknown`.
 */
export type MarkJoinedOutcome = { status: 'joined'; earlierNodeIds: string[] } | { status: 'replaced' | 'removed' | 'unknown' };

/**
 * Room versions: a room's version identifies its home and membership (who holds an allocation, on
 * which node, with which RTTs) and its rebalancing plans, the inputs of placement. Every allocate,
 * removal, expiry, re-home and plan
 * gives the room a version never used before by the store, so equal versions mean equal inputs even
 * across a room forgotten and created again. 0 is a room that does not exist. Marking a participant
 * joined keeps the version: placement does not depend on it, and every allocation is followed by a
 * join, which would otherwise outdate every router's view of the room.
 */
export interface RoomStore {
  getRoom(roomId: string): Promise<RoomState | null>;
  /** Allocations answered although fewer replicas than GEO_SFU_REDIS_MIN_REPLICAS_ACK acknowledged them in time (0 without replicas). */
  replicaAckShortfalls(): number;
  /**
   * Atomically: refuse a participant kicked since its grant, refuse another region policy than the
   * room's, pin the home and policy if the room has none (first pin wins), check `expectedHomeRegion`, check and reserve capacity on the participant's
   * node, and record the participant (replacing an earlier record of the same participant, whose
   * reservation is released and whose node joins the participant's earlier nodes).
   */
  allocate(input: AllocateInput): Promise<AllocateOutcome>;
  /** Marks an allocation as joined (no expiry) and hands out its earlier nodes, once; or says why it is not current. */
  markJoined(roomId: string, participantId: string, allocationId: string): Promise<MarkJoinedOutcome>;
  /**
   * Admin removal: removes the participant (whatever its allocation) and remembers the kick at
   * `atMs` until `untilMs` (allocate refuses grants issued at or before it meanwhile; a store may
   * remember it longer, never shorter). Null, and nothing recorded, when the participant is not in
   * the room. `earlierNodeIds`: see MarkJoinedOutcome.
   */
  kick(roomId: string, participantId: string, atMs: number, untilMs: number): Promise<{ removed: ParticipantRecord; earlierNodeIds: string[] } | null>;
  /** Removes the participant (only the given allocation, when one is named); releases its reservation. */
  removeParticipant(roomId: string, participantId: string, allocationId?: string): Promise<ParticipantRecord | null>;
  /**
   * Replaces the room's plans (live rebalancing) if the room is still at `expectedVersion` and holds
   * no plan live at `nowMs`: the per-room guard that keeps two routers from migrating one room at
   * once. Returns the room's new version, or null on a lost race.
   */
  planMoves(roomId: string, expectedVersion: number, plans: MovePlan[], nowMs: number): Promise<number | null>;
  /** Changes the room's home if its epoch is still `expectedEpoch`; returns null on a lost race. */
  rehome(roomId: string, expectedEpoch: number, home: { region: string; nodeId: string }): Promise<RoomRecord | null>;
  /**
   * Removes every 'allocated' participant whose expiry has passed; returns them with their room and
   * their earlier nodes (see MarkJoinedOutcome: sessions there no longer hold a current allocation).
   */
  expireAllocations(nowMs: number): Promise<ExpiredAllocation[]>;
  /** Participants (allocated + joined) counted per node. */
  nodeCounts(): Promise<Map<string, number>>;
  listRoomIds(): Promise<string[]>;

  /*
   * P2P fallback rooms. A room is either homed on an SFU or P2P, never both: `allocate` answers
   * 'p2p' while the room has a P2P participant, and `allocateP2p` answers 'sfu' while the SFU room
   * has participants (an SFU room left empty is dropped for the P2P one). P2P participants hold a
   * lease (`leaseUntilMs`): one whose lease ran out no longer counts and is dropped lazily, and a
   * room whose leases all ran out is gone.
   */
  /** Atomically: check the mode and the mesh size, then record the participant (replacing its earlier record). */
  allocateP2p(input: P2pAllocateInput): Promise<P2pAllocateOutcome>;
  /** The P2P room (participants with a live lease), or null when the room is not P2P. */
  getP2pRoom(roomId: string, nowMs: number): Promise<P2pRoomState | null>;
  /**
   * Renews the leases of these participants (current allocations only) until `leaseUntilMs` and
   * marks them connected; returns the room after it, or null when the room is no longer P2P.
   */
  renewP2p(roomId: string, participants: ReadonlyArray<{ participantId: string; allocationId: string }>, leaseUntilMs: number, nowMs: number): Promise<P2pRoomState | null>;
  /** Removes the participant if that allocation is current; the room ends with its last participant. */
  removeP2pParticipant(roomId: string, participantId: string, allocationId: string, nowMs: number): Promise<boolean>;
  /** Ends the room's P2P mode (its participants move to an SFU through /allocate); false if it was not P2P. */
  endP2p(roomId: string): Promise<boolean>;

  close(): Promise<void>;
}

/** What the reconcile's re-creation of a participant did (see ReconcileStore.adopt). */
export type AdoptOutcome = 'known' | 'replaced' | 'removed' | 'p2p' | 'pinned' | 'adopted' | 'conflict';

/** Which Redis server holds the data, as ReconcileStore.identity reads it. */
export interface StoreIdentity {
  /** The primary's run_id. */
  runId: string;
  /** When the server holding the data last changed (a failover, a restart, data lost; 0: never since the deployment's first room). */
  changedAtMs: number;
  /** This call saw the change first. */
  changed: boolean;
  /** The change a leader's reconcile pass has run after (equal to changedAtMs once reconciled; 0: none). */
  reconciledAtMs: number;
}

/**
 * The Redis room store's side of the reconcile after a failover (router/operations/reconciler.ts).
 * Only Redis can lose acknowledged writes; the memory store has no such side.
 */
export interface ReconcileStore {
  /** Which server holds the data (the primary's run_id, recorded in Redis), and whether a pass has reconciled its last change. */
  identity(nowMs: number): Promise<StoreIdentity>;
  /** Records that a reconcile pass ran after the change dated `changedAtMs` (compare-and-set: false if the server changed again). */
  markReconciled(changedAtMs: number): Promise<boolean>;
  /** Re-creates a participant its node serves but Redis does not know (joined, on `nodeId`); atomic; `replaced` if Redis holds another allocation of it. */
  adopt(roomId: string, participant: ParticipantRecord, nowMs: number): Promise<AdoptOutcome>;
  /** Makes every node's count equal to the participant records on it, atomically; returns what it corrected. */
  recountNodes(): Promise<Array<{ nodeId: string; was: number; now: number }>>;
  /** True for the first caller per allocation within `ttlMs`: the one router that tells the participant to move. */
  claimMove(allocationId: string, ttlMs: number): Promise<boolean>;
}

export interface NodeRecord {
  registration: NodeRegistration;
  registeredAtMs: number;
  lastHeartbeatMs: number;
  /** Null until the first heartbeat. */
  heartbeat: Heartbeat | null;
}

export interface NodeRegistryStore {
  register(registration: NodeRegistration, nowMs: number): Promise<void>;
  /** Records a heartbeat; false when the node is unknown (it must register again). Ignores older seq. */
  heartbeat(heartbeat: Heartbeat, nowMs: number): Promise<boolean>;
  deregister(nodeId: string): Promise<void>;
  list(): Promise<NodeRecord[]>;
  close(): Promise<void>;
}

export type SessionStatus = 'allocated' | 'active' | 'ended' | 'expired';

/** One row of the guide's `video_sessions` table (plus region, home_region, ended_at). */
export interface SessionRow {
  /** UUID generated at allocation (the allocation id). */
  id: string;
  roomId: string;
  userId: string;
  serverId: string;
  region: string;
  homeRegion: string;
  status: SessionStatus;
  createdAt: Date;
  endedAt: Date | null;
}

export interface SessionLog {
  /** Runs migrations (real backend) and starts the background flusher. */
  start(): Promise<void>;
  /** Queues a new row; never blocks /allocate. Idempotent on `id`. */
  record(row: SessionRow): void;
  /** Queues a status change; applied after the row's insert, idempotent, never moves a status backwards. */
  setStatus(id: string, status: Exclude<SessionStatus, 'allocated'>, at: Date): void;
  /** Writes everything queued (retrying per the backend's policy until `timeoutMs`). */
  flush(timeoutMs?: number): Promise<void>;
  /** Rows and updates queued but not yet written. */
  bufferDepth(): number;
  /** Rows dropped because the buffer was full while the database was away. */
  droppedCount(): number;
  get(id: string): Promise<SessionRow | null>;
  close(): Promise<void>;
}
