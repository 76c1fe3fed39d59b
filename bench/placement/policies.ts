import { configWith, type GeoSfuConfig } from '../../shared/config/index.ts';
import { DEFAULT_REGIONS, type RegionInfo } from '../../shared/regions.ts';
import { buildInterRegionRtt, createStrategy, estimateClientRtt } from '../../router/placement/index.ts';
import type { InterRegionRtt, PlacementInput, PlacementNode, PlacementStrategyKind, RebalanceThresholds, RoomSnapshot } from '../../router/placement/index.ts';
import type { LatencyDataset } from './dataset.ts';
import { seededRandom } from './prng.ts';
import type { SimParticipant, SimRoom } from './rooms.ts';

/**
 * The policies the simulator compares. The router's strategies run through the router's own
 * placement code, fed a PlacementInput built the way router/allocation/placement-input.ts builds it (one
 * node per region, nobody loaded); the other baselines are a few lines each.
 */

export interface SimContext {
  ds: LatencyDataset;
  /** The data set's regions as a router catalog (locations from the data set, else the default catalog). */
  catalog: RegionInfo[];
  /** Whether every region has a location (the geoip-room baseline needs them). */
  locatedRegions: boolean;
  config: GeoSfuConfig;
  interRegionRtt: InterRegionRtt;
  nodes: PlacementNode[];
  fixedRegion: string;
}

export const nodeIdOf = (region: string) => `${region}-1`;

export function simContext(ds: LatencyDataset, overrides: Partial<GeoSfuConfig> = {}): SimContext {
  let locatedRegions = true;
  const catalog = ds.regions.map((id): RegionInfo => {
    const loc = ds.regionLocations?.[id] ?? DEFAULT_REGIONS.find((r) => r.id === id);
    if (!loc) locatedRegions = false;
    return { id, displayName: id, lat: loc?.lat ?? 0, lon: loc?.lon ?? 0 };
  });
  const config = configWith({ regions: catalog, ...overrides });
  return {
    ds,
    catalog,
    locatedRegions,
    config,
    // The allocator passes the registry's measured matrix; here it is the data set's.
    interRegionRtt: buildInterRegionRtt({ regions: catalog, measured: ds.interRegionRttMs, model: { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm } }),
    nodes: ds.regions.map((region) => ({ nodeId: nodeIdOf(region), region, state: 'alive', draining: false, cordoned: false, stress: 0 })),
    fixedRegion: ds.regions.includes('us-east') ? 'us-east' : ds.regions[0]!,
  };
}

export interface Decision {
  participant: string;
  homeRegion: string;
  region: string;
}

export interface PolicyRun {
  decisions: Decision[];
  /** Edge region of every participant who joined, by index in `room.participants`. */
  regionOf: string[];
  homeRegion: string;
}

interface Present {
  index: number;
  region: string;
  /** The RTT the participant reported for its edge region. */
  edgeRttMs: number;
}

interface ChooseArgs {
  ctx: SimContext;
  room: SimRoom;
  index: number;
  participant: SimParticipant;
  /** The RTTs the participant reports (measured, or true for counterfactual runs). */
  rttMs: Record<string, number>;
  home: string | null;
  present: readonly Present[];
}

type Chooser = (args: ChooseArgs) => { homeRegion: string; region: string };

export type RttView = 'measured' | 'true';

export function runPolicy(ctx: SimContext, room: SimRoom, choose: Chooser, view: RttView = 'measured'): PolicyRun {
  let home: string | null = null;
  let present: Present[] = [];
  const decisions: Decision[] = [];
  const regionOf: string[] = [];
  for (const event of room.events) {
    if (event.type === 'leave') {
      present = present.filter((p) => p.index !== event.participant);
      continue;
    }
    const participant = room.participants[event.participant]!;
    const rttMs = view === 'measured' ? participant.measuredRttMs : participant.trueRttMs;
    const d = choose({ ctx, room, index: event.participant, participant, rttMs, home, present });
    home ??= d.homeRegion;
    decisions.push({ participant: participant.id, ...d });
    regionOf[event.participant] = d.region;
    present.push({ index: event.participant, region: d.region, edgeRttMs: rttMs[d.region]! });
  }
  return { decisions, regionOf, homeRegion: home! };
}

