import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { BadRequestError, ConflictError, ForbiddenError, NoCapacityError } from '../../shared/errors.ts';
import { type AllocatePreview, type AllocateRequest, type AllocateResponse, type AllocateSfuResponse, type NormalizedPolicy, normalizePolicy, policyKey } from '../../shared/schemas/index.ts';
import type { Permissions } from '../../shared/tokens.ts';
import type { GeoLookup } from '../geo.ts';
import type { P2pAllocator } from '../p2p/p2p-allocator.ts';
import { estimateClientRtt, type ClientRttModel } from '../placement/client-rtt.ts';
import { followPlan } from '../placement/rebalance.ts';
import type { ClientRtt, PlacementDecision, PlacementStrategy } from '../placement/types.ts';
import type { RoomNodesBasis } from '../operations/room-nodes.ts';
import type { NodeRegistry, NodeSnapshot } from '../registry/node-registry.ts';
import type { ParticipantRecord, RoomState, RoomStore, SessionLog } from '../state/types.ts';
import { type KnownRoom, type KnownRooms, NO_ROOM } from './known-rooms.ts';
import { clientRttModel, placed, placementInput } from './placement-input.ts';
import { noAllowedRegion, policyConflict, whyNot } from './policy-refusals.ts';
import { recordSession, sfuResponse } from './response.ts';

export interface AllocatorDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  sessions: SessionLog;
  strategy: PlacementStrategy;
  geoLookup: GeoLookup;
  /** The rooms as this router last saw them (shared with the degraded wrapper). */
  knownRooms: KnownRooms;
  /** The P2P fallback (GEO_SFU_P2P_FALLBACK); null: a participant no region can take is refused. */
  p2p: P2pAllocator | null;
  now: () => number;
  newId: () => string;
  /** Observes each decision (metrics, scaling); `placed` is absent for refusals and P2P. */
  onDecision?: (outcome: AllocationOutcome, elapsedMs: number, placed?: PlacedAllocation) => void;
  /** A room left P2P mode because a region can take it now (its relay tells the peers). */
  onP2pEnded?: (roomId: string) => void;
  /**
   * The room's node set may have changed (a node new to it; `formerNodeIds` may have left it);
   * `known`: the whole room as this allocation left it, when the allocation knew it exactly.
   */
  onRoomNodesChanged?: (roomId: string, formerNodeIds: string[], known: RoomNodesBasis | null) => void;
}

export type AllocationOutcome = 'home' | 'edge' | 'cascade' | 'overflow' | 'rebalanced' | 'p2p' | 'refused';

export interface PlacedAllocation {
  homeRegion: string;
  region: string;
  /** The client's RTT to its edge region, ms, as used for the decision. */
  clientRttMs: number;
}

/** One /allocate call on its way through the pipeline. */
export interface AllocationJob {
  req: AllocateRequest;
  client: ClientRtt;
  /** The room the participant is placed on: as remembered, then as the store last answered. */
  basis: KnownRoom;
  /** The grant's or caller's permissions, carried in the join token. */
  permissions: Permissions | undefined;
  /** The grant's iat: refused when an admin removed the participant since. */
  grantIssuedAtMs: number | undefined;
  /** The room's region policy as this allocation states it (`req.policy`, normalized); null: none. */
  policy: NormalizedPolicy | null;
  /** performance.now() at the start. */
  started: number;
}

/** How often an allocation is placed again after losing a race (node filled, room pinned elsewhere). */
export const MAX_PLACEMENT_ATTEMPTS = 5;

/**
 * POST /allocate's I/O around the pure placement: place on the room as this router last knew it
 * and the registry's placement view, then commit atomically in the room store, which checks that
 * the room is still at that version and the node has room. When the room changed, the store
 * answers with its current state and the participant is placed again on it (a node that filled
 * up is left out); so the common case is one round trip to the store. Then the answer (response.ts)
 * and the session row. With the room store away, DegradedAllocator (degraded.ts) takes over.
 */
