import type { NormalizedPolicy, Reason } from '../../shared/schemas/index.ts';
import { assessPlacement, decide, ms, reason } from './decision.ts';
import { assessRegions, nodeExclusion } from './eligibility.ts';
import type { InterRegionRtt, PlacementInput, PlacementNode, PlacementResult } from './types.ts';
import { own } from '../../shared/own.ts';

/**
 * Live rebalancing, the pure part. Participants arrive one at a time, so a room's early edges are
 * chosen before its shape is known (one person in Paris, then everyone in Asia: greedy placement
 * keeps the room on eu-west). Given the room as it is now, this finds a better assignment of edges
 * for the participants that may move, and proposes moves only when they pay:
 *   - the room's mean pairwise one-way delay drops by more than `minRoomGainMs`;
 *   - each moved participant's own mean delay to the others drops by at least `minPersonGainMs`;
 *   - nobody moves twice within `personWindowMs`, nobody not joined yet, nobody whose node is
 *     leaving anyway (drain and failover move those), and nobody to a region without an eligible
 *     node (stress, health, cordon and drain rules of placement) or that the room's policy does not allow.
 *
 * The objective is the router's (delay.ts): summed over ordered pairs,
 *   T = (n − 1) Σ_i rtt_i(A_i) + ½ Σ_{X,Y} c_X c_Y R(X, Y),   c_X = participants on X,
 * so moving k participants from A to B changes it by
 *   (n − 1) Σ_k (rtt(B) − rtt(A)) + k (S_B − S_A) − k² R(A, B),   S_X = Σ_Y c_Y R(X, Y),
 * which costs O(regions) per move once S is known. The search is local descent (single moves and
 * best group moves between two regions) from several starts: the current assignment, everyone
 * movable on one region (for each region), everyone on their nearest region; the best result wins.
 */

export interface RebalanceParticipant {
  participantId: string;
  region: string;
  nodeId: string;
  /** The participant's RTT to every catalog region, ms (as it reported them to /allocate). */
  rttMs: Readonly<Record<string, number>>;
  status: 'allocated' | 'joined';
  /** When rebalancing last moved this participant (wall-clock ms), null if never. */
  lastMovedAtMs: number | null;
}

export interface RebalanceThresholds {
  /** The room's mean pairwise one-way delay must drop by more than this, ms. */
  minRoomGainMs: number;
  /** Each moved participant's own mean one-way delay to the others must drop by at least this, ms. */
  minPersonGainMs: number;
  /** A participant moved by rebalancing is not moved again within this, ms. */
  personWindowMs: number;
}

export interface RebalanceInput {
  /** Catalog order; breaks ties. */
  regions: readonly string[];
  nodes: readonly PlacementNode[];
  interRegionRtt: InterRegionRtt;
  home: { region: string; nodeId: string };
  participants: readonly RebalanceParticipant[];
  /** Wall clock, ms (for the per-person window). */
  nowMs: number;
  thresholds: RebalanceThresholds;
  /** The room's region policy: no participant is moved to a region it does not allow. */
  policy?: NormalizedPolicy | null;
}

export interface RebalanceMove {
  participantId: string;
  from: { region: string; nodeId: string };
  to: { region: string; nodeId: string };
  /** How much the participant's own mean one-way delay to the others drops, ms. */
  gainMs: number;
  reasons: Reason[];
}

export interface RebalanceProposal {
  moves: RebalanceMove[];
  /** The room's home after the moves (changed only when nobody stays on the home region). */
  home: { region: string; nodeId: string };
  homeChanged: boolean;
  /** Mean pairwise one-way delay now and after the moves (equal when nobody moves); null under two people. */
  meanDelayBeforeMs: number | null;
  meanDelayAfterMs: number | null;
  /** Why the room moves or stays, then why some participants were kept in place. */
  reasons: Reason[];
}

/** Improvements below this are float noise, not gains (the sums are of thousands of terms). */
const EPSILON_MS = 1e-7;

