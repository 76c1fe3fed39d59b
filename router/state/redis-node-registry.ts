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
 * KEYS: nodes, heartbeats, beats. ARGV: nodeId, seq, StoredHeartbeat JSON, StoredRegistration JSON
 * of the node as this router last knew it ('' = none), the beat (`<seq> <lastHeartbeatMs>`).
 * Returns 0 for an unknown node this router cannot re-create, 2 when its registration was missing
 * and written again from ARGV[4], else 1. A heartbeat older than the stored one is ignored (still
 * 1: the node is known). The seq is compared on the small beat, never by decoding the heartbeat
 * (tens of KiB of JSON: most of the script's cost when it did).
 */
const HEARTBEAT = `
local result = 1
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if ARGV[4] == '' then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  result = 2
end
local beat = redis.call('HGET', KEYS[3], ARGV[1])
if beat and tonumber(string.match(beat, '^%d+')) > tonumber(ARGV[2]) then return result end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
return result
`;

/** Every this many reads, list() reads every heartbeat, not only those whose beat changed (see list). */
const FULL_READ_EVERY = 16;

/**
 * Node registry shared by router replicas: `P nodes` (nodeId → registration),
 * `P node-heartbeats` (nodeId → latest heartbeat) and `P node-beats` (nodeId → its seq and time,
 * a few bytes). Registration and heartbeat live in two hashes so that the heartbeat script never
 * re-encodes a record in Lua; the beats let it compare seq without decoding a heartbeat, and let
 * each registry read fetch only the heartbeats that changed since this router's last read (nodes
 * beat every second, routers read four times a second: most reads find most heartbeats unchanged,
 * and a heartbeat is tens of KiB of JSON to move and parse).
 */
export class RedisNodeRegistry implements NodeRegistryStore {
  private readonly nodesKey: string;
  private readonly heartbeatsKey: string;
  private readonly beatsKey: string;
  /** Each node's heartbeat as of this router's last read, with the beat it was read at. */
  private readonly lastRead = new Map<string, { beat: string | undefined; stored: StoredHeartbeat | null }>();
  private reads = 0;
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
    this.beatsKey = `${keyPrefix}node-beats`;
  }

  static async open(options: RedisNodeRegistryOptions): Promise<RedisNodeRegistry> {
    const redis = await connectRedis({ url: options.url, sentinel: options.sentinel, timeoutMs: options.timeoutMs, connectionName: 'geo-sfu:nodes', logger: options.logger });
    redis.defineCommand('nodeHeartbeat', { numberOfKeys: 3, lua: HEARTBEAT });
    return new RedisNodeRegistry(redis as RedisNodeRegistry['redis'], options.keyPrefix, options.logger);
  }

  async register(registration: NodeRegistration, nowMs: number): Promise<void> {
    const stored = JSON.stringify({ registration, registeredAtMs: nowMs } satisfies StoredRegistration);
    // A registration is a new agent process: its heartbeat seq starts again from 0.
    await execAll(this.redis.multi().hset(this.nodesKey, registration.nodeId, stored).hdel(this.heartbeatsKey, registration.nodeId).hdel(this.beatsKey, registration.nodeId));
    this.registrations.set(registration.nodeId, stored);
  }

  async heartbeat(heartbeat: Heartbeat, nowMs: number): Promise<boolean> {
    const stored: StoredHeartbeat = { seq: heartbeat.seq, lastHeartbeatMs: nowMs, heartbeat };
    const registration = this.registrations.get(heartbeat.nodeId) ?? '';
    const known = await redisCall(() => this.redis.nodeHeartbeat(this.nodesKey, this.heartbeatsKey, this.beatsKey, heartbeat.nodeId, heartbeat.seq, JSON.stringify(stored), registration, `${heartbeat.seq} ${nowMs}`));
    if (known === 2) this.logger?.warn({ nodeId: heartbeat.nodeId }, 'node registration missing in Redis (lost in a failover or deleted): written again from its heartbeat');
    return known !== 0;
  }

  async deregister(nodeId: string): Promise<void> {
    await execAll(this.redis.multi().hdel(this.nodesKey, nodeId).hdel(this.heartbeatsKey, nodeId).hdel(this.beatsKey, nodeId));
    this.registrations.delete(nodeId);
  }

  /**
   * Every node with its latest heartbeat. Reads the registrations and the beats, then only the
   * heartbeats whose beat changed since this router's last read (or that have none: written by a
   * router of an older version); every FULL_READ_EVERY reads, all of them, so nothing stays stale
   * longer than that (an older router's heartbeat for a node whose beat a newer one wrote).
   */
  async list(): Promise<NodeRecord[]> {
    const full = this.reads++ % FULL_READ_EVERY === 0;
    const batch = this.redis.multi().hgetall(this.nodesKey).hgetall(this.beatsKey);
    if (full) batch.hgetall(this.heartbeatsKey);
    const [nodes, beats, all] = (await execAll(batch)) as Array<Record<string, string> | undefined>;
    // Node ids are free-form: one named `constructor` must read as itself or as none.
    const ids = Object.keys(nodes ?? {});
    const stale = full ? [] : ids.filter((id) => {
      const beat = beats ? own(beats, id) : undefined;
      return beat === undefined || this.lastRead.get(id)?.beat !== beat;
    });
    const fetched = stale.length > 0 ? ((await redisCall(() => this.redis.hmget(this.heartbeatsKey, ...stale))) as Array<string | null>) : [];
    const json = new Map<string, string | null>(full ? ids.map((id) => [id, (all ? own(all, id) : undefined) ?? null]) : stale.map((id, i) => [id, fetched[i] ?? null]));
    for (const [id, text] of json) this.lastRead.set(id, { beat: beats ? own(beats, id) : undefined, stored: text ? (JSON.parse(text) as StoredHeartbeat) : null });
    const present = new Set(ids);
    for (const id of this.lastRead.keys()) if (!present.has(id)) this.lastRead.delete(id);
    return ids.map((nodeId) => {
      const registrationJson = own(nodes!, nodeId)!;
      this.registrations.set(nodeId, registrationJson);
      const { registration, registeredAtMs } = JSON.parse(registrationJson) as StoredRegistration;
      const beat = this.lastRead.get(nodeId)?.stored ?? null;
      return { registration, registeredAtMs, lastHeartbeatMs: beat?.lastHeartbeatMs ?? registeredAtMs, heartbeat: beat?.heartbeat ?? null };
    });
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}
