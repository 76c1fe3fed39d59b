import { proposeRebalance, type RebalanceParticipant } from '../../router/placement/index.ts';
import { nodeIdOf, routerStrategy, type PolicyRun, type RebalancingOptions, type SimContext } from './policies.ts';
import type { SimRoom } from './rooms.ts';

/**
 * The router with live rebalancing: each join placed by the router's min-delay (as /allocate
 * does), and after every join and leave the router's own proposeRebalance() on the room as it is
 * then, its moves applied at once (the simulator has no media to move). The clock advances
 * `eventSpacingMs` per event, which is what the per-person window is measured against.
 */
export interface RebalancingRun extends PolicyRun {
  /** Moves made by rebalancing (people who later left included). */
  migrations: number;
  /** Wall time of every proposeRebalance() call, ms. */
  rebalanceMs: number[];
}

interface Present {
  index: number;
  region: string;
  edgeRttMs: number;
  lastMovedAtMs: number | null;
}

export function runRebalancing(ctx: SimContext, room: SimRoom, opts: RebalancingOptions): RebalancingRun {
  const place = routerStrategy('min-delay');
  const regions = ctx.config.regions.map((r) => r.id);
  let home: string | null = null;
  let present: Present[] = [];
  const decisions: PolicyRun['decisions'] = [];
  const regionOf: string[] = [];
  const rebalanceMs: number[] = [];
  let migrations = 0;
  let nowMs = 0;
  for (const event of room.events) {
    nowMs += opts.eventSpacingMs;
    if (event.type === 'leave') {
      present = present.filter((p) => p.index !== event.participant);
    } else {
      const participant = room.participants[event.participant]!;
      const rttMs = participant.measuredRttMs;
      const d = place({ ctx, room, index: event.participant, participant, rttMs, home, present });
      home ??= d.homeRegion;
      decisions.push({ participant: participant.id, ...d });
      regionOf[event.participant] = d.region;
      present.push({ index: event.participant, region: d.region, edgeRttMs: rttMs[d.region]!, lastMovedAtMs: null });
    }
    const participants: RebalanceParticipant[] = present.map((p) => ({
      participantId: room.participants[p.index]!.id,
      region: p.region,
      nodeId: nodeIdOf(p.region),
      rttMs: room.participants[p.index]!.measuredRttMs,
      status: 'joined',
      lastMovedAtMs: p.lastMovedAtMs,
    }));
    const started = performance.now();
    const proposal = proposeRebalance({
      regions,
      nodes: ctx.nodes,
      interRegionRtt: ctx.interRegionRtt,
      home: { region: home!, nodeId: nodeIdOf(home!) },
      participants,
      nowMs,
      thresholds: opts.thresholds,
    });
    rebalanceMs.push(performance.now() - started);
    const byId = new Map(proposal.moves.map((m) => [m.participantId, m]));
    present = present.map((p) => {
      const move = byId.get(room.participants[p.index]!.id);
      if (!move) return p;
      migrations++;
      regionOf[p.index] = move.to.region;
      return { index: p.index, region: move.to.region, edgeRttMs: room.participants[p.index]!.measuredRttMs[move.to.region]!, lastMovedAtMs: nowMs };
    });
    home = proposal.home.region;
  }
  return { decisions, regionOf, homeRegion: home!, migrations, rebalanceMs };
}
