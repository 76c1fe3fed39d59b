import type { LatencyDataset } from './dataset.ts';
import { optimum, structuredOptimum, type OptimumMethod, type OptimumProblem } from './optimum.ts';
import { policies, routerStrategy, runPolicy, simContext, type PolicyRun, type SimContext } from './policies.ts';
import { runRebalancing } from './rebalancing.ts';
import { DEFAULT_MIX, generateRooms, randomOrders, reordered, type RoomMix, type SimRoom } from './rooms.ts';
import { finalAssignment, finalRoomProblem, scoreAssignment, type RoomScore } from './score.ts';

export const OPTIMUM = 'optimum';
/** A room where the router is this much above the optimum gets an explanation. */
export const OUTLIER_GAP_PCT = 5;
const EXPLAIN_ORDERS = 24;

export interface SimulationOptions {
  seed: number;
  rooms: number;
  mix?: RoomMix;
  /** Solve every exhaustively solved room again with the structured method and require the same optimum. */
  crossCheck?: boolean;
}

export interface RoomResult {
  id: string;
  kind: SimRoom['kind'];
  continents: string[];
  size: number;
  arrivals: number;
  leaves: number;
  optimum: { method: OptimumMethod; meanMs: number; lowerBoundMs: number; exact: boolean };
  scores: Record<string, RoomScore>;
}

export interface PolicySummary {
  policy: string;
  label: string;
  /** Mean over rooms of the room's mean pair delay, ms. */
  meanRoomMeanMs: number;
  /** Mean over rooms of the room's p95 pair delay, ms. */
  meanRoomP95Ms: number;
  /** Mean over rooms of the room's worst pair, ms. */
  meanRoomWorstMs: number;
  /** Worst pair of all rooms, ms. */
  worstPairMs: number;
  /** Pairs over G.114's 150 ms one-way, % of all pairs of all rooms. */
  pairsOver150Pct: number;
  regionsPerRoom: number;
  migrationsPerParticipant: number;
  /** Mean over rooms of (room mean − optimum) / optimum, %. */
  gapToOptimumPct: number;
  /** Σ room means / Σ optimum room means − 1, %. */
  aggregateGapPct: number;
  /** Rooms within 0.1% of the optimum, %. */
  roomsAtOptimumPct: number;
}

export interface Outlier {
  room: string;
  kind: SimRoom['kind'];
  size: number;
  gapPct: number;
  cause: 'measurement noise' | 'leaves' | 'arrival order' | 'greedy limit';
  why: string;
  router: string;
  optimum: string;
}

export interface SimulationResult {
  rooms: RoomResult[];
  policies: PolicySummary[];
  outliers: Outlier[];
  optimumMethods: Record<OptimumMethod, number>;
  /** Exhaustive optima re-derived by the structured method (all equal, or simulate throws). */
  crossChecked: number;
  /** Every pair delay of every room, per policy (for the CDF). */
  pairDelays: Record<string, number[]>;
  /** Wall time of every proposeRebalance() call of the rebalancing policy, ms (rooms of 2–50). */
  rebalanceMs: number[];
}