export class Allocator {
  readonly #regionIds: readonly string[];
  readonly #catalog: ReadonlySet<string>;
  readonly #clientRttModel: ClientRttModel;

  constructor(private readonly deps: AllocatorDeps) {
    this.#regionIds = deps.config.regions.map((r) => r.id);
    this.#catalog = new Set(this.#regionIds);
    this.#clientRttModel = clientRttModel(deps.config);
  }

  /**
   * Validates the request (`req.policy`: the caller's effective region policy, the grant's for a
   * grant caller) and estimates the client's RTTs; the basis is the room as remembered.
   */
  prepare(req: AllocateRequest, clientIp: string | null, permissions: Permissions | undefined, grantIssuedAtMs: number | undefined): AllocationJob {
    const started = performance.now();
    for (const region of Object.keys(req.latencies ?? {})) {
      if (!this.#catalog.has(region)) throw new BadRequestError(`latencies.${region} is not a region of this deployment (${this.#regionIds.join(', ')})`, `latencies.${region}`);
    }
    let policy: NormalizedPolicy | null = null;
    if (req.policy) {
      const normalized = normalizePolicy(req.policy, this.#regionIds);
      if ('field' in normalized) throw new BadRequestError(normalized.message, normalized.field);
      policy = normalized;
    }
    const client = estimateClientRtt({
      regions: this.deps.config.regions,
      measured: req.latencies,
      location: clientIp !== null && !hasAllRegions(req.latencies, this.#regionIds) ? this.deps.geoLookup(clientIp) : null,
      model: this.#clientRttModel,
    });
    return { req, client, basis: this.deps.knownRooms.get(req.roomId), permissions, grantIssuedAtMs, policy, started };
  }

  /** Places and commits the job (see the class comment); the store's errors propagate (DependencyUnavailableError). */
  async place(job: AllocationJob): Promise<AllocateResponse> {
    const { config, rooms, now, knownRooms } = this.deps;
    const { req, client } = job;
    const full = new Set<string>();
    // The room as remembered may be old, so the store checks its version. A basis the store just
    // returned is as fresh as a read and is checked as one was before (home only), so that joiners
    // racing each other cannot keep each other stale.
    let checkVersion = true;
    for (let attempt = 1; ; attempt++) {
      const basis = job.basis;
      const { view, result, planned } = this.#decide(req, client, basis, full, job.policy);
      if (!result.ok) {
        // A room with a policy goes P2P only when the policy allows it: never a silent way around it.
        if (this.deps.p2p && (job.policy === null || job.policy.allowP2p)) return this.#allocateP2p(job, this.deps.p2p, result.candidates);
        this.#refused(job);
        if (job.policy) throw noAllowedRegion(req, job.policy, result.candidates);
        throw new NoCapacityError(`no region can take participant ${req.participantId} now: ${whyNot(result.candidates)}`);
      }
      const { decision } = result;
      const nowMs = now();
      const node = view.snapshot.nodes.find((n) => n.nodeId === decision.nodeId)!;
      const participant: ParticipantRecord = { ...this.newParticipant(req.participantId, decision, client, nowMs), ...(planned ? { movedAtMs: nowMs } : {}) };
      const outcome = await rooms.allocate({
        roomId: req.roomId,
        proposedHome: { region: decision.homeRegion, nodeId: decision.homeNodeId },
        policy: job.policy,
        expectedHomeRegion: basis.home?.region ?? null,
        ...(checkVersion ? { expectedVersion: basis.version } : {}),
        participant,
        nodeLimit: node.maxParticipants,
        roomLimit: config.maxRoomParticipants,
        nowMs,
        ...(job.grantIssuedAtMs !== undefined ? { grantIssuedAtMs: job.grantIssuedAtMs } : {}),
      });
      if (outcome.status === 'p2p') {
        // A region can take the room again: it leaves P2P mode (its relay moves the peers here) and
        // this participant is placed on the SFU like any other.
        if (await rooms.endP2p(req.roomId)) this.deps.onP2pEnded?.(req.roomId);
      }
      if (outcome.status === 'room_full') {
        this.#refused(job);
        throw roomFull(req.roomId, config.maxRoomParticipants);
      }
      if (outcome.status === 'kicked') {
        this.#refused(job);
        throw new ForbiddenError(`${req.participantId} was removed from room ${req.roomId} after this grant was issued: a new grant is needed`, undefined, 'KICKED');
      }
      if (outcome.status === 'policy_conflict') {
        this.#refused(job);
        knownRooms.delete(req.roomId);
        throw policyConflict(req.roomId, outcome.policy, job.policy);
      }
      if (outcome.status !== 'ok') {
        if (attempt >= MAX_PLACEMENT_ATTEMPTS) {
          this.#refused(job);
          throw new NoCapacityError(`allocation for room ${req.roomId} kept losing races; try again`, 1);
        }
        if (outcome.status === 'node_full') {
          full.add(decision.nodeId);
        } else if (outcome.status === 'stale') {
          job.basis = outcome.current ? this.#knownRoom(outcome.current) : NO_ROOM;
          checkVersion = false;
        }
        continue;
      }
      const exact = outcome.previousVersion === basis.version;
      const former = outcome.replaced && outcome.replaced.nodeId !== decision.nodeId ? [outcome.replaced.nodeId] : [];
      let known: KnownRoom | null = null;
      if (exact) {
        const others = basis.participants.filter((p) => p.participantId !== req.participantId);
        const plans = new Map(basis.plans);
        plans.delete(req.participantId);
        known = {
          version: outcome.version,
          home: { region: outcome.room.homeRegion, nodeId: outcome.room.homeNodeId },
          epoch: outcome.room.epoch,
          policy: outcome.room.policy,
          participants: [...others, placed(participant, config.defaultClientRttMs)],
          plans,
        };
        knownRooms.set(req.roomId, known);
      } else {
        // Someone else changed the room between the basis and this allocation: what it holds now is unknown.
        knownRooms.delete(req.roomId);
      }
      // With the basis exact, its participants say whether the node is new to the room; else it may be.
      if (!known || former.length > 0 || !basis.participants.some((p) => p.participantId !== req.participantId && p.nodeId === decision.nodeId)) {
        this.deps.onRoomNodesChanged?.(req.roomId, former, known && { version: known.version, participants: known.participants, room: { policy: known.policy } });
      }
      if (outcome.replaced) this.deps.sessions.setStatus(outcome.replaced.allocationId, 'ended', new Date(nowMs));
      return this.finish(job, decision, node, participant, outcome.room.homeRegion);
    }
  }

  /**
   * POST /allocate/dry-run: where `place` would put the job's participant now, decided the same
   * way on the room as the store holds it (read, not remembered); nothing is written anywhere.
   */
  async preview(job: AllocationJob): Promise<AllocatePreview> {
    const { config, rooms, p2p } = this.deps;
    const { req, client } = job;
    const state = await rooms.getRoom(req.roomId);
    const basis = state ? this.#knownRoom(state) : NO_ROOM;
    if (basis.participants.filter((p) => p.participantId !== req.participantId).length >= config.maxRoomParticipants) throw roomFull(req.roomId, config.maxRoomParticipants);
    // The dry run refuses what /allocate would refuse before placing: another region policy than the room's.
    if (state && policyKey(state.room.policy) !== policyKey(job.policy)) throw policyConflict(req.roomId, state.room.policy, job.policy);
    const { view, result } = this.#decide(req, client, basis, new Set(), job.policy);
    const common = {
      dryRun: true as const,
      roomId: req.roomId,
      participantId: req.participantId,
      room: { exists: state !== null, homeRegion: basis.home?.region ?? null, participants: basis.participants.length },
      rttSource: client.source,
    };
    if (!result.ok) {
      return { ...common, mode: p2p && (job.policy === null || job.policy.allowP2p) ? 'p2p' : 'refused', homeRegion: null, region: null, node: null, cascade: { regions: [] }, reasons: [], candidates: result.candidates };
    }
    const { decision } = result;
    const node = view.snapshot.nodes.find((n) => n.nodeId === decision.nodeId)!;
    return {
      ...common,
      mode: 'sfu',
      homeRegion: decision.homeRegion,
      region: decision.region,
      node: { id: node.nodeId, region: node.region, signalingUrl: node.record.registration.signalingUrl },
      cascade: { regions: decision.cascadeRegions },
      reasons: decision.reasons,
      candidates: decision.candidates,
    };
  }

  /**
   * The placement of one participant on `basis` and the registry's view (nodes in `full` count as
   * full). A participant rebalancing told to move gets the planned edge while the plan lives and the
   * region can take it; otherwise it is placed as anyone else.
   */
  #decide(req: AllocateRequest, client: ClientRtt, basis: KnownRoom, full: ReadonlySet<string>, policy: NormalizedPolicy | null) {
    const view = this.deps.registry.placementView();
    const input = placementInput(this.#regionIds, this.deps.config, req, client, basis, view, full, policy);
    const plan = basis.plans.get(req.participantId);
    const planned = plan && plan.expiresAtMs > this.deps.now() ? followPlan(input, plan) : null;
    return { view, planned, result: planned ?? this.deps.strategy.place(input) };
  }

  /** The participant is placed (by the loop, or from local state): session row, decision observed, answer. */
  finish(job: AllocationJob, decision: PlacementDecision, node: NodeSnapshot, participant: ParticipantRecord, homeRegion: string): AllocateSfuResponse {
    const { config } = this.deps;
    recordSession(this.deps.sessions, job.req.roomId, participant, homeRegion);
    this.deps.onDecision?.(outcomeOf(decision, homeRegion, job.basis), performance.now() - job.started, {
      homeRegion,
      region: decision.region,
      clientRttMs: job.client.byRegion[decision.region] ?? config.defaultClientRttMs,
    });
    return sfuResponse(config, { req: job.req, client: job.client, decision, node, participant, homeRegion, permissions: job.permissions, policy: job.policy });
  }

  /** A fresh allocation record for a participant placed by `decision`. */
  newParticipant(participantId: string, decision: PlacementDecision, client: ClientRtt, nowMs: number): ParticipantRecord {
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

  /** No region can take the participant: a place in the room's P2P mesh, if it is not full and not on an SFU. */
  async #allocateP2p(job: AllocationJob, p2p: P2pAllocator, candidates: Parameters<P2pAllocator['allocate']>[2]): Promise<AllocateResponse> {
    let response;
    try {
      response = await p2p.allocate(job.req, job.client, candidates, job.policy);
    } catch (err) {
      if (err instanceof NoCapacityError) this.#refused(job);
      throw err;
    }
    this.deps.knownRooms.delete(job.req.roomId);
    this.deps.onDecision?.('p2p', performance.now() - job.started);
    return response;
  }

  #refused(job: AllocationJob): void {
    this.deps.onDecision?.('refused', performance.now() - job.started);
  }

  #knownRoom(state: RoomState): KnownRoom {
    return {
      version: state.version,
      home: { region: state.room.homeRegion, nodeId: state.room.homeNodeId },
      epoch: state.room.epoch,
      policy: state.room.policy,
      participants: state.participants.map((p) => placed(p, this.deps.config.defaultClientRttMs)),
      plans: new Map(state.plans.map((plan) => [plan.participantId, plan])),
    };
  }
}

/** 409 ROOM_FULL: the room holds GEO_SFU_MAX_ROOM_PARTICIPANTS. */
export function roomFull(roomId: string, limit: number): ConflictError {
  return new ConflictError(`room ${roomId} is full: it holds ${limit} participants (GEO_SFU_MAX_ROOM_PARTICIPANTS)`, 'ROOM_FULL');
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