export function proposeRebalance(input: RebalanceInput): RebalanceProposal {
  const { regions, participants, interRegionRtt, thresholds } = input;
  const n = participants.length;
  const R = regions.length;
  const stay = (reasons: Reason[], before: number | null): RebalanceProposal => ({
    moves: [],
    home: input.home,
    homeChanged: false,
    meanDelayBeforeMs: before,
    meanDelayAfterMs: before,
    reasons,
  });
  if (n < 2) return stay([reason('REBALANCE_ROOM_AT_BEST', `${n} participant${n === 1 ? '' : 's'}: no pair to bring closer`)], null);

  const regionIndex = new Map(regions.map((r, i) => [r, i]));
  const inter = regions.map((a) => regions.map((b) => (a === b ? 0 : interRegionRtt(a, b))));
  // Eligible regions and the node each would get, as placement decides them for this room.
  const assessments = assessRegions(roomPlacementInput(input));
  const targetNode = assessments.map((a) => a.choice?.node.nodeId ?? null);
  const nodesById = new Map(input.nodes.map((node) => [node.nodeId, node]));

  const rtt: Float64Array[] = [];
  const current = new Int32Array(n);
  const movable: boolean[] = [];
  const kept: Reason[] = [];
  for (const [i, p] of participants.entries()) {
    const row = new Float64Array(R);
    for (let a = 0; a < R; a++) row[a] = own(p.rttMs, regions[a]!) ?? Number.POSITIVE_INFINITY;
    rtt.push(row);
    const at = regionIndex.get(p.region);
    if (at === undefined) throw new RangeError(`participant ${p.participantId} is on region ${p.region}, not in the catalog`);
    current[i] = at;
    const node = nodesById.get(p.nodeId);
    let why: Reason | null = null;
    if (p.status !== 'joined') {
      why = reason('REBALANCE_NOT_JOINED', `${p.participantId} is not joined yet: kept on ${p.region}`, { region: p.region });
    } else if (p.lastMovedAtMs !== null && input.nowMs - p.lastMovedAtMs < thresholds.personWindowMs) {
      why = reason('REBALANCE_RECENTLY_MOVED', `${p.participantId} moved ${ms(input.nowMs - p.lastMovedAtMs)} ago (window ${ms(thresholds.personWindowMs)}): kept on ${p.region}`, {
        region: p.region,
        valueMs: input.nowMs - p.lastMovedAtMs,
      });
    } else if (!node || nodeExclusion(node, new Set()) !== null) {
      const cause = node ? nodeExclusion(node, new Set()) : 'NO_NODES';
      why = reason('REBALANCE_NODE_UNAVAILABLE', `${p.participantId}'s node ${p.nodeId} is out (${cause}): drain or failover moves it`, { region: p.region, nodeId: p.nodeId });
    }
    movable.push(why === null);
    if (why) kept.push(why);
  }

  // allowed[i * R + a]: participant i may be on region a (its own region always).
  const allowed = new Uint8Array(n * R);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < R; a++) allowed[i * R + a] = a === current[i] || (movable[i]! && targetNode[a] !== null && Number.isFinite(rtt[i]![a]!)) ? 1 : 0;
  }
  const search = new Search(rtt, inter);
  const before = search.total(current);
  const ownBefore = search.ownMeanDelays(current);
  const meanOf = (total: number) => total / (n * (n - 1));

  // Participants kept in place because their own gain was too small (value: that gain, ms).
  const pinned = new Map<number, number>();
  let best: Int32Array = current;
  for (let round = 0; round <= n; round++) {
    // Later rounds only need to re-settle around the newly kept: from the last result, with them back.
    best = round === 0 ? search.best(current, allowed) : search.best(current, allowed, best.map((a, i) => (allowed[i * R + a] ? a : current[i]!)));
    const ownAfter = search.ownMeanDelays(best);
    let small = 0;
    for (let i = 0; i < n; i++) {
      if (best[i] === current[i]) continue;
      const gain = ownBefore[i]! - ownAfter[i]!;
      if (gain < thresholds.minPersonGainMs) {
        pinned.set(i, gain);
        for (let a = 0; a < R; a++) if (a !== current[i]) allowed[i * R + a] = 0;
        small++;
      }
    }
    if (small === 0) break;
  }
  for (const [i, gain] of pinned) {
    const p = participants[i]!;
    kept.push(
      reason('REBALANCE_PERSON_GAIN_TOO_SMALL', `${p.participantId} would ${gain < 0 ? `lose ${ms(-gain)}` : `gain only ${ms(gain)}`} moving with the room (minimum ${ms(thresholds.minPersonGainMs)}): kept on ${p.region}`, {
        region: p.region,
        valueMs: gain,
      }),
    );
  }

  const beforeMs = meanOf(before);
  const afterMs = meanOf(search.total(best));
  const gainMs = beforeMs - afterMs;
  if (gainMs <= EPSILON_MS) {
    return stay([reason('REBALANCE_ROOM_AT_BEST', `no better assignment of the ${n} participants found (mean one-way delay ${ms(beforeMs)})`, { valueMs: beforeMs }), ...kept], beforeMs);
  }
  if (gainMs <= thresholds.minRoomGainMs) {
    return stay(
      [
        reason('REBALANCE_GAIN_BELOW_THRESHOLD', `moving would lower the mean one-way delay by ${ms(gainMs)} (${ms(beforeMs)} → ${ms(afterMs)}), not more than ${ms(thresholds.minRoomGainMs)}`, {
          valueMs: gainMs,
        }),
        ...kept,
      ],
      beforeMs,
    );
  }

  const moves: RebalanceMove[] = [];
  const ownAfter = search.ownMeanDelays(best);
  for (let i = 0; i < n; i++) {
    if (best[i] === current[i]) continue;
    const p = participants[i]!;
    const to = { region: regions[best[i]!]!, nodeId: targetNode[best[i]!]! };
    const own = ownBefore[i]! - ownAfter[i]!;
    moves.push({
      participantId: p.participantId,
      from: { region: p.region, nodeId: p.nodeId },
      to,
      gainMs: own,
      reasons: [
        reason('REBALANCE_MOVE', `${p.participantId}: ${p.region} → ${to.region}, its mean one-way delay to the others ${ms(ownBefore[i]!)} → ${ms(ownAfter[i]!)}`, {
          region: to.region,
          nodeId: to.nodeId,
          valueMs: own,
        }),
      ],
    });
  }
  const { home, changed } = homeAfter(input, best, targetNode);
  return {
    moves,
    home,
    homeChanged: changed,
    meanDelayBeforeMs: beforeMs,
    meanDelayAfterMs: afterMs,
    reasons: [
      reason('REBALANCE_MOVE', `moving ${moves.length} of ${n} participants lowers the room's mean one-way delay ${ms(beforeMs)} → ${ms(afterMs)} (by ${ms(gainMs)})`, { valueMs: gainMs }),
      ...(changed ? [reason('REBALANCE_HOME_MOVED', `nobody stays on ${input.home.region}: home moves to ${home.region}`, { region: home.region, nodeId: home.nodeId })] : []),
      ...kept,
    ],
  };
}

