import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { BadRequestError, ConflictError, DependencyUnavailableError, ForbiddenError, NoCapacityError } from '../../shared/errors.ts';
import type { AllocateP2pResponse, AllocateRequest, AllocateResponse, AllocateSfuResponse, Candidate } from '../../shared/schemas/index.ts';
import { type Permissions, signJoinToken, signRelayToken } from '../../shared/tokens.ts';
import { P2P_RELAY_PATH } from '../../shared/p2p-relay.ts';
import { turnCredentials } from '../../shared/turn.ts';
import type { GeoLookup } from '../geo.ts';
import { estimateClientRtt, type ClientRttModel } from '../placement/client-rtt.ts';
import { followPlan } from '../placement/rebalance.ts';
import type { ClientRtt, PlacedParticipant, PlacementDecision, PlacementInput, PlacementStrategy } from '../placement/types.ts';
import type { NodeRegistry, NodeSnapshot, PlacementView } from '../registry/node-registry.ts';
import type { P2pRoomState, ParticipantRecord, RoomState, RoomStore, SessionLog } from '../state/types.ts';
import { DegradedJournal, type JournalEntry, type ReplayResult } from './degraded-journal.ts';
import { KnownRooms, NO_ROOM, type KnownRoom } from './known-rooms.ts';
import { own } from '../../shared/own.ts';

export interface AllocatorDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  sessions: SessionLog;
  strategy: PlacementStrategy;
  geoLookup: GeoLookup;
  now: () => number;
  newId: () => string;
  /** Observes each decision (metrics, scaling); `placed` is absent for refusals and P2P. */
  onDecision?: (outcome: AllocationOutcome, elapsedMs: number, placed?: PlacedAllocation) => void;
  /** A room left P2P mode because a region can take it now (its relay tells the peers). */
  onP2pEnded?: (roomId: string) => void;
  /** An allocation was made from local state while Redis was away (see GEO_SFU_DEGRADED_ALLOCATION). */
  onDegradedAllocation?: () => void;
  /** A journaled allocation was written to Redis when it came back. */
  onReplayed?: (result: ReplayResult) => void;
}

export type AllocationOutcome = 'home' | 'edge' | 'cascade' | 'overflow' | 'rebalanced' | 'p2p' | 'refused';

export interface PlacedAllocation {
  homeRegion: string;
  region: string;
  /** The client's RTT to its edge region, ms, as used for the decision. */
  clientRttMs: number;
}

/** How often an allocation is placed again after losing a race (node filled, room pinned elsewhere). */
const MAX_PLACEMENT_ATTEMPTS = 5;
/** Participants (in all rooms) whose placement the router remembers: about 100 bytes each. */
const KNOWN_PARTICIPANTS = 100_000;

/**
 * POST /allocate's I/O around the pure placement: place on the room as this router last knew it
 * and the registry snapshot, then commit atomically in the room store, which checks that the room
 * is still at that version and the node has room. When the room changed, the store answers with
 * its current state and the participant is placed again on it (a node that filled up is left
 * out); so the common case is one round trip to the store. Then sign the join token and queue the
 * session row.
 */
export class Allocator {
  readonly #regionIds: readonly string[];
  readonly #catalog: ReadonlySet<string>;
  readonly #clientRttModel: ClientRttModel;
  readonly #knownRooms = new KnownRooms(KNOWN_PARTICIPANTS);
  readonly #journal = new DegradedJournal();
  /** The journal replay running now, shared by every caller waiting for it. */
  #replaying: Promise<void> | null = null;

  constructor(private readonly deps: AllocatorDeps) {
    const { config } = deps;
    this.#regionIds = config.regions.map((r) => r.id);
    this.#catalog = new Set(this.#regionIds);
    this.#clientRttModel = { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm, defaultRttMs: config.defaultClientRttMs };
  }

