/**
 * In-node spread: how a room spreads over the pool's workers when it outgrows one.
 *
 * Each peer is assigned one of its room's routers (one router per worker the room spans). A
 * router is open for newcomers while its consumers stay under `threshold × consumersPerWorker`;
 * a newcomer goes to the open router with the fewest consumers. When none is open, the room
 * spreads to a worker it does not use yet (up to `maxRoutersPerRoom` routers), else the newcomer
 * goes to the router with the fewest consumers. Pure: the Room asks, then acts.
 */
import { positiveOption, SfuError } from './errors.ts';

export interface SpreadOptions {
  /** Consumers one worker is expected to carry (capacity). Default 500. */
  consumersPerWorker?: number;
  /** Share (0..1] of that capacity a room may use on one router before spreading. Default 0.8. */
  threshold?: number;
  /** Maximum routers (= workers) per room. Default: the pool size. */
  maxRoutersPerRoom?: number;
}

export type SpreadPolicy = Required<SpreadOptions>;

/** Where a new peer goes. */
export interface SpreadDecision {
  /** Open a router on a worker the room does not use yet for it. */
  spread: boolean;
  /** Else (or if that fails) this one of the room's routers, by index. */
  router: number;
}

/** The policy for `options` on a pool of `poolSize` workers; `false` keeps every room on one router. */
export function spreadPolicy(options: SpreadOptions | false | undefined, poolSize: number): SpreadPolicy | undefined {
  if (options === false) return undefined;
  const threshold = options?.threshold ?? 0.8;
  if (!(threshold > 0 && threshold <= 1)) {
    throw new SfuError('INVALID_ARGUMENT', `spread.threshold must be in (0, 1] (got ${threshold})`);
  }
  return {
    consumersPerWorker: positiveOption(options?.consumersPerWorker, 500, 'spread.consumersPerWorker'),
    threshold,
    maxRoutersPerRoom: positiveOption(options?.maxRoutersPerRoom, poolSize, 'spread.maxRoutersPerRoom'),
  };
}

/**
 * The router for a new peer, given the consumers on each of the room's routers (the first is the
 * room's primary; at least one) and how many of the pool's workers the room does not use yet.
 * Without a policy the room stays on its primary router. Ties go to the earlier router.
 */
export function placePeer(consumers: readonly number[], policy: SpreadPolicy | undefined, unusedWorkers: number): SpreadDecision {
  if (!policy) return { spread: false, router: 0 };
  let fewest = 0;
  for (let i = 1; i < consumers.length; i++) if (consumers[i]! < consumers[fewest]!) fewest = i;
  // The router with the fewest consumers is open if any is.
  const full = consumers[fewest]! >= policy.consumersPerWorker * policy.threshold;
  return { spread: full && consumers.length < policy.maxRoutersPerRoom && unusedWorkers > 0, router: fewest };
}
