import {
  allRegionsEqual,
  assessPlacement,
  byClientRtt,
  decide,
  ms,
  noEligibleRegion,
  placeFirstParticipant,
  preferNearTie,
  rankOptions,
  reason,
} from './decision.ts';
import type { PlacementStrategy } from './types.ts';

/**
 * Each participant on its own lowest-RTT eligible region, whatever the rest of the room does: the
 * baseline min-delay is measured against.
 */
export const nearestStrategy: PlacementStrategy = {
  kind: 'nearest',
  place(input) {
    const ctx = assessPlacement(input);
    if (ctx.eligible.length === 0) return noEligibleRegion(ctx);
    if (ctx.home === null) return placeFirstParticipant(ctx);
    const nearest = rankOptions(ctx.eligible, byClientRtt)[0]!;
    const chosen = preferNearTie(ctx, nearest, byClientRtt);
    return decide(ctx, chosen.option, [
      reason('NEAREST_REGION', `nearest eligible region ${nearest.region} (RTT ${ms(nearest.clientRttMs)})`, {
        region: nearest.region,
        valueMs: nearest.clientRttMs,
      }),
      ...chosen.reasons,
      ...allRegionsEqual(ctx, byClientRtt),
    ]);
  },
};
