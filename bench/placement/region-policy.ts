import { createStrategy } from '../../router/placement/index.ts';
import type { NormalizedPolicy } from '../../shared/schemas/index.ts';
import type { LatencyDataset } from './dataset.ts';
import { optimum, type OptimumProblem } from './optimum.ts';
import { placementInput, runPolicy, simContext } from './policies.ts';
import { generateRooms, type SimRoom } from './rooms.ts';
import { finalAssignment, finalRoomProblem, scoreAssignment } from './score.ts';

/**
 * Placement quality within a region policy (docs/region-policy.md). Each simulated room gets a
 * two-region policy: the two regions nearest its first participant (a company keeping its media
 * where it is). The router's min-delay places the room through its own placement code with that
 * policy; the room is scored against the offline optimum over its allowed regions only, and that
 * optimum against the unrestricted one (what the policy costs the room).
 */
export interface PolicyRoomsSummary {
  rooms: number;
  /** Mean over rooms of the room's mean pair delay under the router, ms. */
  routerMeanMs: number;
  /** The same for the optimum over each room's allowed regions. */
  optimumWithinMs: number;
  /** The same for the optimum over every region (no policy). */
  optimumUnrestrictedMs: number;
  /** Mean over rooms of the router's gap to the optimum within the policy, %. */
  gapToOptimumPct: number;
  /** Decisions (edge or home) outside the room's policy: must be 0. */
  decisionsOutsidePolicy: number;
  elapsedMs: number;
}

export function simulatePolicyRooms(ds: LatencyDataset, opts: { seed: number; rooms: number }): PolicyRoomsSummary {
  const started = performance.now();
  const ctx = simContext(ds);
  const strategy = createStrategy('min-delay');
  let router = 0;
  let within = 0;
  let unrestricted = 0;
  let gap = 0;
  let outside = 0;
  const rooms = generateRooms(ds, { seed: opts.seed, count: opts.rooms });
  for (const room of rooms) {
    const policy = twoRegionPolicy(ds, room);
    const allowed = new Set(policy.allowedRegions);
    const run = runPolicy(ctx, room, (args) => {
      const result = strategy.place({ ...placementInput(args), policy });
      if (!result.ok) throw new Error(`min-delay refused ${args.participant.id} in ${room.id} within ${policy.allowedRegions.join(', ')}`);
      return { homeRegion: result.decision.homeRegion, region: result.decision.region };
    });
    outside += run.decisions.filter((d) => !allowed.has(d.region) || !allowed.has(d.homeRegion)).length;
    const problem = finalRoomProblem(ds, room);
    const score = scoreAssignment(ctx, problem, finalAssignment(ds, room, run.regionOf));
    const best = optimum(restrict(problem, policy.allowedRegions));
    router += score.meanMs;
    within += best.meanMs;
    unrestricted += optimum(problem).meanMs;
    gap += best.meanMs > 0 ? ((score.meanMs - best.meanMs) / best.meanMs) * 100 : 0;
  }
  const n = rooms.length;
  return {
    rooms: n,
    routerMeanMs: router / n,
    optimumWithinMs: within / n,
    optimumUnrestrictedMs: unrestricted / n,
    gapToOptimumPct: gap / n,
    decisionsOutsidePolicy: outside,
    elapsedMs: performance.now() - started,
  };
}

/** The two catalog regions with the lowest true RTT for the room's first participant, in catalog order. */
function twoRegionPolicy(ds: LatencyDataset, room: SimRoom): NormalizedPolicy {
  const first = room.participants[room.events[0]!.participant]!;
  const nearest = new Set([...ds.regions].sort((a, b) => first.trueRttMs[a]! - first.trueRttMs[b]!).slice(0, 2));
  return { allowedRegions: ds.regions.filter((r) => nearest.has(r)), preferredRegions: [], allowP2p: false };
}

/** The same room with only the allowed regions to choose from. */
function restrict(problem: OptimumProblem, allowed: readonly string[]): OptimumProblem {
  const idx = allowed.map((r) => problem.regions.indexOf(r));
  return {
    regions: allowed,
    rtt: problem.rtt.map((row) => idx.map((i) => row[i]!)),
    group: problem.group,
    inter: idx.map((a) => idx.map((b) => problem.inter[a]![b]!)),
  };
}
