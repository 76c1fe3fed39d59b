import { createStrategy, proposeRebalance } from '../../router/placement/index.ts';
import type { LatencyDataset } from './dataset.ts';
import { nodeIdOf, placementInput, routerStrategy, runPolicy, simContext } from './policies.ts';
import { generateRooms, type SimRoom } from './rooms.ts';

export interface DecisionTime {
  /** Room size including the newcomer being placed. */
  participants: number;
  medianUs: number;
  p99Us: number;
  runs: number;
}

/**
 * Time of one min-delay place() (the router's own code, input built beforehand as the allocator
 * does) for the last joiner of a spanning room of each size, the others placed by min-delay
 * before; median over `runs` calls after a warm-up.
 */
export function decisionTimes(ds: LatencyDataset, sizes: readonly number[], runs: number, seed = 42): DecisionTime[] {
  const ctx = simContext(ds);
  const minDelay = createStrategy('min-delay');
  return sizes.map((participants) => {
    const room = sizedRoom(ds, participants, seed);
    const others: SimRoom = { ...room, events: room.events.slice(0, -1), final: room.final.slice(0, -1) };
    const placed = runPolicy(ctx, others, routerStrategy('min-delay'));
    const last = participants - 1;
    const p = room.participants[last]!;
    const input = placementInput({
      ctx,
      room,
      index: last,
      participant: p,
      rttMs: p.measuredRttMs,
      home: placed.homeRegion,
      present: others.final.map((i) => ({ index: i, region: placed.regionOf[i]!, edgeRttMs: room.participants[i]!.measuredRttMs[placed.regionOf[i]!]! })),
    });
    if (!minDelay.place(input).ok) throw new Error('min-delay refused in the timing room');
    return { participants, runs, ...timeCalls(() => minDelay.place(input), Math.max(200, runs / 5), runs) };
  });
}

/**
 * Time of one full rebalance (the router's proposeRebalance(), default thresholds) of a spanning
 * room of each size whose participants were placed one by one by min-delay (the state a room is in
 * when the rebalancer first looks at it); median over `runs` calls after a warm-up.
 */
export function rebalanceTimes(ds: LatencyDataset, sizes: readonly number[], runs: number, seed = 42): DecisionTime[] {
  const ctx = simContext(ds);
  const { config } = ctx;
  return sizes.map((participants) => {
    const room = sizedRoom(ds, participants, seed);
    const placed = runPolicy(ctx, room, routerStrategy('min-delay'));
    const input = {
      regions: config.regions.map((r) => r.id),
      nodes: ctx.nodes,
      interRegionRtt: ctx.interRegionRtt,
      home: { region: placed.homeRegion, nodeId: nodeIdOf(placed.homeRegion) },
      participants: room.final.map((i) => ({
        participantId: room.participants[i]!.id,
        region: placed.regionOf[i]!,
        nodeId: nodeIdOf(placed.regionOf[i]!),
        rttMs: room.participants[i]!.measuredRttMs,
        status: 'joined' as const,
        lastMovedAtMs: null,
      })),
      nowMs: 0,
      thresholds: { minRoomGainMs: config.rebalanceMinRoomGainMs, minPersonGainMs: config.rebalanceMinPersonGainMs, personWindowMs: config.rebalanceWindowMs },
    };
    return { participants, runs, ...timeCalls(() => proposeRebalance(input), Math.max(20, runs / 5), runs) };
  });
}

/** Median and p99 of `runs` timed calls of `call`, after `warmUp` untimed ones. */
function timeCalls(call: () => unknown, warmUp: number, runs: number): { medianUs: number; p99Us: number } {
  for (let i = 0; i < warmUp; i++) call();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    call();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return {
    medianUs: samples[samples.length >> 1]! * 1000,
    p99Us: samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))]! * 1000,
  };
}

/** A spanning room of exactly `size` joiners, nobody leaving. */
function sizedRoom(ds: LatencyDataset, size: number, seed: number): SimRoom {
  const [room] = generateRooms(ds, {
    seed,
    count: 1,
    mix: {
      sizes: [{ min: size, max: size, share: 1 }],
      regionalShare: 0,
      leaveShare: 0,
      accessMs: { min: 2, max: 20 },
      noise: { sigmaMs: 2, sigmaFraction: 0.05 },
    },
  });
  return room!;
}
