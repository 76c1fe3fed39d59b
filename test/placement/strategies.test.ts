import { describe, expect, it } from 'vitest';
import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import type { ExclusionCode, ReasonCode } from '../../shared/schemas/index.ts';
import { estimateClientRtt } from '../../router/placement/client-rtt.ts';
import { createStrategy } from '../../router/placement/index.ts';
import type { MeasuredInterRegionRtt } from '../../router/placement/inter-region.ts';
import type { ClientRtt, PlacementNode, PlacementStrategyKind, RoomSnapshot } from '../../router/placement/types.ts';
import { EMPTY_ROOM, GEO_MODEL, REGIONS, interRegion, measuredClient, node, nodes, placed, placementInput, room } from './fixtures.ts';

/*
 * Scenario table. Catalog order: us-west, us-east, eu-west, apac. Inter-region RTTs (sample):
 * us-west–us-east 68, us-west–eu-west 133, us-west–apac 170, us-east–eu-west 72, us-east–apac 224,
 * eu-west–apac 176. A candidate's score is the newcomer's mean one-way delay to the others:
 *   score(E) = (clientRtt(E) + mean over others p of [rtt(E, edge p) + edgeRtt p]) / 2
 * or clientRtt(E) when nobody else is in the room. Each row works its scores out by hand.
 */

const US_EAST_CLIENT = measuredClient({ 'us-west': 70, 'us-east': 12, 'eu-west': 80, apac: 230 });
const EU_CLIENT = measuredClient({ 'us-west': 140, 'us-east': 85, 'eu-west': 10, apac: 180 });
const APAC_CLIENT = measuredClient({ 'us-west': 175, 'us-east': 230, 'eu-west': 180, apac: 8 });
const DEFAULT_CLIENT = estimateClientRtt({ regions: DEFAULT_REGIONS, model: GEO_MODEL });

/** Two us-east participants (edge RTTs 10 and 20): mean edge RTT 15. */
const US_EAST_ROOM = room('us-east', 'use-1', [placed('p1', 'us-east', 'use-1', 10), placed('p2', 'us-east', 'use-1', 20)]);
/** One us-east participant, edge RTT 10. */
const US_EAST_PAIR_ROOM = room('us-east', 'use-1', [placed('p1', 'us-east', 'use-1', 10)]);
/** us-east (edge 10) and eu-west (edge 15): mean edge RTT 12.5. */
const TWO_CONTINENT_ROOM = room('us-east', 'use-1', [placed('p1', 'us-east', 'use-1', 10), placed('p2', 'eu-west', 'euw-1', 15)]);

interface Scenario {
  name: string;
  strategy?: PlacementStrategyKind;
  nodes?: PlacementNode[];
  interRegion?: MeasuredInterRegionRtt;
  room: RoomSnapshot;
  client: ClientRtt;
  excludeNodeIds?: string[];
  marginMs?: number;
  expect:
    | {
        home: string;
        homeNode: string;
        region: string;
        node: string;
        cascadeRegions: string[];
        reasons: ReasonCode[];
        /** Candidate scores in catalog order (null = excluded). */
        scores?: Array<number | null>;
        excluded?: Record<string, ExclusionCode>;
      }
    | { ok: false; reasons: ReasonCode[]; excluded: Record<string, ExclusionCode> };
}

