import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Heartbeat, NodeRegistration } from '../../shared/schemas/index.ts';
import { closeRedis, connectRedis, execAll, redisCall, type RedisTarget } from './redis-client.ts';
import type { NodeRecord, NodeRegistryStore } from './types.ts';
import { own } from '../../shared/own.ts';

/** `url` or `sentinel`: where Redis is (redisTarget). */
export interface RedisNodeRegistryOptions extends RedisTarget {
  keyPrefix: string;
  timeoutMs: number;
  logger?: Logger;
}

/** What `P nodes` holds per node. */
interface StoredRegistration {
  registration: NodeRegistration;
  registeredAtMs: number;
}

/** What `P node-heartbeats` holds per node. */
interface StoredHeartbeat {
  seq: number;
  lastHeartbeatMs: number;
  heartbeat: Heartbeat;
}

/**
 * KEYS: nodes, heartbeats. ARGV: nodeId, seq, StoredHeartbeat JSON, StoredRegistration JSON of the
 * node as this router last knew it ('' = none). Returns 0 for an unknown node this router cannot
 * re-create, 2 when its registration was missing and written again from ARGV[4], else 1. A heartbeat
 * older than the stored one is ignored (still 1: the node is known).
 */
const HEARTBEAT = `
local result = 1
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if ARGV[4] == '' then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  result = 2
end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and cjson.decode(current).seq > tonumber(ARGV[2]) then return result end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return result
`;

/**
 * Node registry shared by router replicas: `P nodes` (nodeId → registration) and
 * `P node-heartbeats` (nodeId → latest heartbeat). Registration and heartbeat live in two hashes so
 * that the heartbeat script only compares seq and never re-encodes a record in Lua.
 */
export class RedisNodeRegistry implements NodeRegistryStore {
  private readonly nodesKey: string;
  private readonly heartbeatsKey: string;
  /**
   * Each node's registration as this router last wrote or read it (StoredRegistration JSON): a
   * heartbeat of a node whose record Redis lost (a failover that lost the last writes, a primary
   * restarted empty, keys deleted) writes it again, so a node that keeps heartbeating stays alive
   * without registering again. Kept while the node is absent from Redis (that is the point);
   * dropped when this router deregisters it.
   */
  private readonly registrations = new Map<string, string>();

  private constructor(
    private readonly redis: Redis & { nodeHeartbeat: (...args: Array<string | number>) => Promise<number> },
    keyPrefix: string,
    private readonly logger: Logger | undefined,
  ) {
    this.nodesKey = `${keyPrefix}nodes`;
    this.heartbeatsKey = `${keyPrefix}node-heartbeats`;
  }

  static async open(options: RedisNodeRegistryOptions): Promise<RedisNodeRegistry> {
    const redis = await connectRedis({ url: options.url, sentinel: options.sentinel, timeoutMs: options.timeoutMs, connectionName: 'geo-sfu:nodes', logger: options.logger });
    redis.defineCommand('nodeHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    return new RedisNodeRegistry(redis as RedisNodeRegistry['redis'], options.keyPrefix, options.logger);
  }

  async register(registration: NodeRegistration, nowMs: number): Promise<void> {
    const stored = JSON.stringify({ registration, registeredAtMs: nowMs } satisfies StoredRegistration);
    // A registration is a new agent process: its heartbeat seq starts again from 0.
    await execAll(this.redis.multi().hset(this.nodesKey, registration.nodeId, stored).hdel(this.heartbeatsKey, registration.nodeId));
    this.registrations.set(registration.nodeId, stored);
  }

  async heartbeat(heartbeat: Heartbeat, nowMs: number): Promise<boolean> {
    const stored: StoredHeartbeat = { seq: heartbeat.seq, lastHeartbeatMs: nowMs, heartbeat };
    const registration = this.registrations.get(heartbeat.nodeId) ?? '';
    const known = await redisCall(() => this.redis.nodeHeartbeat(this.nodesKey, this.heartbeatsKey, heartbeat.nodeId, heartbeat.seq, JSON.stringify(stored), registration));
    if (known === 2) this.logger?.warn({ nodeId: heartbeat.nodeId }, 'node registration missing in Redis (lost in a failover or deleted): written again from its heartbeat');
    return known !== 0;
  }

  async deregister(nodeId: string): Promise<void> {
    await execAll(this.redis.multi().hdel(this.nodesKey, nodeId).hdel(this.heartbeatsKey, nodeId));
    this.registrations.delete(nodeId);
  }

  async list(): Promise<NodeRecord[]> {
    const [nodes, heartbeats] = (await execAll(this.redis.multi().hgetall(this.nodesKey).hgetall(this.heartbeatsKey))) as Array<Record<string, string>>;
    return Object.entries(nodes ?? {}).map(([nodeId, json]) => {
      this.registrations.set(nodeId, json);
      const { registration, registeredAtMs } = JSON.parse(json) as StoredRegistration;
      // Node ids are free-form: one named `constructor` without a heartbeat yet must read as none.
      const latest = heartbeats ? own(heartbeats, nodeId) : undefined;
      const beat = latest ? (JSON.parse(latest) as StoredHeartbeat) : null;
      return { registration, registeredAtMs, lastHeartbeatMs: beat?.lastHeartbeatMs ?? registeredAtMs, heartbeat: beat?.heartbeat ?? null };
    });
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}
