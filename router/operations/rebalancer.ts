import type { FastifyBaseLogger } from 'fastify';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { type MoveRequest, type Reason } from '../../shared/schemas/index.ts';
import { controlCall, controlPlane } from '../../shared/control-plane.ts';
import { proposeRebalance, type RebalanceProposal } from '../placement/rebalance.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import type { MovePlan, RoomState, RoomStore } from '../state/types.ts';

export interface RebalancerDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  rooms: RoomStore;
  now: () => number;
  log: FastifyBaseLogger;
  /** Asks a participant's agent to send it `moved`; default: the signed POST /v1/signaling/move. */
  tellAgent?: (controlUrl: string, body: MoveRequest) => Promise<void>;
  /** Observes every decision (metrics, dashboard). */
  onDecision?: (decision: RebalanceDecision) => void;
}

/**
 * moved: plans stored and agents told; stable: nothing better found; below_threshold: better, not
 * enough; plan_in_flight: an earlier plan is still live; raced: the room changed (or another router
 * planned it) between the read and the plan; failed: the store could not be read or written.
 */
export type RebalanceOutcome = 'moved' | 'stable' | 'below_threshold' | 'plan_in_flight' | 'raced' | 'failed';

export interface RebalanceDecision {
  roomId: string;
  at: string;
  outcome: RebalanceOutcome;
  participants: number;
  meanDelayBeforeMs: number | null;
  meanDelayAfterMs: number | null;
  moves: Array<{ participantId: string; from: string; to: string; gainMs: number; told: boolean }>;
  home: { from: string; to: string } | null;
  /** Time of the pure decision (proposeRebalance), ms. */
  decisionMs: number;
  reasons: Reason[];
}

/** Decisions kept for the dashboard. */
const RECENT_DECISIONS = 20;
/** After a lost race or a plan in flight, try the room again this long after the plan expires. */
const RETRY_SLACK_MS = 250;

/**
 * Live rebalancing, the I/O around proposeRebalance(): each join and leave schedules the room, a
 * debounce later the room is read, a proposal made, and when it moves anyone:
 *   1. the plans are stored in the room (compare-and-set on the room version, refused while another
 *      plan is live): of several routers sharing Redis that rebalance one room at once, exactly one
 *      succeeds, and a room changed since the read is not migrated on stale data;
 *   2. the room's home moves if nobody stays on it (compare-and-set on the epoch);
 *   3. each moved participant's agent is told (signed HTTP) to send it `moved`; the SDK allocates
 *      again, /allocate answers with the planned edge (followPlan), the SDK connects there,
 *      publishes and consumes, then leaves the old edge (make-before-break). Its new record
 *      carries `movedAtMs`, which the per-person window counts from.
 * A plan nobody follows expires (GEO_SFU_REBALANCE_PLAN_TTL_MS); the room is then looked at again.
 */
export class Rebalancer {
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Runs in progress per room: one at a time per room on this router. */
  readonly #running = new Map<string, Promise<RebalanceDecision | null>>();
  #recent: RebalanceDecision[] = [];
  #closed = false;
  readonly #tellAgent: (controlUrl: string, body: MoveRequest) => Promise<void>;

  constructor(private readonly deps: RebalancerDeps) {
    this.#tellAgent = deps.tellAgent ?? ((controlUrl, body) => tellAgentSigned(deps.config, controlUrl, body));
  }

  get enabled(): boolean {
    return this.deps.config.rebalance;
  }

  /** The last decisions that looked at a room with two or more people, newest first. */
  recent(): readonly RebalanceDecision[] {
    return this.#recent;
  }

