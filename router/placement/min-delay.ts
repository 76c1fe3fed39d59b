import {
  allRegionsEqual,
  assessPlacement,
  byScore,
  decide,
  ms,
  noEligibleRegion,
  placeFirstParticipant,
  preferNearTie,
  rankOptions,
  reason,
  scoresWithin,
  type EligibleOption,
  type PlacementContext,
} from './decision.ts';
import type { PlacementStrategy } from './types.ts';

/**
 * The default strategy: each newcomer gets the eligible edge minimising its mean one-way delay to
 * the others. Earlier participants do not move, so this also minimises the room's mean pairwise
 * delay after the join. A region already in the room wins when the best new region would save no
 * more than `marginMs`, since every new region costs a cascade link.
 */
export const minDelayStrategy: PlacementStrategy = {
  kind: 'min-delay',
  place(input) {
    const ctx = assessPlacement(input);
    if (ctx.eligible.length === 0) return noEligibleRegion(ctx);
    if (ctx.home === null) return placeFirstParticipant(ctx);
    const ranked = rankOptions(ctx.eligible, byScore);
    const best = ranked[0]!;
    const tie = allRegionsEqual(ctx, byScore);
    const bestInRoom = ctx.roomRegions.has(best.region) ? undefined : ranked.find((o) => ctx.roomRegions.has(o.region));
    if (bestInRoom && scoresWithin(bestInRoom, best, input.marginMs)) {
      const savingMs = bestInRoom.score - best.score;
      // Kept in the room's regions: a preferred one of them may win the near-tie, never a new region.
      const kept = preferNearTie(ctx, bestInRoom, byScore, ranked.filter((o) => ctx.roomRegions.has(o.region)));
      return decide(ctx, kept.option, [
        reason(
          'KEPT_IN_ROOM_REGION_BY_MARGIN',
          `kept in ${bestInRoom.region} (${meanDelayText(ctx, bestInRoom)}): ${best.region} would save ${ms(savingMs)}, not more than the ${ms(input.marginMs)} margin`,
          { region: bestInRoom.region, valueMs: savingMs },
        ),
        ...kept.reasons,
        ...tie,
      ]);
    }
    const chosen = preferNearTie(ctx, best, byScore);
    return decide(ctx, chosen.option, [
      reason('MIN_MEAN_DELAY', `${best.region}: ${meanDelayText(ctx, best)}`, { region: best.region, valueMs: best.score }),
      ...chosen.reasons,
      ...tie,
    ]);
  },
};

function meanDelayText(ctx: PlacementContext, option: EligibleOption): string {
  const others = ctx.input.room.participants.length;
  return others === 0
    ? `alone in the room, RTT ${ms(option.score)}`
    : `mean one-way delay to ${others} other${others === 1 ? '' : 's'} ${ms(option.score)}`;
}