const SCENARIOS: Scenario[] = [
  {
    // Alone in the room: scores are the client RTTs 70, 12, 80, 230.
    name: 'first participant: its lowest-RTT region becomes home',
    room: EMPTY_ROOM,
    client: US_EAST_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'NODE_LEAST_STRESSED'],
      scores: [70, 12, 80, 230],
    },
  },
  {
    // us-west (70+68+15)/2 = 76.5; us-east (12+0+15)/2 = 13.5; eu-west (80+72+15)/2 = 83.5; apac (230+224+15)/2 = 234.5
    name: 'single-region room: a us-east client joins two us-east participants',
    room: US_EAST_ROOM,
    client: US_EAST_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [76.5, 13.5, 83.5, 234.5],
    },
  },
  {
    // us-west (140+68+10)/2 = 109; us-east (85+0+10)/2 = 47.5; eu-west (10+72+10)/2 = 46; apac (180+224+10)/2 = 207.
    // eu-west saves 1.5 ms > margin 0: a new region is opened.
    name: 'transatlantic pair, margin 0: the eu-west client gets eu-west',
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-1', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [109, 47.5, 46, 207],
    },
  },
  {
    // Same scores as above; eu-west saves 47.5 − 46 = 1.5 ms ≤ 20: kept in us-east.
    name: 'margin 20 keeps the in-room region when the saving is 1.5 ms',
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    marginMs: 20,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'KEPT_IN_ROOM_REGION_BY_MARGIN', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 47.5, 46, 207],
    },
  },
  {
    // Client RTT to us-east 130: us-east (130+0+10)/2 = 70; eu-west 46 saves 24 ms > 20: eu-west opens.
    name: 'margin 20 does not keep the in-room region when the saving is 24 ms',
    room: US_EAST_PAIR_ROOM,
    client: measuredClient({ 'us-west': 140, 'us-east': 130, 'eu-west': 10, apac: 180 }),
    marginMs: 20,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-1', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [109, 70, 46, 207],
    },
  },
  {
    // Others: us-east (edge 10), eu-west (edge 15); mean edge 12.5.
    // us-west (175 + (68+133)/2 + 12.5)/2 = 144; us-east (230 + (0+72)/2 + 12.5)/2 = 139.25;
    // eu-west (180 + (72+0)/2 + 12.5)/2 = 114.25; apac (8 + (224+176)/2 + 12.5)/2 = 110.25.
    name: 'three continents: an apac client joins us-east and eu-west',
    room: TWO_CONTINENT_ROOM,
    client: APAC_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'apac', node: 'apac-1', cascadeRegions: ['us-east', 'eu-west', 'apac'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [144, 139.25, 114.25, 110.25],
    },
  },
  {
    // As the single-region room with use-1 full: us-west 76.5 is the best remaining region.
    name: 'full home region: the newcomer overflows to the best other region',
    nodes: nodes({ 'use-1': { stress: 1 } }),
    room: US_EAST_ROOM,
    client: US_EAST_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-west', node: 'usw-1', cascadeRegions: ['us-east', 'us-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'HOME_REGION_UNAVAILABLE', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [76.5, null, 83.5, 234.5],
      excluded: { 'us-east': 'OVERLOADED' },
    },
  },
  {
    // use-1 full but use-2 (stress 0.5) eligible: us-east stays best at 13.5, on use-2.
    name: 'full home node: another node of the home region takes the newcomer',
    nodes: nodes({ 'use-1': { stress: 1 } }, [node('use-2', 'us-east', { stress: 0.5 })]),
    room: US_EAST_ROOM,
    client: US_EAST_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-2', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_LEAST_STRESSED'],
      scores: [76.5, 13.5, 83.5, 234.5],
    },
  },
  {
    // Transatlantic scores without eu-west: us-east 47.5 is best.
    name: 'dead node: eu-west is out, the eu-west client joins us-east',
    nodes: nodes({ 'euw-1': { state: 'dead' } }),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 47.5, null, 207],
      excluded: { 'eu-west': 'NODE_DEAD' },
    },
  },
  {
    name: 'cordoned node: eu-west is out, the eu-west client joins us-east',
    nodes: nodes({ 'euw-1': { cordoned: true } }),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 47.5, null, 207],
      excluded: { 'eu-west': 'CORDONED' },
    },
  },
  {
    name: 'draining node: eu-west is out, the eu-west client joins us-east',
    nodes: nodes({ 'euw-1': { draining: true } }),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 47.5, null, 207],
      excluded: { 'eu-west': 'DRAINING' },
    },
  },
  {
    name: 'all regions overloaded: no placement',
    nodes: nodes({ 'usw-1': { stress: 1.2 }, 'use-1': { stress: 1 }, 'euw-1': { stress: 3 }, 'apac-1': { stress: 1.01 } }),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      ok: false,
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'HOME_REGION_UNAVAILABLE'],
      excluded: { 'us-west': 'OVERLOADED', 'us-east': 'OVERLOADED', 'eu-west': 'OVERLOADED', apac: 'OVERLOADED' },
    },
  },
  {
    name: 'empty catalog region and everything else dead: no placement',
    nodes: [node('usw-1', 'us-west', { state: 'dead' }), node('use-1', 'us-east', { state: 'dead' }), node('euw-1', 'eu-west', { state: 'dead' })],
    room: EMPTY_ROOM,
    client: EU_CLIENT,
    expect: {
      ok: false,
      reasons: ['CLIENT_MEASURED_RTT'],
      excluded: { 'us-west': 'NODE_DEAD', 'us-east': 'NODE_DEAD', 'eu-west': 'NODE_DEAD', apac: 'NO_NODES' },
    },
  },
  {
    // The client just failed on euw-1; euw-2 (stress 0.5) serves eu-west, still best at 46.
    name: 'excludeNodeIds: the other eu-west node takes the client',
    nodes: nodes({}, [node('euw-2', 'eu-west', { stress: 0.5 })]),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    excludeNodeIds: ['euw-1'],
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-2', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [109, 47.5, 46, 207],
    },
  },
  {
    name: 'excludeNodeIds covering all of eu-west: the client joins us-east',
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    excludeNodeIds: ['euw-1'],
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 47.5, null, 207],
      excluded: { 'eu-west': 'EXCLUDED_BY_CLIENT' },
    },
  },
  {
    // euw-1 is suspect at stress 0.1, euw-2 alive at 0.6: alive first.
    name: 'suspect node ranked after an alive one in its region',
    nodes: nodes({ 'euw-1': { state: 'suspect' } }, [node('euw-2', 'eu-west', { stress: 0.6 })]),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-2', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [109, 47.5, 46, 207],
    },
  },
  {
    // Default RTT 100 everywhere: all scores 100; us-west (first in catalog) has only a suspect node.
    name: 'suspect region ranked after alive ones on equal scores',
    nodes: nodes({ 'usw-1': { state: 'suspect' } }),
    room: EMPTY_ROOM,
    client: DEFAULT_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['DEFAULT_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'ALL_REGIONS_EQUAL', 'NODE_LEAST_STRESSED'],
      scores: [100, 100, 100, 100],
    },
  },
  {
    // Default RTT 100 everywhere, equal health: catalog order decides.
    name: 'all regions equal: catalog order decides',
    room: EMPTY_ROOM,
    client: DEFAULT_CLIENT,
    expect: {
      home: 'us-west', homeNode: 'usw-1', region: 'us-west', node: 'usw-1', cascadeRegions: ['us-west'],
      reasons: ['DEFAULT_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'ALL_REGIONS_EQUAL', 'NODE_LEAST_STRESSED'],
      scores: [100, 100, 100, 100],
    },
  },
  {
    // Equal scores, but usw-1 at stress 0.5 against 0.1 elsewhere: us-east.
    name: 'lower node stress beats catalog order on equal scores',
    nodes: nodes({ 'usw-1': { stress: 0.5 } }),
    room: EMPTY_ROOM,
    client: DEFAULT_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['DEFAULT_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'ALL_REGIONS_EQUAL', 'NODE_LEAST_STRESSED'],
      scores: [100, 100, 100, 100],
    },
  },
  {
    // Custom matrix: us-west–us-east 70, eu-west–us-east 70. One us-east participant (edge 10).
    // us-west (50+70+10)/2 = 65; us-east (200+0+10)/2 = 105; eu-west (50+70+10)/2 = 65; apac (300+224+10)/2 = 267.
    // us-west and eu-west tie at 65: catalog order picks us-west.
    name: 'tie between two new regions: catalog order decides',
    interRegion: {
      'us-west': { 'us-east': 70, 'eu-west': 100, apac: 170 },
      'us-east': { 'eu-west': 70, apac: 224 },
      'eu-west': { apac: 176 },
    },
    room: US_EAST_PAIR_ROOM,
    client: measuredClient({ 'us-west': 50, 'us-east': 200, 'eu-west': 50, apac: 300 }),
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-west', node: 'usw-1', cascadeRegions: ['us-east', 'us-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [65, 105, 65, 267],
    },
  },
  {
    // Located exactly at eu-west's catalog point: RTT to eu-west = base 5 ms, others 5 + 0.0125 × km.
    name: 'geoip source: a client located at eu-west starts a room there',
    room: EMPTY_ROOM,
    client: estimateClientRtt({ regions: DEFAULT_REGIONS, location: { lat: 53.3, lon: -6.3 }, model: GEO_MODEL }),
    expect: {
      home: 'eu-west', homeNode: 'euw-1', region: 'eu-west', node: 'euw-1', cascadeRegions: ['eu-west'],
      reasons: ['GEOIP_ESTIMATED_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'NODE_LEAST_STRESSED'],
    },
  },
  {
    // Default 100 everywhere, one us-east participant (edge 10):
    // us-west (100+68+10)/2 = 89; us-east (100+0+10)/2 = 55; eu-west (100+72+10)/2 = 91; apac (100+224+10)/2 = 167.
    name: 'default source: the inter-region RTTs decide',
    room: US_EAST_PAIR_ROOM,
    client: DEFAULT_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['DEFAULT_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [89, 55, 91, 167],
    },
  },
  {
    // Measured us-east 12 and eu-west 80; us-west and apac take the default 100.
    name: 'partial client RTT: unmeasured regions estimated',
    room: EMPTY_ROOM,
    client: estimateClientRtt({ regions: DEFAULT_REGIONS, measured: { 'us-east': 12, 'eu-west': 80 }, model: GEO_MODEL }),
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['PARTIAL_CLIENT_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'NODE_LEAST_STRESSED'],
      scores: [100, 12, 80, 100],
    },
  },
  {
    // The room kept its home after everyone left: scores are client RTTs, eu-west (10) joins the cascade.
    name: 'room with a home but nobody in it: the client RTT decides',
    room: room('us-east', 'use-1', []),
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-1', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [140, 85, 10, 180],
    },
  },
  {
    // Scores as in the transatlantic pair (eu-west would be 46), but the room is pinned to us-east.
    name: 'first-joiner: everyone joins the home region',
    strategy: 'first-joiner',
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'PINNED_TO_HOME', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 47.5, 46, 207],
    },
  },
  {
    // Home full: the client's own nearest region (eu-west, RTT 10).
    name: 'first-joiner: home unavailable, overflow to the nearest region',
    strategy: 'first-joiner',
    nodes: nodes({ 'use-1': { stress: 1 } }),
    room: US_EAST_PAIR_ROOM,
    client: EU_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-1', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'HOME_REGION_UNAVAILABLE', 'NEAREST_REGION', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      scores: [109, null, 46, 207],
      excluded: { 'us-east': 'OVERLOADED' },
    },
  },
  {
    name: 'first-joiner: the first participant sets the home',
    strategy: 'first-joiner',
    room: EMPTY_ROOM,
    client: APAC_CLIENT,
    expect: {
      home: 'apac', homeNode: 'apac-1', region: 'apac', node: 'apac-1', cascadeRegions: ['apac'],
      reasons: ['CLIENT_MEASURED_RTT', 'FIRST_PARTICIPANT_SETS_HOME', 'NODE_LEAST_STRESSED'],
      scores: [175, 230, 180, 8],
    },
  },
  {
    // Client RTT us-east 50, eu-west 45. nearest: eu-west (45).
    // min-delay would pick us-east: (50+0+10)/2 = 30 against eu-west (45+72+10)/2 = 63.5.
    name: 'nearest: the lowest-RTT region even when it costs the room delay',
    strategy: 'nearest',
    room: US_EAST_PAIR_ROOM,
    client: measuredClient({ 'us-west': 140, 'us-east': 50, 'eu-west': 45, apac: 180 }),
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'eu-west', node: 'euw-1', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'NEAREST_REGION', 'CASCADE_ADDED', 'NODE_LEAST_STRESSED'],
      // us-west (140+68+10)/2 = 109; apac (180+224+10)/2 = 207
      scores: [109, 30, 63.5, 207],
    },
  },
  {
    name: 'min-delay on the same input: us-east',
    room: US_EAST_PAIR_ROOM,
    client: measuredClient({ 'us-west': 140, 'us-east': 50, 'eu-west': 45, apac: 180 }),
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'MIN_MEAN_DELAY', 'NODE_ALREADY_IN_ROOM'],
      scores: [109, 30, 63.5, 207],
    },
  },
  {
    // The us-east client's nearest region (12) is already in the room.
    name: 'nearest: a region already in the room is reused',
    strategy: 'nearest',
    room: TWO_CONTINENT_ROOM,
    client: US_EAST_CLIENT,
    expect: {
      home: 'us-east', homeNode: 'use-1', region: 'us-east', node: 'use-1', cascadeRegions: ['us-east', 'eu-west'],
      reasons: ['CLIENT_MEASURED_RTT', 'ROOM_HOME_EXISTS', 'NEAREST_REGION', 'NODE_ALREADY_IN_ROOM'],
      // mean edge 12.5: us-west (70 + 100.5 + 12.5)/2 = 91.5; us-east (12 + 36 + 12.5)/2 = 30.25;
      // eu-west (80 + 36 + 12.5)/2 = 64.25; apac (230 + 200 + 12.5)/2 = 221.25
      scores: [91.5, 30.25, 64.25, 221.25],
    },
  },
];