  /** A join or leave in the room: rebalance it once things settle (debounced per room). */
  schedule(roomId: string, delayMs = this.deps.config.rebalanceDebounceMs): void {
    if (!this.enabled || this.#closed) return;
    const pending = this.#timers.get(roomId);
    if (pending) clearTimeout(pending);
    const timer = setTimeout(() => {
      this.#timers.delete(roomId);
      this.run(roomId).catch((err: unknown) => this.deps.log.error({ roomId, err }, 'rebalancing failed'));
    }, delayMs);
    timer.unref();
    this.#timers.set(roomId, timer);
  }

  /** Rebalances the room now (after any run in progress for it); null when the room has fewer than two people. */
  run(roomId: string): Promise<RebalanceDecision | null> {
    const previous = this.#running.get(roomId) ?? Promise.resolve(null);
    const next = previous.then(() => this.#run(roomId));
    this.#running.set(roomId, next);
    const forget = () => {
      if (this.#running.get(roomId) === next) this.#running.delete(roomId);
    };
    // Not `finally`: its promise would reject with `next`, and nobody awaits it (run's caller handles `next`).
    next.then(forget, forget);
    return next;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#running.values()]);
  }

  async #run(roomId: string): Promise<RebalanceDecision | null> {
    if (this.#closed) return null;
    const { config, rooms, now, log } = this.deps;
    let state: RoomState | null;
    try {
      state = await rooms.getRoom(roomId);
    } catch (err) {
      log.warn({ roomId, err: (err as Error).message }, 'rebalancing: room not readable');
      return this.#record(this.#decision(roomId, 'failed', 0, null, 0, [], null));
    }
    if (!state || state.participants.length < 2) return null;
    const nowMs = now();
    const live = state.plans.filter((plan) => plan.expiresAtMs > nowMs);
    if (live.length > 0) {
      this.schedule(roomId, Math.max(...live.map((plan) => plan.expiresAtMs)) - nowMs + RETRY_SLACK_MS);
      return this.#record(this.#decision(roomId, 'plan_in_flight', state.participants.length, null, 0, [], null));
    }
    const view = this.deps.registry.placementView();
    const started = performance.now();
    const proposal = proposeRebalance({
      regions: config.regions.map((r) => r.id),
      nodes: view.nodes,
      interRegionRtt: view.interRegionRtt,
      home: { region: state.room.homeRegion, nodeId: state.room.homeNodeId },
      participants: state.participants.map((p) => ({
        participantId: p.participantId,
        region: p.region,
        nodeId: p.nodeId,
        rttMs: p.rttMs,
        status: p.status,
        lastMovedAtMs: p.movedAtMs ?? null,
      })),
      nowMs,
      policy: state.room.policy,
      thresholds: { minRoomGainMs: config.rebalanceMinRoomGainMs, minPersonGainMs: config.rebalanceMinPersonGainMs, personWindowMs: config.rebalanceWindowMs },
    });
    const decisionMs = performance.now() - started;
    const n = state.participants.length;
    if (proposal.moves.length === 0) {
      const outcome = proposal.reasons[0]?.code === 'REBALANCE_GAIN_BELOW_THRESHOLD' ? 'below_threshold' : 'stable';
      return this.#record(this.#decision(roomId, outcome, n, proposal, decisionMs, [], null));
    }

    const allocationOf = new Map(state.participants.map((p) => [p.participantId, p.allocationId]));
    const why = `room mean one-way delay ${proposal.meanDelayBeforeMs!.toFixed(1)} → ${proposal.meanDelayAfterMs!.toFixed(1)} ms`;
    const plans: MovePlan[] = proposal.moves.map((m) => ({
      participantId: m.participantId,
      allocationId: allocationOf.get(m.participantId)!,
      region: m.to.region,
      nodeId: m.to.nodeId,
      why,
      plannedAtMs: nowMs,
      expiresAtMs: nowMs + config.rebalancePlanTtlMs,
    }));
    let planned: number | null;
    try {
      planned = await rooms.planMoves(roomId, state.version, plans, nowMs);
    } catch (err) {
      log.warn({ roomId, err: (err as Error).message }, 'rebalancing: plans not stored');
      return this.#record(this.#decision(roomId, 'failed', n, proposal, decisionMs, [], null));
    }
    if (planned === null) {
      // The room changed since it was read (its change scheduled it again) or another router planned it.
      return this.#record(this.#decision(roomId, 'raced', n, proposal, decisionMs, [], null));
    }
    let home: RebalanceDecision['home'] = null;
    if (proposal.homeChanged) {
      const moved = await rooms.rehome(roomId, state.room.epoch, proposal.home).catch(() => null);
      if (moved) home = { from: state.room.homeRegion, to: moved.homeRegion };
    }
    const controlUrls = new Map(view.snapshot.nodes.map((node) => [node.nodeId, node.record.registration.controlUrl]));
    const moves = await Promise.all(
      proposal.moves.map(async (m) => {
        const controlUrl = controlUrls.get(m.from.nodeId);
        let told = false;
        if (controlUrl) {
          try {
            await this.#tellAgent(controlUrl, { roomId, participantId: m.participantId, allocationId: allocationOf.get(m.participantId)! });
            told = true;
          } catch (err) {
            // The plan stays until it expires: the participant may still allocate again on its own.
            log.warn({ roomId, participantId: m.participantId, nodeId: m.from.nodeId, err: (err as Error).message }, 'rebalancing: agent not told');
          }
        }
        return { participantId: m.participantId, from: m.from.region, to: m.to.region, gainMs: m.gainMs, told };
      }),
    );
    return this.#record(this.#decision(roomId, 'moved', n, proposal, decisionMs, moves, home));
  }

  #decision(
    roomId: string,
    outcome: RebalanceOutcome,
    participants: number,
    proposal: RebalanceProposal | null,
    decisionMs: number,
    moves: RebalanceDecision['moves'],
    home: RebalanceDecision['home'],
  ): RebalanceDecision {
    return {
      roomId,
      at: new Date(this.deps.now()).toISOString(),
      outcome,
      participants,
      meanDelayBeforeMs: proposal?.meanDelayBeforeMs ?? null,
      meanDelayAfterMs: outcome === 'moved' ? (proposal?.meanDelayAfterMs ?? null) : (proposal?.meanDelayBeforeMs ?? null),
      moves,
      home,
      decisionMs,
      reasons: proposal ? [...proposal.reasons, ...proposal.moves.flatMap((m) => m.reasons)] : [],
    };
  }

  #record(decision: RebalanceDecision): RebalanceDecision {
    this.#recent = [decision, ...this.#recent].slice(0, RECENT_DECISIONS);
    const { log } = this.deps;
    const fields = { roomId: decision.roomId, outcome: decision.outcome, participants: decision.participants, moves: decision.moves, home: decision.home, reasons: decision.reasons };
    if (decision.outcome === 'moved') log.info(fields, 'rebalancing: participants moved');
    else log.debug(fields, 'rebalancing: room kept');
    this.deps.onDecision?.(decision);
    return decision;
  }
}

async function tellAgentSigned(config: GeoSfuConfig, controlUrl: string, body: MoveRequest): Promise<void> {
  await controlCall(controlPlane.move, { secret: config.clusterSecret, baseUrl: controlUrl, timeoutMs: config.routerCallTimeoutMs, nowMs: Date.now() }, body);
}
