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
export { estimateClientRtt } from './client-rtt.ts';
export { buildInterRegionRtt } from './inter-region.ts';
export { roomMeanPairwiseDelay } from './delay.ts';
export { followPlan, proposeRebalance, type RebalanceInput, type RebalanceParticipant, type RebalanceThresholds } from './rebalance.ts';
