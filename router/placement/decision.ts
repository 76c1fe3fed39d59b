import type { Candidate, Reason, ReasonCode } from '../../shared/schemas/index.ts';
import { roomDelayProfile, newcomerMeanDelay } from './delay.ts';
import { assessRegions, compareNodeHealth, type NodeChoice, type RegionAssessment } from './eligibility.ts';
import type { ClientRtt, PlacementInput, PlacementResult } from './types.ts';

/**
 * The steps every strategy shares, in the order they run (jicofo style): assess the regions
 * (eligibility, node choice, score), place the first participant of a room, and turn the chosen
 * region into a decision with its reasons, cascade and candidates. A strategy only picks the region.
 */

/**
 * Scores are sums of RTTs computed in different orders for different regions; differences below
 * this are rounding noise, not information, and are treated as ties.
 */
const SCORE_TOLERANCE_MS = 1e-9;

export interface RegionOption extends RegionAssessment {
  /** The client's RTT to the region, ms. */
  clientRttMs: number;
  /** Mean one-way delay to the others (client RTT when alone); null when the region is excluded. */
  score: number | null;
}

export interface EligibleOption extends RegionOption {
  choice: NodeChoice;
  score: number;
  excludedBecause: null;
}

export interface PlacementContext {
  input: PlacementInput;
  /** The room's home; null while the room has none (this participant is its first). */
  home: { region: string; nodeId: string } | null;
  /** Regions the room spans before this participant: home and everyone's edges. */
  roomRegions: ReadonlySet<string>;
  /** Every catalog region, in catalog order. */
  options: readonly RegionOption[];
  /** The options with an eligible node, in catalog order. */
  eligible: readonly EligibleOption[];
}

export function assessPlacement(input: PlacementInput): PlacementContext {
  const { room, client, interRegionRtt } = input;
  const home = room.homeRegion !== null && room.homeNodeId !== null ? { region: room.homeRegion, nodeId: room.homeNodeId } : null;
  const roomRegions = new Set(room.participants.map((p) => p.region));
  if (home) roomRegions.add(home.region);
  const profile = roomDelayProfile(room.participants);
  const options = assessRegions(input).map((assessment): RegionOption => {
    const clientRttMs = client.byRegion[assessment.region];
    if (clientRttMs === undefined) throw new RangeError(`client RTT missing for region ${assessment.region}`);
    const score = assessment.choice
      ? (newcomerMeanDelay(profile, assessment.region, clientRttMs, interRegionRtt) ?? clientRttMs)
      : null;
    // Listed, not spread: V8 clones these objects slowly, and the spread took half of a placement.
    const { region, catalogIndex, choice, excludedBecause } = assessment;
    return { region, catalogIndex, choice, excludedBecause, clientRttMs, score };
  });
  const eligible = options.filter((o): o is EligibleOption => o.choice !== null);
  return { input, home, roomRegions, options, eligible };
}

export type OptionKey = (option: EligibleOption) => number;
export const byScore: OptionKey = (o) => o.score;
export const byClientRtt: OptionKey = (o) => o.clientRttMs;

/** Best first: lower key, then alive over suspect, then lower node stress, then catalog order. */
export function rankOptions(options: readonly EligibleOption[], key: OptionKey): EligibleOption[] {
  return [...options].sort((a, b) => {
    const delta = key(a) - key(b);
    if (Math.abs(delta) > SCORE_TOLERANCE_MS) return delta;
    return compareNodeHealth(a.choice.node, b.choice.node) || a.catalogIndex - b.catalogIndex;
  });
}

/** `a` scores worse than `b` by at most `marginMs`. */
export function scoresWithin(a: EligibleOption, b: EligibleOption, marginMs: number): boolean {
  return a.score - b.score <= marginMs + SCORE_TOLERANCE_MS;
}

export function reason(code: ReasonCode, message: string, details: Omit<Reason, 'code' | 'message'> = {}): Reason {
  return { code, message, ...details };
}

