import { type ChainableCommander, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { dependencyFailure } from './dependency-error.ts';

export interface RedisConnectionOptions {
  url: string;
  /** Every command fails after this long (the configured redisTimeoutMs). */
  timeoutMs: number;
  /** Shown by CLIENT LIST, so an operator can tell the router's connections apart. */
  connectionName: string;
  logger?: Logger;
}

/**
 * Opens an ioredis connection tuned to fail fast: a router must answer /allocate with a 503 when
 * Redis is away, not hang. No offline queue and no resend of in-flight commands, so a command that
 * already failed for its caller is never executed later behind its back; the connection itself
 * keeps reconnecting in the background.
 */
export async function connectRedis(options: RedisConnectionOptions): Promise<Redis> {
  const redis = new Redis(options.url, {
    lazyConnect: true,
    connectionName: options.connectionName,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    // Commands issued in the same tick share one socket write: under load /allocate's reads and
    // scripts for many requests go out together instead of a syscall each.
    enableAutoPipelining: true,
  });
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
    redis.disconnect();
    throw dependencyFailure('redis', err);
  }
  return redis;
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