/** PlacementInput as the allocator builds it for this join. */
export function placementInput(args: ChooseArgs): PlacementInput {
  const { ctx, rttMs, home, present, room } = args;
  const { config } = ctx;
  const roomSnapshot: RoomSnapshot = {
    homeRegion: home,
    homeNodeId: home === null ? null : nodeIdOf(home),
    participants: present.map((p) => ({ participantId: room.participants[p.index]!.id, region: p.region, nodeId: nodeIdOf(p.region), edgeRttMs: p.edgeRttMs })),
  };
  return {
    regions: config.regions.map((r) => r.id),
    nodes: ctx.nodes,
    interRegionRtt: ctx.interRegionRtt,
    // Every region measured: the allocator looks up no location then.
    client: estimateClientRtt({
      regions: config.regions,
      measured: rttMs,
      location: null,
      model: { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm, defaultRttMs: config.defaultClientRttMs },
    }),
    room: roomSnapshot,
    excludeNodeIds: [],
    marginMs: config.marginMs,
  };
}

export function routerStrategy(kind: PlacementStrategyKind): Chooser {
  const strategy = createStrategy(kind);
  return (args) => {
    const result = strategy.place(placementInput(args));
    if (!result.ok) throw new Error(`${kind} refused ${args.participant.id} in ${args.room.id}: ${JSON.stringify(result.reasons)}`);
    return { homeRegion: result.decision.homeRegion, region: result.decision.region };
  };
}

/** The room goes where the geo model puts the first joiner's city nearest (what a geoip lookup would pick); everyone joins it there. */
export const geoipRoom: Chooser = ({ ctx, home, participant }) => {
  if (home !== null) return { homeRegion: home, region: home };
  const city = ctx.ds.cities[participant.city]!;
  const { config } = ctx;
  const estimate = estimateClientRtt({
    regions: config.regions,
    location: { lat: city.lat, lon: city.lon },
    model: { baseRttMs: config.geoBaseRttMs, msPerKm: config.geoMsPerKm, defaultRttMs: config.defaultClientRttMs },
  });
  const region = argmin(ctx.ds.regions, (r) => estimate.byRegion[r]!);
  return { homeRegion: region, region };
};

export const fixedRegion: Chooser = ({ ctx }) => ({ homeRegion: ctx.fixedRegion, region: ctx.fixedRegion });

/** A uniformly random region per participant, seeded by the room and the participant. */
export function randomRegion(seed: number): Chooser {
  return ({ ctx, room, index, home }) => {
    const random = seededRandom(seed ^ hash(`${room.id}/${index}`));
    const region = ctx.ds.regions[Math.floor(random() * ctx.ds.regions.length)]!;
    return { homeRegion: home ?? region, region };
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** First minimum in order. */
export function argmin<T>(items: readonly T[], key: (item: T) => number): T {
  let best = items[0] as T;
  let bestKey = key(best);
  for (const item of items.slice(1)) {
    const k = key(item);
    if (k < bestKey) {
      best = item;
      bestKey = k;
    }
  }
  return best;
}

/** How runRebalancing() (rebalancing.ts) replays a room with live rebalancing. */
export interface RebalancingOptions {
  thresholds: RebalanceThresholds;
  /** Simulated time between two events of a room (joins and leaves), ms. */
  eventSpacingMs: number;
}

export interface PolicySpec {
  id: string;
  label: string;
  chooser: Chooser;
  /** Set for the router with live rebalancing: run by runRebalancing() instead of runPolicy(). */
  rebalancing?: RebalancingOptions;
}

/** Simulated time between two events of a room; see runRebalancing(). */
export const EVENT_SPACING_MS = 15_000;

export function policies(ctx: SimContext, seed: number): PolicySpec[] {
  const list: PolicySpec[] = [
    {
      id: 'rebalance',
      label: 'router min-delay + live rebalancing (default settings)',
      chooser: routerStrategy('min-delay'),
      rebalancing: {
        thresholds: {
          minRoomGainMs: ctx.config.rebalanceMinRoomGainMs,
          minPersonGainMs: ctx.config.rebalanceMinPersonGainMs,
          personWindowMs: ctx.config.rebalanceWindowMs,
        },
        eventSpacingMs: EVENT_SPACING_MS,
      },
    },
    { id: 'min-delay', label: 'router min-delay (greedy, no rebalancing)', chooser: routerStrategy('min-delay') },
    { id: 'first-joiner', label: "first joiner's nearest region pins the room (LiveKit OSS style)", chooser: routerStrategy('first-joiner') },
  ];
  if (ctx.locatedRegions) list.push({ id: 'geoip-room', label: "room on the geo model's nearest region to the first joiner's city", chooser: geoipRoom });
  list.push(
    { id: 'nearest', label: 'every participant on its own nearest region', chooser: routerStrategy('nearest') },
    { id: `fixed-${ctx.fixedRegion}`, label: `everyone on ${ctx.fixedRegion}`, chooser: fixedRegion },
    { id: 'random', label: 'uniformly random region per participant (seeded)', chooser: randomRegion(seed) },
  );
  return list;
}