/** Milliseconds for messages: one decimal at most ("61.5 ms", "72 ms"). */
export function ms(value: number): string {
  return `${Number(value.toFixed(1))} ms`;
}

/** ALL_REGIONS_EQUAL when at least two regions were eligible and `key` did not separate them. */
export function allRegionsEqual(ctx: PlacementContext, key: OptionKey): Reason[] {
  const [first, ...rest] = ctx.eligible;
  if (!first || rest.length === 0 || rest.some((o) => Math.abs(key(o) - key(first)) > SCORE_TOLERANCE_MS)) return [];
  return [reason('ALL_REGIONS_EQUAL', `all ${ctx.eligible.length} eligible regions at ${ms(key(first))}: health and catalog order decide`, { valueMs: key(first) })];
}

function rttSourceReason(client: ClientRtt, regionCount: number): Reason {
  switch (client.source) {
    case 'client':
      return client.estimatedRegions.length === 0
        ? reason('CLIENT_MEASURED_RTT', `client measured its RTT to all ${regionCount} regions`)
        : reason(
            'PARTIAL_CLIENT_RTT',
            `client measured ${regionCount - client.estimatedRegions.length} of ${regionCount} regions; estimated ${client.estimatedRegions.join(', ')}`,
          );
    case 'geoip':
      return reason('GEOIP_ESTIMATED_RTT', `RTT to all ${regionCount} regions estimated from the client IP's location`);
    case 'default': {
      // A default-only estimate has the same figure for every region.
      const assumedMs = Object.values(client.byRegion)[0] ?? 0;
      return reason('DEFAULT_RTT', `no measurement and no IP location: ${ms(assumedMs)} assumed for every region`, { valueMs: assumedMs });
    }
  }
}

/** Reasons every result starts with: where the RTTs came from, the room's policy, and the state of its home. */
function leadingReasons(ctx: PlacementContext): Reason[] {
  const reasons = [rttSourceReason(ctx.input.client, ctx.input.regions.length)];
  const { policy } = ctx.input;
  if (policy) {
    const preferred = policy.preferredRegions.length > 0 ? `, preferring ${policy.preferredRegions.join(', ')}` : '';
    reasons.push(reason('REGION_POLICY', `room's region policy: media only in ${policy.allowedRegions.join(', ')}${preferred}`));
  }
  if (ctx.home) {
    const { region, nodeId } = ctx.home;
    reasons.push(reason('ROOM_HOME_EXISTS', `room's home is ${region} (${nodeId})`, { region, nodeId }));
    const homeOption = ctx.options.find((o) => o.region === region);
    if (homeOption?.excludedBecause) {
      reasons.push(reason('HOME_REGION_UNAVAILABLE', `home region ${region} cannot take participants (${homeOption.excludedBecause})`, { region }));
    }
  }
  return reasons;
}

function candidates(ctx: PlacementContext): Candidate[] {
  return ctx.options.map((o) => ({
    region: o.region,
    score: o.score,
    clientRttMs: o.clientRttMs,
    ...(o.choice ? { nodeId: o.choice.node.nodeId } : {}),
    ...(o.excludedBecause ? { excludedBecause: o.excludedBecause } : {}),
  }));
}

export function noEligibleRegion(ctx: PlacementContext): PlacementResult {
  return { ok: false, reasons: leadingReasons(ctx), candidates: candidates(ctx) };
}

/**
 * The room's policy prefers some regions: among `pool` (default: every eligible region), the best
 * preferred one whose `key` is within GEO_SFU_MARGIN_MS of `chosen`'s replaces it, with a
 * PREFERRED_REGION reason. `chosen` itself when it is preferred, or no preferred region is that close.
 */
