import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import type { AllocatePreview, AllocateRequest, AllocateResponse, AllocateSfuResponse } from '../../shared/schemas/index.ts';
import type { Permissions } from '../../shared/tokens.ts';
import type { PlacementStrategy } from '../placement/types.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import type { RoomStore, SessionLog } from '../state/types.ts';
import { policyKey } from '../../shared/schemas/index.ts';
import { type AllocationJob, type Allocator, MAX_PLACEMENT_ATTEMPTS, roomFull } from './allocate.ts';
import type { DegradedJournal, JournalEntry, ReplayResult } from './degraded-journal.ts';
import { policyConflict } from './policy-refusals.ts';
import type { KnownRooms } from './known-rooms.ts';
import { placed, placementInput } from './placement-input.ts';

export interface DegradedAllocatorDeps {
  config: GeoSfuConfig;
  /** The allocation loop this wraps. */
  loop: Allocator;
  registry: NodeRegistry;
  rooms: RoomStore;
  sessions: SessionLog;
  strategy: PlacementStrategy;
  /** The rooms as this router last saw them (shared with the loop). */
  knownRooms: KnownRooms;
  /** Where allocations made while Redis is away wait for it (on disk: see DegradedJournal.open). */
  journal: DegradedJournal;
  now: () => number;
  /** An allocation was made from local state while Redis was away (see GEO_SFU_DEGRADED_ALLOCATION). */
  onDegradedAllocation?: () => void;
  /** A journaled allocation was written to Redis when it came back. */
  onReplayed?: (result: ReplayResult) => void;
}

/**
 * The allocator as /allocate calls it: the allocation loop (allocate.ts), wrapped for Redis
 * outages. While Redis is away it places from this router's last view of the room and journals
 * the allocation; the journal goes to Redis, oldest first, before any new allocation once it is
 * back (and on the router's replay ticker, GEO_SFU_JOURNAL_REPLAY_INTERVAL_MS).
 */
export class DegradedAllocator {
  readonly #regionIds: readonly string[];
  readonly #journal: DegradedJournal;
  /** The journal replay running now, shared by every caller waiting for it. */
  #replaying: Promise<void> | null = null;

  constructor(private readonly deps: DegradedAllocatorDeps) {
    this.#regionIds = deps.config.regions.map((r) => r.id);
    this.#journal = deps.journal;
  }

  /**
   * `permissions` (the grant's, or what an API caller asked: see allocationPermissions) travel in the
   * join token for the SFU to enforce; `grantIssuedAtMs` (the grant's iat) is refused when an admin
   * removed the participant since.
   */
  async allocate(req: AllocateRequest, clientIp: string | null, permissions?: Permissions, grantIssuedAtMs?: number): Promise<AllocateResponse> {
    const { loop, knownRooms } = this.deps;
    const job = loop.prepare(req, clientIp, permissions, grantIssuedAtMs);
    if (this.#journal.size > 0) {
      // Allocations made while Redis was away go to Redis before any new one.
      try {
        await this.replayJournal();
      } catch (err) {
        if (!(err instanceof DependencyUnavailableError)) throw err;
        return this.#allocateDegraded(job, err);
      }
      job.basis = knownRooms.get(req.roomId);
    }
    try {
      return await loop.place(job);
    } catch (err) {
      if (!(err instanceof DependencyUnavailableError)) throw err;
      return this.#allocateDegraded(job, err);
    }
  }

  /** The journal, for the other kinds of entries it keeps (application webhook occurrences). */
  get journal(): DegradedJournal {
    return this.#journal;
  }

  /** POST /allocate/dry-run: the loop's decision on the room as Redis holds it, nothing written (503 while Redis is away). */
  preview(req: AllocateRequest, clientIp: string | null): Promise<AllocatePreview> {
    const { loop } = this.deps;
    return loop.preview(loop.prepare(req, clientIp, undefined, undefined));
  }

  /** Allocations made while Redis was away and not yet written there. */
  journalSize(): number {
    return this.#journal.size;
  }