  /**
   * `permissions` (the grant's, or what an API caller asked: see allocationPermissions) travel in the
   * join token for the SFU to enforce; `grantIssuedAtMs` (the grant's iat) is refused when an admin
   * removed the participant since.
   */
  async allocate(req: AllocateRequest, clientIp: string | null, permissions?: Permissions, grantIssuedAtMs?: number): Promise<AllocateResponse> {
    const { config, rooms, strategy, now } = this.deps;
    const started = performance.now();
    for (const region of Object.keys(req.latencies ?? {})) {
      if (!this.#catalog.has(region)) throw new BadRequestError(`latencies.${region} is not a region of this deployment (${this.#regionIds.join(', ')})`, `latencies.${region}`);
    }
    const client = estimateClientRtt({
      regions: config.regions,
      measured: req.latencies,
      location: clientIp !== null && !hasAllRegions(req.latencies, this.#regionIds) ? this.deps.geoLookup(clientIp) : null,
      model: this.#clientRttModel,
    });
    const full = new Set<string>();
    let basis = this.#knownRooms.get(req.roomId);
    if (this.#journal.size > 0) {
      // Allocations made while Redis was away go to Redis before any new one.
      try {
        await this.replayJournal();
      } catch (err) {
        if (!(err instanceof DependencyUnavailableError)) throw err;
        return this.#allocateDegraded(req, client, basis, permissions, started, err);
      }
      basis = this.#knownRooms.get(req.roomId);
    }
    // The room as remembered may be old, so the store checks its version. A basis the store just
    // returned is as fresh as a read and is checked as one was before (home only), so that joiners
    // racing each other cannot keep each other stale.
    let checkVersion = true;
    for (let attempt = 1; ; attempt++) {
      const view = this.deps.registry.placementView();
      const input = this.#placementInput(req, client, basis, view, full);
      // A participant rebalancing told to move gets the planned edge while the plan lives and the
      // region can take it; otherwise it is placed as anyone else.
      const plan = basis.plans.get(req.participantId);
      const planned = plan && plan.expiresAtMs > now() ? followPlan(input, plan) : null;
      const result = planned ?? strategy.place(input);
      if (!result.ok) {
        if (config.p2pFallback) return this.#allocateP2p(req, client, result.candidates, started);
        this.deps.onDecision?.('refused', performance.now() - started);
        throw new NoCapacityError(`no region can take participant ${req.participantId} now: ${result.candidates.map((c) => `${c.region} ${c.excludedBecause ?? 'ok'}`).join(', ')}`);
      }
      const { decision } = result;
      const nowMs = now();
      const node = view.snapshot.nodes.find((n) => n.nodeId === decision.nodeId)!;
      const participant: ParticipantRecord = { ...this.#newParticipant(req.participantId, decision, client, nowMs), ...(planned ? { movedAtMs: nowMs } : {}) };
      let outcome;
      try {
        outcome = await rooms.allocate({
          roomId: req.roomId,
          proposedHome: { region: decision.homeRegion, nodeId: decision.homeNodeId },
          expectedHomeRegion: basis.home?.region ?? null,
          ...(checkVersion ? { expectedVersion: basis.version } : {}),
          participant,
          nodeLimit: node.maxParticipants,
          roomLimit: config.maxRoomParticipants,
          nowMs,
          ...(grantIssuedAtMs !== undefined ? { grantIssuedAtMs } : {}),
        });
      } catch (err) {
        if (!(err instanceof DependencyUnavailableError)) throw err;
        return this.#allocateDegraded(req, client, basis, permissions, started, err);
      }
      if (outcome.status === 'p2p') {
        // A region can take the room again: it leaves P2P mode (its relay moves the peers here) and
        // this participant is placed on the SFU like any other.
        if (await rooms.endP2p(req.roomId)) this.deps.onP2pEnded?.(req.roomId);
      }
      if (outcome.status === 'room_full') {
        this.deps.onDecision?.('refused', performance.now() - started);
        throw roomFull(req.roomId, config.maxRoomParticipants);
      }
      if (outcome.status === 'kicked') {
        this.deps.onDecision?.('refused', performance.now() - started);
        throw new ForbiddenError(`${req.participantId} was removed from room ${req.roomId} after this grant was issued: a new grant is needed`, undefined, 'KICKED');
      }
      if (outcome.status !== 'ok') {
        if (attempt >= MAX_PLACEMENT_ATTEMPTS) {
          this.deps.onDecision?.('refused', performance.now() - started);
          throw new NoCapacityError(`allocation for room ${req.roomId} kept losing races; try again`, 1);
        }
        if (outcome.status === 'node_full') {
          full.add(decision.nodeId);
        } else if (outcome.status === 'stale') {
          basis = outcome.current ? this.#knownRoom(outcome.current) : NO_ROOM;
          checkVersion = false;
        }
        continue;
      }
      if (outcome.previousVersion === basis.version) {
        const others = basis.participants.filter((p) => p.participantId !== req.participantId);
        const plans = new Map(basis.plans);
        plans.delete(req.participantId);
        this.#knownRooms.set(req.roomId, {
          version: outcome.version,
          home: { region: outcome.room.homeRegion, nodeId: outcome.room.homeNodeId },
          epoch: outcome.room.epoch,
          participants: [...others, placed(participant, config.defaultClientRttMs)],
          plans,
        });
      } else {
        // Someone else changed the room between the basis and this allocation: what it holds now is unknown.
        this.#knownRooms.delete(req.roomId);
      }
      if (outcome.replaced) this.deps.sessions.setStatus(outcome.replaced.allocationId, 'ended', new Date(nowMs));
      this.#recordSession(req.roomId, participant, outcome.room.homeRegion);
      this.deps.onDecision?.(outcomeOf(decision, outcome.room.homeRegion, basis), performance.now() - started, {
        homeRegion: outcome.room.homeRegion,
        region: decision.region,
        clientRttMs: client.byRegion[decision.region] ?? config.defaultClientRttMs,
      });
      return this.#sfuResponse(req, client, decision, node, participant, outcome.room.homeRegion, permissions);
    }
  }

  /** Allocations made while Redis was away and not yet written there. */
  journalSize(): number {
    return this.#journal.size;
  }

  /**
   * A participant of a journaled allocation joined (true) or left its node: recorded in the journal,
   * which writes it to Redis with the allocation. False when the allocation is not journaled.
   */
  journalEvent(allocationId: string, event: 'joined' | 'left'): boolean {
    return event === 'joined' ? this.#journal.markJoined(allocationId) : this.#journal.remove(allocationId);
  }

  /**
   * Writes the journal to Redis, oldest first; concurrent callers share one run. Throws
   * DependencyUnavailableError when Redis is still away (the rest stays journaled).
   */
  replayJournal(): Promise<void> {
    this.#replaying ??= this.#replayAll().finally(() => {
      this.#replaying = null;
    });
    return this.#replaying;
  }

  async #replayAll(): Promise<void> {
    for (const entry of this.#journal.entries()) {
      if (!this.#journal.has(entry.participant.allocationId)) continue;
      const result = await this.#replay(entry);
      this.#knownRooms.delete(entry.roomId);
      this.deps.onReplayed?.(result);
    }
  }

  /**
   * One journaled allocation into Redis, idempotent by allocation id: read the room, then write the
   * participant with a compare-and-set on the version read (no capacity check: the seat was given
   * already, within the degraded budget). The room's home in Redis wins: if it was re-homed
   * meanwhile, the participant is counted into the room as it is now (its node serves the room as
   * an edge, cascading to the new home); if the room was forgotten, it is pinned again where it was.
   */
  async #replay(entry: JournalEntry): Promise<ReplayResult> {
    const { rooms, sessions, now } = this.deps;
    const { allocationId, participantId } = entry.participant;
    for (let attempt = 1; ; attempt++) {
      const state = await rooms.getRoom(entry.roomId);
      const current = state?.participants.find((p) => p.participantId === participantId);
      if (current?.allocationId === allocationId) {
        this.#journal.remove(allocationId);
        return 'already_applied';
      }
      if (current && current.allocatedAtMs > entry.participant.allocatedAtMs) {
        this.#journal.remove(allocationId);
        sessions.setStatus(allocationId, 'ended', new Date(now()));
        return 'superseded';
      }
      const written = entry.participant;
      const outcome = await rooms.allocate({
        roomId: entry.roomId,
        proposedHome: entry.home,
        expectedHomeRegion: state?.room.homeRegion ?? null,
        expectedVersion: state?.version ?? 0,
        participant: written,
        nodeLimit: Number.MAX_SAFE_INTEGER,
        roomLimit: 0,
        nowMs: now(),
      });
      if (outcome.status === 'ok') {
        if (outcome.replaced) sessions.setStatus(outcome.replaced.allocationId, 'ended', new Date(now()));
        // A join or leave reported while the write was on its way.
        if (!this.#journal.has(allocationId)) {
          await rooms.removeParticipant(entry.roomId, participantId, allocationId);
        } else if (entry.participant.status === 'joined' && written.status !== 'joined') {
          await rooms.markJoined(entry.roomId, participantId, allocationId);
        }
        this.#journal.remove(allocationId);
        return outcome.room.epoch === entry.epoch && outcome.room.homeRegion === entry.home.region ? 'applied' : 'rehomed';
      }
      if (outcome.status === 'p2p' || attempt >= MAX_PLACEMENT_ATTEMPTS * 2) {
        // The room became a P2P mesh (or keeps changing under us): the participant's join fails and the SDK allocates again.
        this.#journal.remove(allocationId);
        sessions.setStatus(allocationId, 'ended', new Date(now()));
        return 'superseded';
      }
      // 'stale': the room changed since the read; read again.
    }
  }

  /**
   * Redis is away (`cause`): place from this router's last view of the room, or refuse with `cause`.
   * Only a room this router knows, only on a node already serving it (so in a region already part of
   * it, no new pin, region or re-home), and only within the node's degraded budget: what it had free
   * at the last registry read, at most GEO_SFU_DEGRADED_SEATS_PER_NODE, minus what this router
   * placed on it since. Journaled for Redis; the token and session row are as usual.
   */
  #allocateDegraded(
    req: AllocateRequest,
    client: ClientRtt,
    basis: KnownRoom,
    permissions: Permissions | undefined,
    started: number,
    cause: DependencyUnavailableError,
  ): AllocateSfuResponse {
    const { config, now } = this.deps;
    const home = basis.home;
    if (!config.degradedAllocation || home === null) throw cause;
    const others = basis.participants.filter((p) => p.participantId !== req.participantId);
    if (config.maxRoomParticipants > 0 && others.length >= config.maxRoomParticipants) throw roomFull(req.roomId, config.maxRoomParticipants);
    const view = this.deps.registry.placementView(false);
    const { snapshot } = view;
    const serving = new Set([home.nodeId, ...basis.participants.map((p) => p.nodeId)]);
    const excluded = new Set(req.excludeNodeIds ?? []);
    // A participant allocating again reuses its own journaled seat.
    const ownSeat = this.#journal.heldBy(req.roomId, req.participantId)?.participant.nodeId;
    for (const n of snapshot.nodes) {
      const used = Math.max(n.reserved, n.record.heartbeat?.load.participants ?? 0);
      const taken = this.#journal.seatsTaken(n.nodeId) - (n.nodeId === ownSeat ? 1 : 0);
      const budget = Math.min(config.degradedSeatsPerNode, n.maxParticipants - used) - taken;
      if (!serving.has(n.nodeId) || budget <= 0) excluded.add(n.nodeId);
    }
    const result = this.deps.strategy.place(this.#placementInput({ ...req, excludeNodeIds: [...excluded] }, client, basis, view, new Set()));
    if (!result.ok || result.decision.homeRegion !== home.region || !serving.has(result.decision.nodeId)) {
      throw new DependencyUnavailableError(
        `${cause.message}; room ${req.roomId} cannot be placed from local state (no node already serving it with degraded budget left in its home or edge regions)`,
      );
    }
    const { decision } = result;
    const node = snapshot.nodes.find((n) => n.nodeId === decision.nodeId)!;
    const nowMs = now();
    const participant = this.#newParticipant(req.participantId, decision, client, nowMs);
    const earlier = this.#journal.add({ roomId: req.roomId, participant, home, epoch: basis.epoch });
    if (earlier) this.deps.sessions.setStatus(earlier.participant.allocationId, 'ended', new Date(nowMs));
    // Same version: the room in Redis does not have this participant yet, so a later compare-and-set on it must fail.
    this.#knownRooms.set(req.roomId, { ...basis, participants: [...others, placed(participant, config.defaultClientRttMs)] });
    this.#recordSession(req.roomId, participant, home.region);
    this.deps.onDegradedAllocation?.();
    this.deps.onDecision?.(outcomeOf(decision, home.region, basis), performance.now() - started, {
      homeRegion: home.region,
      region: decision.region,
      clientRttMs: client.byRegion[decision.region] ?? config.defaultClientRttMs,
    });
    return this.#sfuResponse(req, client, decision, node, participant, home.region, permissions);
  }

  #sfuResponse(
    req: AllocateRequest,
    client: ClientRtt,
    decision: PlacementDecision,
    node: NodeSnapshot,
    participant: ParticipantRecord,
    homeRegion: string,
    permissions: Permissions | undefined,
  ): AllocateSfuResponse {
    const { config } = this.deps;
    const nowMs = participant.allocatedAtMs;
    const expSeconds = Math.floor((nowMs + config.joinTokenTtlMs) / 1000);
    const key = config.tokenKeys[0];
    if (!key) throw new Error('no join-token key configured');
    const token = signJoinToken(key, {
      aid: participant.allocationId,
      room: req.roomId,
      sub: req.participantId,
      region: decision.region,
      node: decision.nodeId,
      ...(permissions ? { perm: permissions } : {}),
      iat: Math.floor(nowMs / 1000),
      exp: expSeconds,
    });
    return {
      mode: 'sfu',
      allocationId: participant.allocationId,
      roomId: req.roomId,
      participantId: req.participantId,
      homeRegion,
      region: decision.region,
      node: { id: node.nodeId, region: node.region, signalingUrl: node.record.registration.signalingUrl },
      token,
      expiresAt: new Date(expSeconds * 1000).toISOString(),
      iceServers: this.#iceServers(decision.region, req.participantId, nowMs),
      cascade: { regions: decision.cascadeRegions },
      rttSource: client.source,
      reasons: decision.reasons,
      candidates: decision.candidates,
    };
  }

  /**
   * True when a region can take a P2P room now: placement for its first participant (with the RTTs
   * it was allocated with) on an empty room succeeds.
   */
  canHost(room: P2pRoomState): boolean {
    const first = room.participants[0];
    if (!first) return false;
    const { config } = this.deps;
    const client = estimateClientRtt({ regions: config.regions, measured: first.rttMs, location: null, model: this.#clientRttModel });
    const req: AllocateRequest = { roomId: room.roomId, participantId: first.participantId };
    return this.deps.strategy.place(this.#placementInput(req, client, NO_ROOM, this.deps.registry.placementView(), new Set())).ok;
  }

  /** No region can take the participant: a place in the room's P2P mesh, if it is not full and not on an SFU. */
  async #allocateP2p(req: AllocateRequest, client: ClientRtt, candidates: Candidate[], started: number): Promise<AllocateP2pResponse> {
    const { config, rooms, now } = this.deps;
    const nowMs = now();
    const allocationId = this.deps.newId();
    const outcome = await rooms.allocateP2p({
      roomId: req.roomId,
      participant: {
        participantId: req.participantId,
        allocationId,
        status: 'allocated',
        rttMs: { ...client.byRegion },
        allocatedAtMs: nowMs,
        leaseUntilMs: nowMs + config.allocationTtlMs,
      },
      maxParticipants: config.p2pMaxParticipants,
      nowMs,
    });
    const why = candidates.map((c) => `${c.region} ${c.excludedBecause ?? 'ok'}`).join(', ');
    if (outcome.status !== 'ok') {
      this.deps.onDecision?.('refused', performance.now() - started);
      throw new NoCapacityError(
        outcome.status === 'full'
          ? `no region can take room ${req.roomId} now (${why}) and its P2P mesh is full (${config.p2pMaxParticipants} participants)`
          : `no region can take participant ${req.participantId} now (${why}) and room ${req.roomId} is on an SFU`,
      );
    }
    this.#knownRooms.delete(req.roomId);
    if (outcome.replaced) this.deps.sessions.setStatus(outcome.replaced.allocationId, 'ended', new Date(nowMs));
    this.#recordSession(req.roomId, { allocationId, participantId: req.participantId, nodeId: 'p2p', region: 'p2p', allocatedAtMs: nowMs }, 'p2p');
    const key = config.tokenKeys[0];
    if (!key) throw new Error('no join-token key configured');
    const expSeconds = Math.floor((nowMs + config.joinTokenTtlMs) / 1000);
    const token = signRelayToken(key, { aid: allocationId, room: req.roomId, sub: req.participantId, iat: Math.floor(nowMs / 1000), exp: expSeconds });
    // TURN of the client's nearest region: P2P media crosses the network directly, so relay near the client.
    const nearest = Object.entries(client.byRegion).sort(([, a], [, b]) => a - b)[0]?.[0] ?? '*';
    this.deps.onDecision?.('p2p', performance.now() - started);
    return {
      mode: 'p2p',
      allocationId,
      roomId: req.roomId,
      participantId: req.participantId,
      relay: { path: P2P_RELAY_PATH, token },
      expiresAt: new Date(expSeconds * 1000).toISOString(),
      iceServers: this.#iceServers(nearest, req.participantId, nowMs),
      maxParticipants: config.p2pMaxParticipants,
      rttSource: client.source,
      candidates,
    };
  }

  /** The configured STUN/TURN servers plus time-limited TURN credentials for the edge region's TURN servers. */
  /** The allocation's row in the durable session log (`video_sessions`). */
  #recordSession(roomId: string, p: Pick<ParticipantRecord, 'allocationId' | 'participantId' | 'nodeId' | 'region' | 'allocatedAtMs'>, homeRegion: string): void {
    this.deps.sessions.record({
      id: p.allocationId,
      roomId,
      userId: p.participantId,
      serverId: p.nodeId,
      region: p.region,
      homeRegion,
      status: 'allocated',
      createdAt: new Date(p.allocatedAtMs),
      endedAt: null,
    });
  }

  /** A fresh allocation record for a participant placed by `decision`. */
  #newParticipant(participantId: string, decision: PlacementDecision, client: ClientRtt, nowMs: number): ParticipantRecord {
    return {
      participantId,
      allocationId: this.deps.newId(),
      region: decision.region,
      nodeId: decision.nodeId,
      status: 'allocated',
      rttMs: { ...client.byRegion },
      allocatedAtMs: nowMs,
      expiresAtMs: nowMs + this.deps.config.allocationTtlMs,
    };
  }

  #iceServers(region: string, participantId: string, nowMs: number): AllocateSfuResponse['iceServers'] {
    const { config } = this.deps;
    const urls = own(config.turnUrls, region) ?? config.turnUrls['*'];
    if (config.turnSecret === '' || !urls || urls.length === 0) return [...config.iceServers];
    return [...config.iceServers, turnCredentials({ secret: config.turnSecret, ttlSeconds: config.turnTtlSeconds, participantId, nowMs, urls })];
  }

  #knownRoom(state: RoomState): KnownRoom {
    return {
      version: state.version,
      home: { region: state.room.homeRegion, nodeId: state.room.homeNodeId },
      epoch: state.room.epoch,
      participants: state.participants.map((p) => placed(p, this.deps.config.defaultClientRttMs)),
      plans: new Map(state.plans.map((plan) => [plan.participantId, plan])),
    };
  }

  #placementInput(
    req: AllocateRequest,
    client: ClientRtt,
    basis: KnownRoom,
    view: PlacementView,
    full: ReadonlySet<string>,
  ): PlacementInput {
    const { config } = this.deps;
    return {
      regions: this.#regionIds,
      // A node the store found full since the snapshot is full for this placement.
      nodes: full.size === 0 ? view.nodes : view.nodes.map((n) => (full.has(n.nodeId) ? { ...n, stress: Math.max(1, n.stress) } : n)),
      interRegionRtt: view.interRegionRtt,
      client,
      room: {
        homeRegion: basis.home?.region ?? null,
        homeNodeId: basis.home?.nodeId ?? null,
        participants: basis.participants.filter((p) => p.participantId !== req.participantId),
      },
      excludeNodeIds: req.excludeNodeIds ?? [],
      marginMs: config.marginMs,
    };
  }
}

