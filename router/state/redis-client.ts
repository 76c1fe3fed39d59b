import { type ChainableCommander, Redis, type RedisOptions } from 'ioredis';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { Logger } from 'pino';
import { dependencyFailure } from './dependency-error.ts';

/** A Redis group monitored by Sentinel (GEO_SFU_REDIS_SENTINELS): its primary is asked of the sentinels. */
export interface RedisSentinelTarget {
  sentinels: Array<{ host: string; port: number }>;
  /** The master group name. */
  name: string;
  sentinelPassword: string;
  /** The data nodes' password. */
  password: string;
  tls: boolean;
  sentinelTls: boolean;
}

/** Where the router's Redis is: one server (`url`), or, when `sentinel` is set, a Sentinel group (`url` unused). */
export interface RedisTarget {
  url: string;
  sentinel?: RedisSentinelTarget;
}

type RedisSettings = Pick<GeoSfuConfig, 'redisUrl' | 'redisSentinels' | 'redisSentinelName' | 'redisSentinelPassword' | 'redisPassword' | 'redisTls' | 'redisSentinelTls'>;

/** The configured Redis, or null when the router runs on memory (neither REDIS_URL nor sentinels). */
export function redisTarget(config: RedisSettings): RedisTarget | null {
  if (config.redisSentinels === '') return config.redisUrl === '' ? null : { url: config.redisUrl };
  const sentinels = config.redisSentinels.split(',').map((hostPort) => {
    const colon = hostPort.lastIndexOf(':');
    return { host: hostPort.slice(0, colon), port: Number(hostPort.slice(colon + 1)) };
  });
  return {
    url: '',
    sentinel: {
      sentinels,
      name: config.redisSentinelName,
      sentinelPassword: config.redisSentinelPassword,
      password: config.redisPassword,
      tls: config.redisTls,
      sentinelTls: config.redisSentinelTls,
    },
  };
}

export interface RedisConnectionOptions extends RedisTarget {
  /** Every command fails after this long (the configured redisTimeoutMs). */
  timeoutMs: number;
  /** Shown by CLIENT LIST, so an operator can tell the router's connections apart. */
  connectionName: string;
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/**
 * Opens an ioredis connection tuned to fail fast: a router must answer /allocate with a 503 when
 * Redis is away, not hang. No offline queue and no resend of in-flight commands, so a command that
 * already failed for its caller is never executed later behind its back; the connection itself
 * keeps reconnecting in the background.
 */
export async function connectRedis(options: RedisConnectionOptions): Promise<Redis> {
  const common: RedisOptions = {
    lazyConnect: true,
    connectionName: options.connectionName,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    // A server that became a replica under an open connection (a failover the connection did not
    // see) refuses writes with READONLY: connect again, to the primary the sentinels name now.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    // Commands issued in the same tick share one socket write: under load /allocate's reads and
    // scripts for many requests go out together instead of a syscall each.
    enableAutoPipelining: true,
  };
  const { sentinel } = options;
  const redis = sentinel
    ? new Redis({
        ...common,
        sentinels: sentinel.sentinels,
        name: sentinel.name,
        ...(sentinel.sentinelPassword !== '' ? { sentinelPassword: sentinel.sentinelPassword } : {}),
        ...(sentinel.password !== '' ? { password: sentinel.password } : {}),
        // ioredis: `tls` with enableTLSForSentinelMode for the data nodes, sentinelTLS for the sentinels.
        ...(sentinel.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        ...(sentinel.sentinelTls ? { sentinelTLS: {} } : {}),
        // After a failover: reconnect to the primary the sentinels name now, told at once by their
        // +switch-master, and keep trying the sentinels while none answers.
        failoverDetector: true,
        sentinelRetryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
      })
    : new Redis(options.url, common);
  // Log the first error of an outage and the recovery, not every reconnect attempt.
  let healthy = true;
  redis.on('error', (err: Error) => {
    if (!healthy) return;
    healthy = false;
    options.logger?.warn({ err, connection: options.connectionName }, 'redis connection lost');
  });
  redis.on('ready', () => {
    if (healthy) return;
    healthy = true;
    options.logger?.info({ connection: options.connectionName }, 'redis connection restored');
  });
  try {
    await redis.connect();
  } catch (err) {
    closing.add(redis);
    redis.disconnect();
    throw dependencyFailure('redis', err);
  }
  keepConnecting(redis, options);
  return redis;
}

/** Connections closed on purpose (closeRedis): their `end` is final. */
const closing = new WeakSet<Redis>();

/**
 * ioredis gives a connection up for good (status `end`, every command refused from then on) when
 * its connector's attempt is cut short: with Sentinel, the failover detector's `+switch-master`
 * disconnects the connector, and if that lands while the connector is still asking the sentinels
 * for the primary (a reconnect after the old primary died), the attempt rejects and ioredis ends
 * the connection instead of retrying. Seen in the failover benchmark: the registry's connection of
 * the router the agents heartbeat to ended, so no heartbeat landed again and every node stayed
 * dead for both routers. A connection that ends without closeRedis is connected again here, on
 * the same backoff as its reconnects.
 */
function keepConnecting(redis: Redis, options: Pick<RedisConnectionOptions, 'connectionName' | 'logger'>): void {
  let attempt = 0;
  redis.on('end', () => {
    if (closing.has(redis)) return;
    attempt++;
    options.logger?.warn({ connection: options.connectionName, attempt }, 'redis connection ended on its own; connecting again');
    const retry = setTimeout(() => {
      if (closing.has(redis) || redis.status !== 'end') return;
      // A failed attempt ends the connection again, which lands here again.
      redis.connect().catch(() => undefined);
    }, Math.min(attempt * 100, 2_000));
    retry.unref();
  });
  redis.on('ready', () => {
    attempt = 0;
  });
}

/** Runs a Redis command, turning any failure into DependencyUnavailableError. */
export async function redisCall<T>(command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (err) {
    throw dependencyFailure('redis', err);
  }
}

/** Executes a MULTI or pipeline and returns its replies, failing if any command failed. */
export async function execAll(batch: ChainableCommander): Promise<unknown[]> {
  return redisCall(async () =>
    ((await batch.exec()) ?? []).map(([err, reply]) => {
      if (err) throw err;
      return reply;
    }),
  );
}

/** Closes a connection without waiting on a Redis that may be away. */
export async function closeRedis(redis: Redis): Promise<void> {
  closing.add(redis);
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // The connection died while quitting; disconnect below releases it either way.
    }
  }
  redis.disconnect();
}