/**
 * The allocation of a participant that rebalancing told to move: the planned region, on the node
 * placement would pick there, if the region can still take it; null otherwise (then the normal
 * strategy places it, as if there were no plan).
 */
export function followPlan(input: PlacementInput, plan: { region: string; why: string }): PlacementResult | null {
  const ctx = assessPlacement(input);
  const option = ctx.eligible.find((o) => o.region === plan.region);
  if (!option || ctx.home === null) return null;
  return decide(ctx, option, [reason('REBALANCE_PLANNED', `${plan.region} planned by rebalancing: ${plan.why}`, { region: plan.region })]);
}

/** The room as placement's eligibility step sees it (nobody excluded by a client). */
function roomPlacementInput(input: RebalanceInput): PlacementInput {
  return {
    regions: input.regions,
    nodes: input.nodes,
    interRegionRtt: input.interRegionRtt,
    client: { byRegion: {}, source: 'client', estimatedRegions: [] },
    room: {
      homeRegion: input.home.region,
      homeNodeId: input.home.nodeId,
      participants: input.participants.map((p) => ({ participantId: p.participantId, region: p.region, nodeId: p.nodeId, edgeRttMs: own(p.rttMs, p.region) ?? 0 })),
    },
    excludeNodeIds: [],
    marginMs: 0,
    policy: input.policy ?? null,
  };
}