function roomFull(roomId: string, limit: number): ConflictError {
  return new ConflictError(`room ${roomId} is full: it holds ${limit} participants (GEO_SFU_MAX_ROOM_PARTICIPANTS)`, 'ROOM_FULL');
}

/** A participant as placement sees the others in its room. */
function placed(p: ParticipantRecord, defaultClientRttMs: number): PlacedParticipant {
  return { participantId: p.participantId, region: p.region, nodeId: p.nodeId, edgeRttMs: own(p.rttMs, p.region) ?? defaultClientRttMs };
}

function hasAllRegions(latencies: Record<string, number> | undefined, regionIds: readonly string[]): boolean {
  return latencies !== undefined && regionIds.every((r) => Object.hasOwn(latencies, r));
}

function outcomeOf(
  decision: { region: string; reasons: { code: string }[] },
  homeRegion: string,
  before: KnownRoom,
): AllocationOutcome {
  if (decision.reasons.some((r) => r.code === 'REBALANCE_PLANNED')) return 'rebalanced';
  if (decision.reasons.some((r) => r.code === 'HOME_REGION_UNAVAILABLE')) return 'overflow';
  if (decision.region === homeRegion) return 'home';
  const inRoom = before.participants.some((p) => p.region === decision.region);
  return inRoom ? 'edge' : 'cascade';
}
