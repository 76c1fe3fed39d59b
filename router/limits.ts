import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import { DependencyUnavailableError } from '../shared/errors.ts';
import { LocalWindowCounter, type NonceStore, type WindowCount, type WindowCounter } from '../shared/limits.ts';
import type { RedisLimitStore } from './state/redis-limit-store.ts';

/** How long the limits stay local after Redis failed to answer one of them. */
const LOCAL_AFTER_FAILURE_MS = 1_000;

/** The limits a router enforces, by the name its fallback metric carries. */
export type LimitName = 'allocate' | 'failed_auth' | 'nonce';

/**
 * The router's limits: /allocate's rate limit, the failed-authentication limit and the nonces of
 * signed requests. With Redis (router replicas) each is counted there, so N replicas enforce one
 * limit and refuse a replayed request whichever replica it reaches. While Redis does not answer,
 * each decision is taken by this process alone (as a single router would), so agents' signed calls
 * keep working in degraded mode, and `onLocal` counts it (geo_sfu_limit_local_decisions_total).
 * After a failure Redis is asked again only after LOCAL_AFTER_FAILURE_MS.
 * Without Redis (a single router) everything is local and nothing is counted.
 */
export class RouterLimits {
  readonly allocate: WindowCounter;
  readonly failedAuth: WindowCounter;
  readonly nonces: NonceStore;

  constructor(shared: RedisLimitStore | null, now: () => number, onLocal: (limit: LimitName) => void) {
    // After a failure, decide locally for a while without asking: a Redis that is slow rather than
    // gone would otherwise add its timeout to every request, up to three times for /allocate.
    let localUntil = 0;
    const fallback = async <T>(limit: LimitName, inRedis: (store: RedisLimitStore) => Promise<T>, local: () => Promise<T>): Promise<T> => {
      if (!shared) return local();
      if (now() >= localUntil) {
        try {
          return await inRedis(shared);
        } catch (err) {
          if (!(err instanceof DependencyUnavailableError)) throw err;
          localUntil = now() + LOCAL_AFTER_FAILURE_MS;
        }
      }
      onLocal(limit);
      return local();
    };
    const counter = (limit: LimitName): WindowCounter => {
      const local = new LocalWindowCounter(now);
      return {
        hit: (key, windowMs): Promise<WindowCount> => fallback(limit, (s) => s.hit(limit, key, windowMs), () => local.hit(key, windowMs)),
        peek: (key, windowMs): Promise<WindowCount> => fallback(limit, (s) => s.peek(limit, key), () => local.peek(key, windowMs)),
      };
    };
    this.allocate = counter('allocate');
    this.failedAuth = counter('failed_auth');
    // requireSignature checks this process's own nonce cache first: with Redis away, that check is all there is.
    this.nonces = { remember: (nonce, windowMs) => fallback('nonce', (s) => s.remember(nonce, windowMs * 2), async () => true) };
  }
}

/** @fastify/rate-limit's store over a WindowCounter (one route: no per-route children). */
export function rateLimitStore(counter: WindowCounter): FastifyRateLimitStoreCtor {
  return class implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      counter.hit(key, timeWindow).then(
        ({ count, resetInMs }) => callback(null, { current: count, ttl: resetInMs }),
        (err: unknown) => callback(err as Error),
      );
    }
    child(): FastifyRateLimitStore {
      return this;
    }
  };
}
