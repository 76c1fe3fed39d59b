import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import type { WindowCount } from '../../shared/limits.ts';
import { closeRedis, connectRedis, redisCall, type RedisTarget } from './redis-client.ts';

/** KEYS: counter. ARGV: windowMs. Counts one event; the window opens at the first. Returns {count, ms left}. */
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`;

/** KEYS: counter. Returns {count, ms left} without counting. */
const PEEK = `
local n = redis.call('GET', KEYS[1])
if not n then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(n), ttl}
`;

type LimitScripts = Redis & {
  limitHit(key: string, windowMs: number): Promise<[number, number]>;
  limitPeek(key: string): Promise<[number, number]>;
};

/** `url` or `sentinel`: where Redis is (redisTarget). */
export interface RedisLimitStoreOptions extends RedisTarget {
  keyPrefix: string;
  timeoutMs: number;
  logger?: Logger;
}

/**
 * The limits router replicas share (router/limits.ts): window counters under `<prefix>limit:` and
 * signed-request nonces under `<prefix>nonce:` (`SET NX PX`). Every call fails with
 * DependencyUnavailableError when Redis does not answer, at once while the connection is down.
 */
export class RedisLimitStore {
  private constructor(
    private readonly redis: LimitScripts,
    private readonly keyPrefix: string,
  ) {}

  static async open(options: RedisLimitStoreOptions): Promise<RedisLimitStore> {
    const redis = await connectRedis({ url: options.url, sentinel: options.sentinel, timeoutMs: options.timeoutMs, connectionName: 'geo-sfu:limits', logger: options.logger });
    redis.defineCommand('limitHit', { numberOfKeys: 1, lua: HIT });
    redis.defineCommand('limitPeek', { numberOfKeys: 1, lua: PEEK });
    return new RedisLimitStore(redis as LimitScripts, options.keyPrefix);
  }

  async hit(limit: string, key: string, windowMs: number): Promise<WindowCount> {
    const [count, resetInMs] = await this.#call(() => this.redis.limitHit(`${this.keyPrefix}limit:${limit}:${key}`, windowMs));
    return { count, resetInMs };
  }

  async peek(limit: string, key: string): Promise<WindowCount> {
    const [count, resetInMs] = await this.#call(() => this.redis.limitPeek(`${this.keyPrefix}limit:${limit}:${key}`));
    return { count, resetInMs };
  }

  /** False if the nonce was stored within `ttlMs` (by any replica); stores it otherwise. */
  async remember(nonce: string, ttlMs: number): Promise<boolean> {
    return (await this.#call(() => this.redis.set(`${this.keyPrefix}nonce:${nonce}`, '1', 'PX', ttlMs, 'NX'))) === 'OK';
  }

  close(): Promise<void> {
    return closeRedis(this.redis);
  }

  #call<T>(command: () => Promise<T>): Promise<T> {
    // While the connection is down, fail now rather than after a timeout: the caller decides locally.
    if (this.redis.status !== 'ready') return Promise.reject(new DependencyUnavailableError(`redis: limits connection ${this.redis.status}`));
    return redisCall(command);
  }
}