export function simulate(ds: LatencyDataset, opts: SimulationOptions): SimulationResult {
  const ctx = simContext(ds);
  const rooms = generateRooms(ds, { seed: opts.seed, count: opts.rooms, mix: opts.mix ?? DEFAULT_MIX });
  const specs = policies(ctx, opts.seed);
  const pairDelays: Record<string, number[]> = Object.fromEntries([...specs.map((s) => s.id), OPTIMUM].map((id) => [id, []]));
  const results: RoomResult[] = [];
  const outliers: Outlier[] = [];
  const optimumMethods: Record<OptimumMethod, number> = { exhaustive: 0, structured: 0, bounded: 0 };
  let crossChecked = 0;
  const rebalanceMs: number[] = [];
  for (const room of rooms) {
    const problem = finalRoomProblem(ds, room);
    const best = optimum(problem);
    optimumMethods[best.method]++;
    if (opts.crossCheck && best.method === 'exhaustive') {
      const structured = structuredOptimum(problem);
      if (structured && Math.abs(structured.meanMs - best.meanMs) > 1e-6 * Math.max(1, best.meanMs)) {
        throw new Error(`${room.id}: exhaustive optimum ${best.meanMs} ms, structured ${structured.meanMs} ms`);
      }
      if (structured) crossChecked++;
    }
    const scores: Record<string, RoomScore> = { [OPTIMUM]: scoreAssignment(ctx, problem, best.assignment, pairDelays[OPTIMUM]) };
    let routerRun: PolicyRun | null = null;
    for (const spec of specs) {
      if (spec.rebalancing) {
        const run = runRebalancing(ctx, room, spec.rebalancing);
        scores[spec.id] = { ...scoreAssignment(ctx, problem, finalAssignment(ds, room, run.regionOf), pairDelays[spec.id]), migrations: run.migrations };
        for (const t of run.rebalanceMs) rebalanceMs.push(t);
        continue;
      }
      const run = runPolicy(ctx, room, spec.chooser);
      if (spec.id === 'min-delay') routerRun = run;
      scores[spec.id] = scoreAssignment(ctx, problem, finalAssignment(ds, room, run.regionOf), pairDelays[spec.id]);
    }
    const leaves = room.events.filter((e) => e.type === 'leave').length;
    results.push({
      id: room.id,
      kind: room.kind,
      continents: room.continents,
      size: room.final.length,
      arrivals: room.participants.length,
      leaves,
      optimum: { method: best.method, meanMs: best.meanMs, lowerBoundMs: best.lowerBoundMs, exact: best.method !== 'bounded' },
      scores,
    });
    const gapPct = gap(scores['min-delay']!.meanMs, best.meanMs);
    if (gapPct > OUTLIER_GAP_PCT) outliers.push(explain(ctx, room, problem, routerRun!, best.assignment, best.meanMs, gapPct, opts.seed));
  }
  return { rooms: results, policies: summarise(specs, results), outliers: outliers.sort((a, b) => b.gapPct - a.gapPct), optimumMethods, crossChecked, pairDelays, rebalanceMs };
}

/** `+1.2%`; never `+-0.0%` for float noise under an exact optimum. */
const pct = (x: number) => `+${Math.max(0, x).toFixed(1)}%`;
const gap = (value: number, optimumMs: number) => (optimumMs > 0 ? ((value - optimumMs) / optimumMs) * 100 : 0);
const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length);

function summarise(specs: ReturnType<typeof policies>, rooms: readonly RoomResult[]): PolicySummary[] {
  const all = [...specs.map((s) => ({ id: s.id, label: s.label })), { id: OPTIMUM, label: 'offline optimum of the same objective (final room, all moves allowed)' }];
  return all.map(({ id, label }) => {
    const scores = rooms.map((r) => r.scores[id]!);
    const pairs = scores.reduce((s, x) => s + x.pairs, 0);
    const participants = rooms.reduce((s, r) => s + r.size, 0);
    return {
      policy: id,
      label,
      meanRoomMeanMs: mean(scores.map((s) => s.meanMs)),
      meanRoomP95Ms: mean(scores.map((s) => s.p95Ms)),
      meanRoomWorstMs: mean(scores.map((s) => s.worstMs)),
      worstPairMs: Math.max(...scores.map((s) => s.worstMs)),
      pairsOver150Pct: (scores.reduce((s, x) => s + x.pairsOver150, 0) / pairs) * 100,
      regionsPerRoom: mean(scores.map((s) => s.regionsUsed)),
      migrationsPerParticipant: scores.reduce((s, x) => s + x.migrations, 0) / participants,
      gapToOptimumPct: mean(rooms.map((r) => gap(r.scores[id]!.meanMs, r.optimum.meanMs))),
      aggregateGapPct: gap(
        rooms.reduce((s, r) => s + r.scores[id]!.meanMs, 0),
        rooms.reduce((s, r) => s + r.optimum.meanMs, 0),
      ),
      roomsAtOptimumPct: (rooms.filter((r) => gap(r.scores[id]!.meanMs, r.optimum.meanMs) <= 0.1).length / rooms.length) * 100,
    };
  });
}