describe('placement scenarios', () => {
  it.each(SCENARIOS)('$name', (scenario) => {
    const input = placementInput({
      nodes: scenario.nodes ?? nodes(),
      interRegionRtt: interRegion(scenario.interRegion),
      room: scenario.room,
      client: scenario.client,
      excludeNodeIds: scenario.excludeNodeIds ?? [],
      marginMs: scenario.marginMs ?? 0,
    });
    const result = createStrategy(scenario.strategy ?? 'min-delay').place(input);
    const candidates = result.ok ? result.decision.candidates : result.candidates;
    const reasons = result.ok ? result.decision.reasons : result.reasons;

    // One candidate per catalog region, in catalog order, with the client's RTT as used.
    expect(candidates.map((c) => c.region)).toEqual(REGIONS);
    for (const c of candidates) {
      expect(c.clientRttMs).toBe(scenario.client.byRegion[c.region]);
      expect(c.nodeId === undefined).toBe(c.excludedBecause !== undefined);
      expect(c.score === null).toBe(c.excludedBecause !== undefined);
    }
    const excluded = Object.fromEntries(candidates.filter((c) => c.excludedBecause).map((c) => [c.region, c.excludedBecause]));
    expect(excluded).toEqual(scenario.expect.excluded ?? {});
    expect(reasons.map((r) => r.code)).toEqual(scenario.expect.reasons);

    if ('ok' in scenario.expect) {
      expect(result.ok).toBe(false);
      return;
    }
    if (!result.ok) throw new Error('expected a placement');
    const { decision } = result;
    expect({
      home: decision.homeRegion,
      homeNode: decision.homeNodeId,
      region: decision.region,
      node: decision.nodeId,
      cascadeRegions: decision.cascadeRegions,
    }).toEqual({
      home: scenario.expect.home,
      homeNode: scenario.expect.homeNode,
      region: scenario.expect.region,
      node: scenario.expect.node,
      cascadeRegions: scenario.expect.cascadeRegions,
    });
    if (scenario.expect.scores) expect(candidates.map((c) => c.score)).toEqual(scenario.expect.scores);
  });
});

