import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import { type RelaySignal, validateRelaySignal } from '../../shared/p2p-relay.ts';
import { closeRedis, connectRedis, execAll, redisCall, type RedisTarget } from '../state/redis-client.ts';

/** What one relay replica tells the others; each delivers it to its own sockets only. */
export type RelayBusMessage =
  | { kind: 'signal'; room: string; from: string; signal: RelaySignal }
  /**
   * `returning`: the participant was connected (somewhere) already, e.g. back after a drop.
   * `before`: the participants connected before it (its welcome names them; they hear peerJoined).
   */
  | { kind: 'joined'; room: string; peer: string; returning: boolean; before: string[] }
  | { kind: 'left'; room: string; peer: string }
  | { kind: 'migrate'; room: string; reason: 'region_available' | 'room_on_sfu' };

/**
 * KEYS: the room's presence hash. ARGV: participant, owner, ttl ms. Claims the participant for
 * owner; returns {1 if it was claimed already else 0, the participants present before}, atomically,
 * so two participants joining at once through two replicas are told of each other once, in order.
 */
const CLAIM = `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local present = redis.call('HKEYS', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {previous and 1 or 0, present}
`;

/** KEYS: the room's presence hash. ARGV: participant, owner. Frees the participant unless another connection claimed it since; 1 when it is gone. */
const RELEASE = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
if owner then return 0 end
return 1
`;

type BusScripts = Redis & {
  relayClaim(key: string, peer: string, owner: string, ttlMs: number): Promise<[number, string[]]>;
  relayRelease(key: string, peer: string, owner: string): Promise<number>;
};

export interface RedisRelayBusOptions extends RedisTarget {
  keyPrefix: string;
  timeoutMs: number;
  /** How long a room's presence outlives the last renewal (GEO_SFU_P2P_LEASE_MS): a replica that dies leaves no ghosts. */
  presenceTtlMs: number;
  logger?: Pick<Logger, 'warn' | 'info'>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The bus message in `raw`, or null when it is not one a relay replica sends. */
function parseMessage(raw: string): (RelayBusMessage & { origin: string }) | null {
  let m: unknown;
  try {
    m = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObject(m) || !isString(m.origin) || !isString(m.room)) return null;
  switch (m.kind) {
    case 'signal':
      return isString(m.from) && validateRelaySignal(m.signal) === null ? (m as RelayBusMessage & { origin: string }) : null;
    case 'joined':
      return isString(m.peer) && typeof m.returning === 'boolean' && Array.isArray(m.before) && m.before.every(isString) ? (m as RelayBusMessage & { origin: string }) : null;
    case 'left':
      return isString(m.peer) ? (m as RelayBusMessage & { origin: string }) : null;
    case 'migrate':
      return m.reason === 'region_available' || m.reason === 'room_on_sfu' ? (m as RelayBusMessage & { origin: string }) : null;
    default:
      return null;
  }
}

/**
 * What lets the P2P relays of several router replicas act as one: Redis pub/sub on one channel per
 * key prefix (`<prefix>p2p-relay`) carries signals, joins, leaves and migrate notices to every
 * replica (each delivers to its own sockets), and a presence hash per room
 * (`<prefix>p2p-relay:<room>`, participant → `<replica> <connection>`) says who is connected where.
 * Every call fails with DependencyUnavailableError when Redis does not answer (at once while the
 * connection is down): the relay then serves the peers of its own replica alone.
 */
export class RedisRelayBus {
  /** This replica's id on the bus: it ignores its own messages. */
  readonly replicaId = randomUUID();
  readonly #redis: BusScripts;
  readonly #subscriber: Redis;
  readonly #o: RedisRelayBusOptions;
  readonly #channel: string;

  private constructor(redis: BusScripts, subscriber: Redis, o: RedisRelayBusOptions) {
    this.#redis = redis;
    this.#subscriber = subscriber;
    this.#o = o;
    this.#channel = `${o.keyPrefix}p2p-relay`;
  }

  static async open(o: RedisRelayBusOptions): Promise<RedisRelayBus> {
    const connection = (name: string) => connectRedis({ url: o.url, sentinel: o.sentinel, timeoutMs: o.timeoutMs, connectionName: name, logger: o.logger });
    const redis = await connection('geo-sfu:p2p-relay');
    let subscriber: Redis;
    try {
      subscriber = await connection('geo-sfu:p2p-relay-sub');
    } catch (err) {
      await closeRedis(redis);
      throw err;
    }
    redis.defineCommand('relayClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('relayRelease', { numberOfKeys: 1, lua: RELEASE });
    return new RedisRelayBus(redis as BusScripts, subscriber, o);
  }

  /** Delivers every other replica's messages to `deliver` from now on. */
  async listen(deliver: (message: RelayBusMessage) => void): Promise<void> {
    this.#subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== this.#channel) return;
      const message = parseMessage(raw);
      if (message === null) {
        this.#o.logger?.warn({ channel }, 'ignored a malformed P2P relay bus message');
        return;
      }
      if (message.origin === this.replicaId) return;
      const { origin: _origin, ...rest } = message;
      deliver(rest as RelayBusMessage);
    });
    await redisCall(() => this.#subscriber.subscribe(this.#channel));
  }

  async publish(message: RelayBusMessage): Promise<void> {
    await this.#call(() => this.#redis.publish(this.#channel, JSON.stringify({ ...message, origin: this.replicaId })));
  }

  /**
   * Marks the participant connected here (as `connection`): whether it was connected somewhere
   * already, and the others connected to the room (on any replica) before it.
   */
  async claim(room: string, peer: string, connection: string): Promise<{ returning: boolean; before: string[] }> {
    const [previous, present] = await this.#call(() => this.#redis.relayClaim(this.#key(room), peer, this.#owner(connection), this.#o.presenceTtlMs));
    return { returning: previous === 1, before: present.filter((id) => id !== peer) };
  }

  /** Renews the presence of the room's participants connected here. */
  async renew(room: string, connections: Array<{ peer: string; connection: string }>): Promise<void> {
    if (connections.length === 0) return;
    const key = this.#key(room);
    if (this.#redis.status !== 'ready') throw new DependencyUnavailableError(`redis: P2P relay connection ${this.#redis.status}`);
    const batch = this.#redis.multi();
    for (const c of connections) batch.hset(key, c.peer, this.#owner(c.connection));
    batch.pexpire(key, this.#o.presenceTtlMs);
    await execAll(batch);
  }

  /** Frees the participant's presence if `connection` still holds it; true when the participant is connected nowhere now. */
  async release(room: string, peer: string, connection: string): Promise<boolean> {
    return (await this.#call(() => this.#redis.relayRelease(this.#key(room), peer, this.#owner(connection)))) === 1;
  }

  /** Whether the participant is connected to another replica than this one. */
  async connectedElsewhere(room: string, peer: string): Promise<boolean> {
    const owner = await this.#call(() => this.#redis.hget(this.#key(room), peer));
    return owner !== null && !owner.startsWith(`${this.replicaId} `);
  }

  async close(): Promise<void> {
    await Promise.all([closeRedis(this.#redis), closeRedis(this.#subscriber)]);
  }

  #key(room: string): string {
    return `${this.#o.keyPrefix}p2p-relay:${room}`;
  }

  #owner(connection: string): string {
    return `${this.replicaId} ${connection}`;
  }

  #call<T>(command: () => Promise<T>): Promise<T> {
    if (this.#redis.status !== 'ready') return Promise.reject(new DependencyUnavailableError(`redis: P2P relay connection ${this.#redis.status}`));
    return redisCall(command);
  }
}
