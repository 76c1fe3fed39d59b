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
 * KEYS: nodes, heartbeats. ARGV: nodeId, seq, StoredHeartbeat JSON. Returns 0 for an unknown node.
 * A heartbeat older than the stored one is ignored (still 1: the node is known).
 */
const HEARTBEAT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and cjson.decode(current).seq > tonumber(ARGV[2]) then return 1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`;

/**
 * Node registry shared by router replicas: `P nodes` (nodeId → registration) and
 * `P node-heartbeats` (nodeId → latest heartbeat). Registration and heartbeat live in two hashes so
 * that the heartbeat script only compares seq and never re-encodes a record in Lua.
 */
export class RedisNodeRegistry implements NodeRegistryStore {
  private readonly nodesKey: string;
  private readonly heartbeatsKey: string;

  private constructor(
    private readonly redis: Redis & { nodeHeartbeat: (...args: Array<string | number>) => Promise<number> },
    keyPrefix: string,
  ) {
    this.nodesKey = `${keyPrefix}nodes`;
    this.heartbeatsKey = `${keyPrefix}node-heartbeats`;
  }

  static async open(options: RedisNodeRegistryOptions): Promise<RedisNodeRegistry> {
    const redis = await connectRedis({ url: options.url, sentinel: options.sentinel, timeoutMs: options.timeoutMs, connectionName: 'geo-sfu:nodes', logger: options.logger });
    redis.defineCommand('nodeHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    return new RedisNodeRegistry(redis as RedisNodeRegistry['redis'], options.keyPrefix);
  }

  async register(registration: NodeRegistration, nowMs: number): Promise<void> {
    const stored: StoredRegistration = { registration, registeredAtMs: nowMs };
    // A registration is a new agent process: its heartbeat seq starts again from 0.
    await execAll(this.redis.multi().hset(this.nodesKey, registration.nodeId, JSON.stringify(stored)).hdel(this.heartbeatsKey, registration.nodeId));
  }

  async heartbeat(heartbeat: Heartbeat, nowMs: number): Promise<boolean> {
    const stored: StoredHeartbeat = { seq: heartbeat.seq, lastHeartbeatMs: nowMs, heartbeat };
    const known = await redisCall(() => this.redis.nodeHeartbeat(this.nodesKey, this.heartbeatsKey, heartbeat.nodeId, heartbeat.seq, JSON.stringify(stored)));
    return known === 1;
  }

  async deregister(nodeId: string): Promise<void> {
    await execAll(this.redis.multi().hdel(this.nodesKey, nodeId).hdel(this.heartbeatsKey, nodeId));
  }

  async list(): Promise<NodeRecord[]> {
    const [nodes, heartbeats] = (await execAll(this.redis.multi().hgetall(this.nodesKey).hgetall(this.heartbeatsKey))) as Array<Record<string, string>>;
    return Object.entries(nodes ?? {}).map(([nodeId, json]) => {
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
