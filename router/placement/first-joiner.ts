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
 * LiveKit OSS style: the room lives where its first participant is best served, and everyone joins
 * it there. Only when the home region cannot take anyone does a participant overflow to its own
 * nearest eligible region.
 */
export const firstJoinerStrategy: PlacementStrategy = {
  kind: 'first-joiner',
  place(input) {
    const ctx = assessPlacement(input);
    if (ctx.eligible.length === 0) return noEligibleRegion(ctx);
    if (ctx.home === null) return placeFirstParticipant(ctx);
    const { region: homeRegion } = ctx.home;
    const home = ctx.eligible.find((o) => o.region === homeRegion);
    if (home) {
      return decide(ctx, home, [
        reason('PINNED_TO_HOME', `pinned to the room's home ${homeRegion} (RTT ${ms(home.clientRttMs)})`, { region: homeRegion, valueMs: home.clientRttMs }),
      ]);
    }
    const nearest = rankOptions(ctx.eligible, byClientRtt)[0]!;
    const chosen = preferNearTie(ctx, nearest, byClientRtt);
    return decide(ctx, chosen.option, [
      reason('NEAREST_REGION', `overflow to the nearest eligible region ${nearest.region} (RTT ${ms(nearest.clientRttMs)})`, {
        region: nearest.region,
        valueMs: nearest.clientRttMs,
      }),
      ...chosen.reasons,
      ...allRegionsEqual(ctx, byClientRtt),
    ]);
  },
};
