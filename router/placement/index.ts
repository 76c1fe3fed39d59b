import { firstJoinerStrategy } from './first-joiner.ts';
import { minDelayStrategy } from './min-delay.ts';
import { nearestStrategy } from './nearest.ts';
import type { PlacementStrategy, PlacementStrategyKind } from './types.ts';

/** The strategy GEO_SFU_PLACEMENT_STRATEGY names. */
export function createStrategy(kind: PlacementStrategyKind): PlacementStrategy {
  switch (kind) {
    case 'min-delay':
      return minDelayStrategy;
    case 'first-joiner':
      return firstJoinerStrategy;
    case 'nearest':
      return nearestStrategy;
    default:
      // Reachable from untyped callers (JSON, tests); the config loader rejects other names first.
      throw new TypeError(`unknown placement strategy kind "${String(kind)}" (expected min-delay, first-joiner or nearest)`);
  }
}

export type * from './types.ts';
export { estimateClientRtt, type ClientRttInput, type ClientRttModel } from './client-rtt.ts';
export { buildInterRegionRtt, type InterRegionRttInput, type MeasuredInterRegionRtt } from './inter-region.ts';
export { geoRttMs, type GeoPoint, type GeoRttModel } from './geo-rtt.ts';
export { nodeStress, type StressLimits } from './stress.ts';
export {
  assessRegions,
  chooseNode,
  nodeExclusion,
  regionExclusion,
  type NodeChoice,
  type RegionAssessment,
} from './eligibility.ts';
export {
  newcomerMeanDelay,
  oneWayDelayMs,
  roomDelayProfile,
  roomMeanPairwiseDelay,
  type EdgeAssignment,
  type RoomDelayProfile,
} from './delay.ts';
export { minDelayStrategy } from './min-delay.ts';
export { firstJoinerStrategy } from './first-joiner.ts';
export { nearestStrategy } from './nearest.ts';
export {
  followPlan,
  proposeRebalance,
  type RebalanceInput,
  type RebalanceMove,
  type RebalanceParticipant,
  type RebalanceProposal,
  type RebalanceThresholds,
} from './rebalance.ts';