/** "eu-west×5 (Paris 3, London 2), apac×1 (Tokyo)": who sits where. */
function describe(ctx: SimContext, room: SimRoom, assignment: readonly number[]): string {
  const byRegion = new Map<string, Map<string, number>>();
  for (const [k, a] of assignment.entries()) {
    const region = ctx.ds.regions[a]!;
    const city = ctx.ds.cities[room.participants[room.final[k]!]!.city]!.name;
    const cities = byRegion.get(region) ?? new Map<string, number>();
    cities.set(city, (cities.get(city) ?? 0) + 1);
    byRegion.set(region, cities);
  }
  return [...byRegion]
    .map(([region, cities]) => {
      const count = [...cities.values()].reduce((s, c) => s + c, 0);
      return `${region}×${count} (${[...cities].map(([c, k]) => (k > 1 ? `${c} ${k}` : c)).join(', ')})`;
    })
    .join(', ');
}

/**
 * Why the router ended above the optimum, by counterfactual runs of the router's own min-delay on
 * the same room: with true RTTs (no measurement noise), without the people who left, and with the
 * final people arriving in other orders. The first that comes within the outlier threshold names
 * the cause; if none does, it is the greedy rule itself (nobody moves once placed).
 */
function explain(
  ctx: SimContext,
  room: SimRoom,
  problem: OptimumProblem,
  run: PolicyRun,
  best: readonly number[],
  bestMs: number,
  gapPct: number,
  seed: number,
): Outlier {
  const minDelay = routerStrategy('min-delay');
  const gapOf = (r: SimRoom, view: 'measured' | 'true') => {
    const rerun = runPolicy(ctx, r, minDelay, view);
    return gap(scoreAssignment(ctx, problem, finalAssignment(ctx.ds, room, rerun.regionOf)).meanMs, bestMs);
  };
  const first = room.participants[room.events[0]!.participant]!;
  const firstCity = ctx.ds.cities[first.city]!.name;
  const firstLeft = !room.final.includes(room.events[0]!.participant);
  const base = {
    room: room.id,
    kind: room.kind,
    size: room.final.length,
    gapPct,
    router: describe(ctx, room, finalAssignment(ctx.ds, room, run.regionOf)),
    optimum: describe(ctx, room, best),
  };
  const noiseFree = gapOf(room, 'true');
  if (noiseFree <= OUTLIER_GAP_PCT) {
    return { ...base, cause: 'measurement noise', why: `on true RTTs (no measurement noise) the router comes to ${pct(noiseFree)}: noisy RTTs tipped a close choice` };
  }
  const leaves = room.events.filter((e) => e.type === 'leave').length;
  if (leaves > 0) {
    const stayers = gapOf(reordered(room, room.final), 'true');
    if (stayers <= OUTLIER_GAP_PCT) {
      return {
        ...base,
        cause: 'leaves',
        why: `${leaves} participant${leaves === 1 ? '' : 's'} who left shaped earlier choices${firstLeft ? ` (the first joiner, ${firstCity}, set home ${run.homeRegion} and left)` : ''}; the people who stayed, joining alone in the same order, get ${pct(stayers)}`,
      };
    }
  }
  const orders = randomOrders(room, EXPLAIN_ORDERS, seed ^ room.participants.length);
  const bestOrder = Math.min(...orders.map((o) => gapOf(reordered(room, o), 'true')));
  if (bestOrder <= OUTLIER_GAP_PCT) {
    return {
      ...base,
      cause: 'arrival order',
      why: `the first joiner (${firstCity}) set home ${run.homeRegion} and the early joiners' edges steered the rest; the same people in another order get ${pct(bestOrder)} (best of ${EXPLAIN_ORDERS} orders)`,
    };
  }
  return {
    ...base,
    cause: 'greedy limit',
    why: `no arrival order of ${EXPLAIN_ORDERS} tried gets within ${OUTLIER_GAP_PCT}% (best ${pct(bestOrder)}): the optimum needs people to give up their own best edge for the room's sake, which no newcomer's own choice does once the others are placed`,
  };
}
