import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import { buildInterRegionRtt, type MeasuredInterRegionRtt } from '../../router/placement/inter-region.ts';
import type { ClientRtt, PlacedParticipant, PlacementInput, PlacementNode, RoomSnapshot } from '../../router/placement/types.ts';

/** Shared test data: the default catalog, the sample inter-region RTTs, a node per region. */

export const REGIONS = DEFAULT_REGIONS.map((r) => r.id); // us-west, us-east, eu-west, apac
export const GEO_MODEL = { baseRttMs: 5, msPerKm: 0.0125, defaultRttMs: 100 };

/** Sample inter-region RTTs (ms), one direction each: the builder makes them symmetric. */
export const SAMPLE_INTER_REGION: MeasuredInterRegionRtt = {
  'us-west': { 'us-east': 68, 'eu-west': 133, apac: 170 },
  'us-east': { 'eu-west': 72, apac: 224 },
  'eu-west': { apac: 176 },
};

export function interRegion(measured: MeasuredInterRegionRtt = SAMPLE_INTER_REGION) {
  return buildInterRegionRtt({ regions: DEFAULT_REGIONS, measured, model: GEO_MODEL });
}

export function node(nodeId: string, region: string, overrides: Partial<PlacementNode> = {}): PlacementNode {
  return { nodeId, region, state: 'alive', draining: false, cordoned: false, stress: 0.1, ...overrides };
}

/** One alive node per region at stress 0.1; `overrides` by node id, `extra` appended. */
export function nodes(overrides: Record<string, Partial<PlacementNode>> = {}, extra: PlacementNode[] = []): PlacementNode[] {
  const base = [node('usw-1', 'us-west'), node('use-1', 'us-east'), node('euw-1', 'eu-west'), node('apac-1', 'apac')];
  return [...base.map((n) => ({ ...n, ...overrides[n.nodeId] })), ...extra];
}

export function measuredClient(byRegion: Record<string, number>): ClientRtt {
  return { byRegion, source: 'client', estimatedRegions: [] };
}

export function placed(participantId: string, region: string, nodeId: string, edgeRttMs: number): PlacedParticipant {
  return { participantId, region, nodeId, edgeRttMs };
}

export const EMPTY_ROOM: RoomSnapshot = { homeRegion: null, homeNodeId: null, participants: [] };

export function room(homeRegion: string, homeNodeId: string, participants: PlacedParticipant[]): RoomSnapshot {
  return { homeRegion, homeNodeId, participants };
}

export function placementInput(overrides: Partial<PlacementInput> & Pick<PlacementInput, 'client' | 'room'>): PlacementInput {
  return { regions: REGIONS, nodes: nodes(), interRegionRtt: interRegion(), excludeNodeIds: [], marginMs: 0, ...overrides };
}

/** The simulator's seeded PRNG: property tests are random-looking yet repeatable. */
export { seededRandom } from '../../bench/placement/prng.ts';