/** Home stays unless nobody is left on its region; then the region with most participants (catalog order on ties). */
function homeAfter(input: RebalanceInput, assignment: Int32Array, targetNode: ReadonlyArray<string | null>): { home: { region: string; nodeId: string }; changed: boolean } {
  const counts = new Array<number>(input.regions.length).fill(0);
  for (const a of assignment) counts[a]!++;
  const homeIndex = input.regions.indexOf(input.home.region);
  if (homeIndex !== -1 && counts[homeIndex]! > 0) return { home: input.home, changed: false };
  let top = 0;
  for (let a = 1; a < counts.length; a++) if (counts[a]! > counts[top]!) top = a;
  // Someone is on `top`: a participant kept there has its own node, a moved one the target node.
  const stayer = input.participants.find((p, i) => assignment[i] === top && p.region === input.regions[top]);
  const nodeId = stayer?.nodeId ?? targetNode[top]!;
  return { home: { region: input.regions[top]!, nodeId }, changed: true };
}

/** Local descent on T (see the top of the file), from several starts. */
class Search {
  readonly n: number;
  readonly R: number;
  /** byGain[a * R + b]: every participant, by rtt(b) − rtt(a) ascending (the group-move order from a to b). */
  readonly #byGain: Int32Array[] = [];

  constructor(
    readonly rtt: readonly Float64Array[],
    readonly inter: readonly (readonly number[])[],
  ) {
    this.n = rtt.length;
    this.R = inter.length;
    for (let a = 0; a < this.R; a++) {
      for (let b = 0; b < this.R; b++) {
        const order = Int32Array.from(rtt.keys());
        if (a !== b) order.sort((x, y) => rtt[x]![b]! - rtt[x]![a]! - (rtt[y]![b]! - rtt[y]![a]!));
        this.#byGain.push(order);
      }
    }
  }

  /** T of an assignment (sum over ordered pairs of one-way delay). */
  total(assignment: Int32Array): number {
    const counts = this.counts(assignment);
    let linear = 0;
    for (let i = 0; i < this.n; i++) linear += this.rtt[i]![assignment[i]!]!;
    let quadratic = 0;
    for (let x = 0; x < this.R; x++) for (let y = 0; y < this.R; y++) quadratic += counts[x]! * counts[y]! * this.inter[x]![y]!;
    return (this.n - 1) * linear + quadratic / 2;
  }

