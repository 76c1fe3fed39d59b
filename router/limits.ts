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
    this.failedAuth = shared ? new ReadWhereFailed(counter('failed_auth'), now) : counter('failed_auth');
    // requireSignature checks this process's own nonce cache first: with Redis away, that check is all there is.
    this.nonces = { remember: (nonce, windowMs) => fallback('nonce', (s) => s.remember(nonce, windowMs * 2), async () => true) };
  }
}

/** Addresses a replica remembers having answered 401; past it, every peek asks the shared counter. */
const FAILED_HERE_MAX = 100_000;

/**
 * The failed-authentication counter as one replica reads it. The count is shared (Redis), but an
 * address's count is read only once this replica has itself answered it 401 within the window: the
 * credentialed requests of clients that never fail, nearly all of them, then cost no Redis read
 * (every /allocate with a grant or API key presents a credential). The price: a guesser spread over N
 * replicas gets at most N − 1 tries past the limit per window (each replica's first failure), and
 * a restarted replica forgets what it saw.
 */
export class ReadWhereFailed implements WindowCounter {
  /** Address → when this replica's memory of its failures ends. */
  readonly #failedHere = new Map<string, number>();
  constructor(
    private readonly shared: WindowCounter,
    private readonly now: () => number,
  ) {}

  hit(key: string, windowMs: number): Promise<WindowCount> {
    const at = this.now();
    // Kept in the order they end (one window length for all): the ended ones are the first.
    for (const [k, until] of this.#failedHere) {
      if (until > at) break;
      this.#failedHere.delete(k);
    }
    this.#failedHere.delete(key);
    // Full of live windows (many addresses failing at once): the peek below then asks for every address.
    if (this.#failedHere.size < FAILED_HERE_MAX) this.#failedHere.set(key, at + windowMs);
    return this.shared.hit(key, windowMs);
  }

  async peek(key: string, windowMs: number): Promise<WindowCount> {
    const until = this.#failedHere.get(key);
    if (until === undefined ? this.#failedHere.size < FAILED_HERE_MAX : this.now() >= until) {
      if (until !== undefined) this.#failedHere.delete(key);
      return { count: 0, resetInMs: 0 };
    }
    return this.shared.peek(key, windowMs);
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
