import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Ticker } from '../../shared/ticker.ts';
import { closeRedis, connectRedis, type RedisTarget } from './redis-client.ts';

/**
 * Who runs the router's background duties (allocation expiry, re-homing rooms of dead nodes,
 * scaling and alert webhooks) when several routers share Redis: the holder of a lease that it
 * renews well before it expires. A leader that dies stops renewing, so another router takes over
 * within one lease time.
 */
export interface LeaderLease {
  /** True while this router holds the lease (as of its last renewal). */
  isLeader(): boolean;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A single router is always the leader. */
export class LocalLeaderLease implements LeaderLease {
  isLeader(): boolean {
    return true;
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {}
}

/** KEYS: lease. ARGV: holder, ttlMs. Takes a free lease or extends our own; 1 when held. */
const ACQUIRE_OR_RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS: lease. ARGV: holder. Releases the lease only if we hold it. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** `url` or `sentinel`: where Redis is (redisTarget). */
export interface RedisLeaderLeaseOptions extends RedisTarget {
  keyPrefix: string;
  timeoutMs: number;
  /** The lease expires this long after its last renewal. */
  ttlMs: number;
  /** Renewed this often (GEO_SFU_LEADER_RENEW_MS); default a third of `ttlMs`, at least 50 ms. */
  renewMs?: number;
  logger?: Logger;
  onChange?: (leader: boolean) => void;
}

type LeaseRedis = Redis & {
  leaseAcquire(key: string, holder: string, ttlMs: number): Promise<number>;
  leaseRelease(key: string, holder: string): Promise<number>;
};

export class RedisLeaderLease implements LeaderLease {
  readonly holder = randomUUID();
  #leader = false;
  #redis: LeaseRedis | null = null;
  #ticker: Ticker | null = null;
  readonly #key: string;

  constructor(private readonly options: RedisLeaderLeaseOptions) {
    this.#key = `${options.keyPrefix}leader`;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  async start(): Promise<void> {
    const redis = await connectRedis({ url: this.options.url, sentinel: this.options.sentinel, timeoutMs: this.options.timeoutMs, connectionName: 'geo-sfu:leader', logger: this.options.logger });
    redis.defineCommand('leaseAcquire', { numberOfKeys: 1, lua: ACQUIRE_OR_RENEW });
    redis.defineCommand('leaseRelease', { numberOfKeys: 1, lua: RELEASE });
    this.#redis = redis as LeaseRedis;
    const renewMs = this.options.renewMs || Math.max(50, Math.floor(this.options.ttlMs / 3));
    this.#ticker = new Ticker(renewMs, () => this.#renew(), () => undefined, { unref: true });
    this.#ticker.start();
    // The first renewal before start() resolves: a router that can be the leader is one when it serves.
    await this.#ticker.runNow();
  }

  async #renew(): Promise<void> {
    const started = Date.now();
    let held = false;
    try {
      held = (await this.#redis!.leaseAcquire(this.#key, this.holder, this.options.ttlMs)) === 1;
    } catch {
      // Redis away: we cannot know whether we still hold it, so act as if we do not.
    }
    // A renewal that took most of the lease time may have landed after the lease expired.
    if (Date.now() - started > this.options.ttlMs / 2) held = false;
    if (held !== this.#leader) {
      this.#leader = held;
      this.options.onChange?.(held);
    }
  }

  async close(): Promise<void> {
    await this.#ticker?.stop();
    this.#ticker = null;
    if (this.#redis) {
      if (this.#leader) await this.#redis.leaseRelease(this.#key, this.holder).catch(() => 0);
      this.#leader = false;
      await closeRedis(this.#redis);
      this.#redis = null;
    }
  }
}