  /**
   * A participant of a journaled allocation joined (true) or left its node: recorded in the journal,
   * which writes it to Redis with the allocation (resolved once on disk). False when the allocation
   * is not journaled.
   */
  journalEvent(allocationId: string, event: 'joined' | 'left'): Promise<boolean> {
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
      this.deps.knownRooms.delete(entry.roomId);
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
        await this.#journal.remove(allocationId);
        return 'already_applied';
      }
      if (current && current.allocatedAtMs > entry.participant.allocatedAtMs) {
        await this.#journal.remove(allocationId);
        sessions.setStatus(allocationId, 'ended', new Date(now()));
        return 'superseded';
      }
      const written = entry.participant;
      const outcome = await rooms.allocate({
        roomId: entry.roomId,
        proposedHome: entry.home,
        policy: entry.policy,
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
        await this.#journal.remove(allocationId);
        return outcome.room.epoch === entry.epoch && outcome.room.homeRegion === entry.home.region ? 'applied' : 'rehomed';
      }
      if (outcome.status === 'p2p' || outcome.status === 'policy_conflict' || attempt >= MAX_PLACEMENT_ATTEMPTS * 2) {
        // The room became a P2P mesh, or was forgotten and created again with another policy (or
        // keeps changing under us): the participant's join fails and the SDK allocates again.
        await this.#journal.remove(allocationId);
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
   * placed on it since. Journaled for Redis (on disk before the answer); the token and session row
   * are as usual.
   */
  async #allocateDegraded(job: AllocationJob, cause: DependencyUnavailableError): Promise<AllocateSfuResponse> {
    const { config, now, loop } = this.deps;
    const { req, client, basis } = job;
    const home = basis.home;
    if (!config.degradedAllocation || home === null) throw cause;
    if (policyKey(basis.policy) !== policyKey(job.policy)) throw policyConflict(req.roomId, basis.policy, job.policy);
    const others = basis.participants.filter((p) => p.participantId !== req.participantId);
    if (config.maxRoomParticipants > 0 && others.length >= config.maxRoomParticipants) throw roomFull(req.roomId, config.maxRoomParticipants);
    const view = this.deps.registry.placementView(false);
    const serving = new Set([home.nodeId, ...basis.participants.map((p) => p.nodeId)]);
    const excluded = new Set(req.excludeNodeIds ?? []);
    // A participant allocating again reuses its own journaled seat.
    const ownSeat = this.#journal.heldBy(req.roomId, req.participantId)?.participant.nodeId;
    for (const n of view.snapshot.nodes) {
      const used = Math.max(n.reserved, n.record.heartbeat?.load.participants ?? 0);
      const taken = this.#journal.seatsTaken(n.nodeId) - (n.nodeId === ownSeat ? 1 : 0);
      const budget = Math.min(config.degradedSeatsPerNode, n.maxParticipants - used) - taken;
      if (!serving.has(n.nodeId) || budget <= 0) excluded.add(n.nodeId);
    }
    const result = this.deps.strategy.place(placementInput(this.#regionIds, config, { ...req, excludeNodeIds: [...excluded] }, client, basis, view, new Set(), job.policy));
    if (!result.ok || result.decision.homeRegion !== home.region || !serving.has(result.decision.nodeId)) {
      throw new DependencyUnavailableError(
        `${cause.message}; room ${req.roomId} cannot be placed from local state (no node already serving it with degraded budget left in its home or edge regions)`,
      );
    }
    const { decision } = result;
    const node = view.snapshot.nodes.find((n) => n.nodeId === decision.nodeId)!;
    const nowMs = now();
    const participant = loop.newParticipant(req.participantId, decision, client, nowMs);
    const earlier = await this.#journal.add({ roomId: req.roomId, participant, home, epoch: basis.epoch, policy: basis.policy });
    if (earlier) this.deps.sessions.setStatus(earlier.participant.allocationId, 'ended', new Date(nowMs));
    // Same version: the room in Redis does not have this participant yet, so a later compare-and-set on it must fail.
    this.deps.knownRooms.set(req.roomId, { ...basis, participants: [...others, placed(participant, config.defaultClientRttMs)] });
    this.deps.onDegradedAllocation?.();
    return loop.finish(job, decision, node, participant, home.region);
  }
}