  /** Each participant's mean one-way delay to the others under `assignment`, in O(n + regions²). */
  ownMeanDelays(assignment: Int32Array): Float64Array {
    const { n, R, rtt, inter } = this;
    const counts = this.counts(assignment);
    let edgeSum = 0;
    for (let i = 0; i < n; i++) edgeSum += rtt[i]![assignment[i]!]!;
    const S = new Float64Array(R);
    for (let x = 0; x < R; x++) for (let y = 0; y < R; y++) S[x]! += counts[y]! * inter[x]![y]!;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const own = rtt[i]![assignment[i]!]!;
      // Others: Σ_j≠i inter(A_i, A_j) + rtt_j(A_j); inter(A_i, A_i) = 0 drops i itself from S.
      out[i] = (own + (S[assignment[i]!]! + edgeSum - own) / (n - 1)) / 2;
    }
    return out;
  }

  /**
   * The best assignment the descents reach; `allowed[i * regions + a]` says whether participant i
   * may be on a. Starts: `from` when given (and the current assignment), else the full set.
   */
  best(current: Int32Array, allowed: Uint8Array, from?: Int32Array): Int32Array {
    const { R } = this;
    const starts: Int32Array[] = [current];
    if (from) starts.push(from);
    else {
      for (let a = 0; a < R; a++) starts.push(current.map((at, i) => (allowed[i * R + a] ? a : at)));
      starts.push(
        current.map((at, i) => {
          let bestA = at;
          for (let a = 0; a < R; a++) if (allowed[i * R + a] && this.rtt[i]![a]! < this.rtt[i]![bestA]!) bestA = a;
          return bestA;
        }),
      );
    }
    let best: Int32Array = current;
    let bestTotal = this.total(current);
    for (const start of starts) {
      const assignment = this.descend(Int32Array.from(start), allowed);
      const total = this.total(assignment);
      if (total < bestTotal - EPSILON_MS) {
        best = assignment;
        bestTotal = total;
      }
    }
    return best;
  }

  counts(assignment: Int32Array): Float64Array {
    const counts = new Float64Array(this.R);
    for (const a of assignment) counts[a]!++;
    return counts;
  }

  descend(assignment: Int32Array, allowed: Uint8Array): Int32Array {
    const { n, R, rtt, inter } = this;
    const counts = this.counts(assignment);
    const S = new Float64Array(R);
    const refreshS = () => {
      for (let x = 0; x < R; x++) {
        let s = 0;
        for (let y = 0; y < R; y++) s += counts[y]! * inter[x]![y]!;
        S[x] = s;
      }
    };
    const move = (i: number, to: number) => {
      counts[assignment[i]!]!--;
      counts[to]!++;
      assignment[i] = to;
    };
    refreshS();
    const ids = new Int32Array(n);
    const gains = new Float64Array(n);
    for (let pass = 0; pass < 100; pass++) {
      // Single moves until none helps: each participant to its best region given everyone else.
      for (let round = 0; round < 100; round++) {
        let moved = false;
        for (let i = 0; i < n; i++) {
          const a = assignment[i]!;
          let bestB = a;
          let bestDelta = -EPSILON_MS;
          const row = rtt[i]!;
          for (let b = 0; b < R; b++) {
            if (b === a || !allowed[i * R + b]) continue;
            const delta = (n - 1) * (row[b]! - row[a]!) + S[b]! - S[a]! - inter[a]![b]!;
            if (delta < bestDelta) {
              bestDelta = delta;
              bestB = b;
            }
          }
          if (bestB !== a) {
            move(i, bestB);
            refreshS();
            moved = true;
          }
        }
        if (!moved) break;
      }
      // Group moves: the k participants of A who lose least (gain most) going to B, best k. A
      // group can pay where no single member's move does (the cascade hop is shared).
      let improved = false;
      for (let a = 0; a < R; a++) {
        for (let b = 0; b < R; b++) {
          if (a === b || counts[a]! < 2) continue;
          let size = 0;
          for (const i of this.#byGain[a * R + b]!) {
            if (assignment[i] === a && allowed[i * R + b]) {
              ids[size] = i;
              gains[size++] = rtt[i]![b]! - rtt[i]![a]!;
            }
          }
          if (size < 2) continue;
          let prefix = 0;
          let bestK = 0;
          let bestDelta = -EPSILON_MS;
          for (let k = 1; k <= size; k++) {
            prefix += gains[k - 1]!;
            const delta = (n - 1) * prefix + k * (S[b]! - S[a]!) - k * k * inter[a]![b]!;
            if (delta < bestDelta) {
              bestDelta = delta;
              bestK = k;
            }
          }
          if (bestK > 0) {
            for (let k = 0; k < bestK; k++) move(ids[k]!, b);
            refreshS();
            improved = true;
          }
        }
      }
      if (!improved) break;
    }
    return assignment;
  }
}
