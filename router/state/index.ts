import type { Logger } from 'pino';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { MemoryNodeRegistry } from './memory-node-registry.ts';
import { MemoryRoomStore } from './memory-room-store.ts';
import { MemorySessionLog } from './memory-session-log.ts';
import { PgSessionLog } from './pg-session-log.ts';
import { redisTarget } from './redis-client.ts';
import { RedisNodeRegistry } from './redis-node-registry.ts';
import { RedisRoomStore } from './redis-room-store.ts';
import type { NodeRegistryStore, RoomStore, SessionLog } from './types.ts';

export type * from './types.ts';
export { MemoryNodeRegistry, MemoryRoomStore, MemorySessionLog, PgSessionLog, RedisNodeRegistry, RedisRoomStore };

export type StateConfig = Pick<
  GeoSfuConfig,
  | 'redisUrl'
  | 'redisSentinels'
  | 'redisSentinelName'
  | 'redisSentinelPassword'
  | 'redisPassword'
  | 'redisTls'
  | 'redisSentinelTls'
  | 'redisKeyPrefix'
  | 'redisTimeoutMs'
  | 'redisMinReplicasAck'
  | 'roomIdleTtlMs'
  | 'databaseUrl'
  | 'pgSchema'
  | 'sessionLogBatchSize'
  | 'sessionLogFlushMs'
  | 'sessionLogBufferMax'
>;

export interface StateDeps {
  logger: Logger;
}

export interface Stores {
  rooms: RoomStore;
  nodes: NodeRegistryStore;
  sessions: SessionLog;
  /** Which backend each store runs on (for /health and the startup log). */
  backends: { rooms: 'memory' | 'redis'; nodes: 'memory' | 'redis'; sessions: 'memory' | 'postgres' };
  /** Closes every store (the session log first flushes what it holds). */
  close(): Promise<void>;
}

/**
 * Opens the router's stores: Redis for rooms and nodes when REDIS_URL (or GEO_SFU_REDIS_SENTINELS) is set, PostgreSQL for the
 * session log when DATABASE_URL is set, memory otherwise. The session log is started (migrated).
 * Fails with DependencyUnavailableError if a configured backend cannot be reached, after closing
 * whatever was already opened.
 */
export async function createStores(config: StateConfig, deps: StateDeps): Promise<Stores> {
  const { logger } = deps;
  const opened: Array<{ close(): Promise<void> }> = [];
  const track = <T extends { close(): Promise<void> }>(store: T): T => {
    opened.push(store);
    return store;
  };
  try {
    const target = redisTarget(config);
    const redis = target ? { ...target, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisTimeoutMs, logger } : null;
    const rooms = track(redis ? await RedisRoomStore.open({ ...redis, roomIdleTtlMs: config.roomIdleTtlMs, minReplicasAck: config.redisMinReplicasAck }) : new MemoryRoomStore({ roomIdleTtlMs: config.roomIdleTtlMs }));
    const nodes = track(redis ? await RedisNodeRegistry.open(redis) : new MemoryNodeRegistry());
    const sessionOptions = { batchSize: config.sessionLogBatchSize, flushMs: config.sessionLogFlushMs, bufferMax: config.sessionLogBufferMax, logger };
    const sessions = track(
      config.databaseUrl ? new PgSessionLog({ ...sessionOptions, connectionString: config.databaseUrl, schema: config.pgSchema }) : new MemorySessionLog(sessionOptions),
    );
    await sessions.start();
    return {
      rooms,
      nodes,
      sessions,
      backends: { rooms: redis ? 'redis' : 'memory', nodes: redis ? 'redis' : 'memory', sessions: config.databaseUrl ? 'postgres' : 'memory' },
      close: () => closeAll([sessions, rooms, nodes]),
    };
  } catch (err) {
    await closeAll(opened.reverse()).catch(() => undefined);
    throw err;
  }
}

/** Closes each in turn, even after a failure, and then reports the first failure. */
async function closeAll(resources: Array<{ close(): Promise<void> }>): Promise<void> {
  let failure: unknown;
  for (const resource of resources) {
    try {
      await resource.close();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure) throw failure;
}
