import { roomMeanPairwiseDelay } from '../../router/placement/index.ts';
import { datasetPairRtt, type LatencyDataset } from './dataset.ts';
import { meanPairwiseMs, pairDelayMs, type OptimumProblem } from './optimum.ts';
import type { SimContext } from './policies.ts';
import type { SimRoom } from './rooms.ts';

/** ITU-T G.114: one-way delay above 150 ms impairs most interactive applications. */
export const G114_ONE_WAY_MS = 150;

export interface RoomScore {
  /** Mean one-way delay over all pairs of the final room, ms. */
  meanMs: number;
  /** 95th percentile (nearest rank) of the room's pair delays, ms. */
  p95Ms: number;
  worstMs: number;
  pairs: number;
  pairsOver150: number;
  /** Distinct edge regions of the final room. */
  regionsUsed: number;
  /** Participants moved after they joined (live rebalancing only; the other policies never move anyone). */
  migrations: number;
}

/** The final room as an optimisation problem over true RTTs (the delay people actually get). */
export function finalRoomProblem(ds: LatencyDataset, room: SimRoom): OptimumProblem {
  const people = room.final.map((i) => room.participants[i]!);
  return {
    regions: ds.regions,
    rtt: people.map((p) => ds.regions.map((r) => p.trueRttMs[r]!)),
    group: people.map((p) => p.city),
    inter: ds.regions.map((a) => ds.regions.map((b) => datasetPairRtt(ds, a, b))),
  };
}

export function nearestRank(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/**
 * Scores an assignment (region index per final participant). The mean is the router's own model
 * (roomMeanPairwiseDelay); the pair list comes from the simulator's independent delay function,
 * and the two must agree.
 */
export function scoreAssignment(ctx: SimContext, problem: OptimumProblem, assignment: readonly number[], pairSink?: number[]): RoomScore {
  const n = assignment.length;
  const delays: number[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) delays.push(pairDelayMs(problem, i, assignment[i]!, j, assignment[j]!));
  const routerMean = roomMeanPairwiseDelay(
    assignment.map((a, i) => ({ region: problem.regions[a]!, edgeRttMs: problem.rtt[i]![a]! })),
    ctx.interRegionRtt,
  );
  const ownMean = meanPairwiseMs(problem, assignment);
  if (routerMean === null || Math.abs(routerMean - ownMean) > 1e-6 * Math.max(1, ownMean)) {
    throw new Error(`delay models disagree: router ${routerMean} ms, simulator ${ownMean} ms`);
  }
  if (pairSink) for (const d of delays) pairSink.push(d);
  delays.sort((a, b) => a - b);
  return {
    meanMs: routerMean,
    p95Ms: nearestRank(delays, 0.95),
    worstMs: delays.at(-1)!,
    pairs: delays.length,
    pairsOver150: delays.filter((d) => d > G114_ONE_WAY_MS).length,
    regionsUsed: new Set(assignment).size,
    migrations: 0,
  };
}

/** Region index per final participant from a policy run's region per participant. */
export function finalAssignment(ds: LatencyDataset, room: SimRoom, regionOf: readonly string[]): number[] {
  return room.final.map((i) => ds.regions.indexOf(regionOf[i]!));
}