export function preferNearTie(ctx: PlacementContext, chosen: EligibleOption, key: OptionKey, pool: readonly EligibleOption[] = ctx.eligible): { option: EligibleOption; reasons: Reason[] } {
  const preferred = ctx.input.policy?.preferredRegions ?? [];
  if (preferred.length === 0 || preferred.includes(chosen.region)) return { option: chosen, reasons: [] };
  const { marginMs } = ctx.input;
  const near = rankOptions(pool.filter((o) => preferred.includes(o.region) && key(o) - key(chosen) <= marginMs + SCORE_TOLERANCE_MS), key)[0];
  if (!near) return { option: chosen, reasons: [] };
  const costMs = key(near) - key(chosen);
  return {
    option: near,
    reasons: [
      reason('PREFERRED_REGION', `${near.region} is preferred by the room's policy: ${ms(Math.max(0, costMs))} more than ${chosen.region}, within the ${ms(marginMs)} margin`, {
        region: near.region,
        valueMs: costMs,
      }),
    ],
  };
}

/** An empty room's first participant goes to its lowest-RTT eligible region (a preferred one on a near-tie), which becomes home. */
export function placeFirstParticipant(ctx: PlacementContext): PlacementResult {
  const { option: best, reasons: preference } = preferNearTie(ctx, rankOptions(ctx.eligible, byClientRtt)[0]!, byClientRtt);
  return decide(ctx, best, [
    reason('FIRST_PARTICIPANT_SETS_HOME', `first participant: ${best.region} (RTT ${ms(best.clientRttMs)}) becomes the room's home`, {
      region: best.region,
      valueMs: best.clientRttMs,
    }),
    ...preference,
    ...allRegionsEqual(ctx, byClientRtt),
  ]);
}

/**
 * The decision for the region a strategy chose: `selectionReasons` say why that region; this adds
 * the leading reasons, the cascade and node reasons, the cascade regions and the candidates.
 */
export function decide(ctx: PlacementContext, chosen: EligibleOption, selectionReasons: readonly Reason[]): PlacementResult {
  const { region } = chosen;
  const { node, reason: nodeReason, eligibleCount } = chosen.choice;
  const home = ctx.home ?? { region, nodeId: node.nodeId };
  const reasons = [...leadingReasons(ctx), ...selectionReasons];
  if (ctx.home && !ctx.roomRegions.has(region)) {
    reasons.push(reason('CASCADE_ADDED', `${region} is new to the room: it joins the cascade of home ${home.region}`, { region }));
  }
  reasons.push(
    nodeReason === 'NODE_ALREADY_IN_ROOM'
      ? reason('NODE_ALREADY_IN_ROOM', `${node.nodeId} already serves this room in ${region}`, { region, nodeId: node.nodeId })
      : reason('NODE_LEAST_STRESSED', `${node.nodeId} is the least stressed of ${eligibleCount} eligible node${eligibleCount === 1 ? '' : 's'} in ${region} (stress ${node.stress.toFixed(2)})`, {
          region,
          nodeId: node.nodeId,
        }),
  );
  return {
    ok: true,
    decision: {
      homeRegion: home.region,
      homeNodeId: home.nodeId,
      region,
      nodeId: node.nodeId,
      cascadeRegions: cascadeRegions(ctx, home.region, region),
      reasons,
      candidates: candidates(ctx),
    },
  };
}

/** Home first, then the other regions the room spans with this participant, in catalog order. */
function cascadeRegions(ctx: PlacementContext, homeRegion: string, region: string): string[] {
  const spanned = new Set(ctx.roomRegions).add(region);
  spanned.delete(homeRegion);
  const { regions } = ctx.input;
  return [homeRegion, ...[...spanned].sort((a, b) => catalogIndex(regions, a) - catalogIndex(regions, b))];
}

/** A region dropped from the catalog while rooms still use it sorts last. */
function catalogIndex(regions: readonly string[], region: string): number {
  const i = regions.indexOf(region);
  return i === -1 ? regions.length : i;
}