describe('reason messages', () => {
  it('say what was decided, with the numbers', () => {
    const result = createStrategy('min-delay').place(placementInput({ room: TWO_CONTINENT_ROOM, client: APAC_CLIENT }));
    if (!result.ok) throw new Error('expected a placement');
    expect(result.decision.reasons).toEqual([
      { code: 'CLIENT_MEASURED_RTT', message: 'client measured its RTT to all 4 regions' },
      { code: 'ROOM_HOME_EXISTS', message: "room's home is us-east (use-1)", region: 'us-east', nodeId: 'use-1' },
      { code: 'MIN_MEAN_DELAY', message: 'apac: mean one-way delay to 2 others 110.3 ms', region: 'apac', valueMs: 110.25 },
      { code: 'CASCADE_ADDED', message: 'apac is new to the room: it joins the cascade of home us-east', region: 'apac' },
      {
        code: 'NODE_LEAST_STRESSED',
        message: 'apac-1 is the least stressed of 1 eligible node in apac (stress 0.10)',
        region: 'apac',
        nodeId: 'apac-1',
      },
    ]);
  });

  it('name the saving and the margin when a region is kept', () => {
    const result = createStrategy('min-delay').place(placementInput({ room: US_EAST_PAIR_ROOM, client: EU_CLIENT, marginMs: 20 }));
    if (!result.ok) throw new Error('expected a placement');
    expect(result.decision.reasons.find((r) => r.code === 'KEPT_IN_ROOM_REGION_BY_MARGIN')).toEqual({
      code: 'KEPT_IN_ROOM_REGION_BY_MARGIN',
      message: 'kept in us-east (mean one-way delay to 1 other 47.5 ms): eu-west would save 1.5 ms, not more than the 20 ms margin',
      region: 'us-east',
      valueMs: 1.5,
    });
  });

  it('name the estimated regions and the default', () => {
    const partial = estimateClientRtt({ regions: DEFAULT_REGIONS, measured: { 'us-east': 12 }, model: GEO_MODEL });
    const partialResult = createStrategy('nearest').place(placementInput({ room: EMPTY_ROOM, client: partial }));
    const defaultResult = createStrategy('nearest').place(placementInput({ room: EMPTY_ROOM, client: DEFAULT_CLIENT }));
    if (!partialResult.ok || !defaultResult.ok) throw new Error('expected placements');
    expect(partialResult.decision.reasons[0]?.message).toBe('client measured 1 of 4 regions; estimated us-west, eu-west, apac');
    expect(defaultResult.decision.reasons[0]?.message).toBe('no measurement and no IP location: 100 ms assumed for every region');
  });
});

describe('createStrategy', () => {
  it('builds each configured kind', () => {
    for (const kind of ['min-delay', 'first-joiner', 'nearest'] as const) expect(createStrategy(kind).kind).toBe(kind);
  });

  it('throws a TypeError naming an unknown kind', () => {
    expect(() => createStrategy('round-robin' as PlacementStrategyKind)).toThrow(TypeError);
    expect(() => createStrategy('round-robin' as PlacementStrategyKind)).toThrow(/round-robin/);
  });
});
