import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AppEvent } from '../../shared/app-webhook-events.ts';
import { closeRedis, connectRedis, redisCall, type RedisTarget } from '../state/redis-client.ts';
import { CLOSED_ROOM_RETENTION_MS } from './memory-event-store.ts';
import { type AppEventStore, CLOSED_ROOM, type ClaimedEvent, DEAD_LETTERS_MAX, type DeadLetter, type RoomPresence, type UnqueuedEvent } from './types.ts';

/** `url` or `sentinel`: where Redis is (redisTarget). */
export interface RedisAppEventStoreOptions extends RedisTarget {
  keyPrefix: string;
  timeoutMs: number;
  logger?: Logger;
}

type Script = (...args: Array<string | number>) => Promise<unknown>;
interface EventScripts {
  appEventsCommit: Script;
  appEventsClaim: Script;
  appEventsAck: Script;
  appEventsRetry: Script;
  appEventsDead: Script;
  appEventsReplay: Script;
}

// KEYS: room hash, room stream, ready, finishing. ARGV: roomId, expectedVersion, presence, finishAt ('' none),
// nowMs, retentionMs, open (1/0), events (JSON objects without seq and queuedAtMs)...
const COMMIT = `
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[1], 'presence', ARGV[3], 'version', version + 1)
if ARGV[7] == '1' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
if ARGV[4] == '' then redis.call('ZREM', KEYS[4], ARGV[1]) else redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1]) end
local queued = {}
for i = 8, #ARGV do
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local event = '{"seq":' .. seq .. ',"queuedAtMs":' .. ARGV[5] .. ',' .. string.sub(ARGV[i], 2)
  redis.call('XADD', KEYS[2], '*', 'e', event)
  queued[#queued + 1] = event
end
if #queued > 0 then redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[1]) end
return queued
`;

// KEYS: lock, stream, head, ready. ARGV: token, leaseMs, roomId, nowMs.
const CLAIM = `
local due = redis.call('ZSCORE', KEYS[4], ARGV[3])
if not due or tonumber(due) > tonumber(ARGV[4]) then return false end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #head == 0 then
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('DEL', KEYS[1], KEYS[2])
  return false
end
local id = head[1][1]
local attempts = 0
if redis.call('HGET', KEYS[3], 'id') == id then
  attempts = tonumber(redis.call('HGET', KEYS[3], 'attempts'))
else
  redis.call('HSET', KEYS[3], 'id', id, 'attempts', 0)
end
return {id, head[1][2][2], attempts}
`;

// After a room's head event left its stream (KEYS[2]): the room's next event is due now
// (ready set KEYS[4], ARGV[4] = now, ARGV[3] = room), or the emptied stream goes.
const NEXT_OR_DONE = `if redis.call('XLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('DEL', KEYS[2])
else
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
end`;

// KEYS: lock, stream, head, ready. ARGV: token, entryId, roomId, nowMs. Delivered: the entry leaves the
// queue even if the lease ran out meanwhile (by entry id, so twice is harmless); the lock is released
// only if ours. The room's next event is due now.
const ACK = `
redis.call('XDEL', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[3], 'id') == ARGV[2] then redis.call('DEL', KEYS[3]) end
${NEXT_OR_DONE}
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

// KEYS: lock, head, ready. ARGV: token, entryId, nextAtMs, roomId.
const RETRY = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], 'id') == ARGV[2] then redis.call('HINCRBY', KEYS[2], 'attempts', 1) end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('DEL', KEYS[1])
return 1
`;

// KEYS: lock, stream, head, ready, dead. ARGV: token, entryId, roomId, nowMs, event, attempts, error, maxLen.
const DEAD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[5], 'attempts', ARGV[6], 'error', ARGV[7], 'at', ARGV[4])
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
${NEXT_OR_DONE}
redis.call('DEL', KEYS[1])
return 1
`;

// KEYS: dead, stream, ready. ARGV: id, roomId, nowMs.
const REPLAY = `
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entry == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', entry[1][2][2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
`;

/**
 * The application webhook queue shared by router replicas. Keys (P = keyPrefix + `appwebhooks:`):
 * - `P room:{roomId}` hash: presence (JSON RoomPresence), version, seq (kept a day once closed)
 * - `P events:{roomId}` stream: the room's queued events, oldest first (field `e`: the event's JSON); deleted once empty
 * - `P head:{roomId}` hash: the head entry's id and its failed attempts
 * - `P lock:{roomId}`: the token of the consumer delivering the room's head (expires with its lease)
 * - `P ready` sorted set: rooms with queued events, scored by when their head is next due
 * - `P finishing` sorted set: open empty rooms, scored by when room_finished is due
 * - `P dead` stream: dead letters (fields e, attempts, error, at), capped at DEAD_LETTERS_MAX
 * Every change is one Lua script, so a router killed at any point leaves the queue consistent.
 */
export class RedisAppEventStore implements AppEventStore {
  readonly #p: string;

  private constructor(private readonly redis: Redis & EventScripts, options: RedisAppEventStoreOptions) {
    this.#p = `${options.keyPrefix}appwebhooks:`;
  }

  static async open(options: RedisAppEventStoreOptions): Promise<RedisAppEventStore> {
    const redis = await connectRedis({ url: options.url, sentinel: options.sentinel, timeoutMs: options.timeoutMs, connectionName: 'geo-sfu:app-webhooks', logger: options.logger });
    redis.defineCommand('appEventsCommit', { numberOfKeys: 4, lua: COMMIT });
    redis.defineCommand('appEventsClaim', { numberOfKeys: 4, lua: CLAIM });
    redis.defineCommand('appEventsAck', { numberOfKeys: 4, lua: ACK });
    redis.defineCommand('appEventsRetry', { numberOfKeys: 3, lua: RETRY });
    redis.defineCommand('appEventsDead', { numberOfKeys: 5, lua: DEAD });
    redis.defineCommand('appEventsReplay', { numberOfKeys: 3, lua: REPLAY });
    return new RedisAppEventStore(redis as Redis & EventScripts, options);
  }

  #room = (roomId: string) => `${this.#p}room:${roomId}`;
  #stream = (roomId: string) => `${this.#p}events:${roomId}`;
  #head = (roomId: string) => `${this.#p}head:${roomId}`;
  #lock = (roomId: string) => `${this.#p}lock:${roomId}`;
  get #ready() {
    return `${this.#p}ready`;
  }
  get #finishing() {
    return `${this.#p}finishing`;
  }
  get #dead() {
    return `${this.#p}dead`;
  }

  async readRoom(roomId: string): Promise<{ presence: RoomPresence; version: number }> {
    const [presence, version] = await redisCall(() => this.redis.hmget(this.#room(roomId), 'presence', 'version'));
    return presence ? { presence: JSON.parse(presence) as RoomPresence, version: Number(version) } : { presence: CLOSED_ROOM, version: 0 };
  }

  async commit(input: { roomId: string; expectedVersion: number; presence: RoomPresence; events: UnqueuedEvent[]; nowMs: number }): Promise<AppEvent[] | null> {
    const { roomId, presence, nowMs } = input;
    const reply = (await redisCall(() =>
      this.redis.appEventsCommit(
        this.#room(roomId),
        this.#stream(roomId),
        this.#ready,
        this.#finishing,
        roomId,
        input.expectedVersion,
        JSON.stringify(presence),
        presence.finishAtMs ?? '',
        nowMs,
        CLOSED_ROOM_RETENTION_MS,
        presence.open ? 1 : 0,
        ...input.events.map((e) => JSON.stringify(e)),
      ),
    )) as string[] | null;
    return reply === null ? null : reply.map((e) => JSON.parse(e) as AppEvent);
  }

  async roomsToFinish(nowMs: number, max: number): Promise<string[]> {
    return redisCall(() => this.redis.zrangebyscore(this.#finishing, '-inf', nowMs, 'LIMIT', 0, max));
  }

  async dueRooms(nowMs: number, max: number): Promise<string[]> {
    return redisCall(() => this.redis.zrangebyscore(this.#ready, '-inf', nowMs, 'LIMIT', 0, max));
  }

  async claim(roomId: string, token: string, leaseMs: number, nowMs: number): Promise<ClaimedEvent | null> {
    const reply = (await redisCall(() => this.redis.appEventsClaim(this.#lock(roomId), this.#stream(roomId), this.#head(roomId), this.#ready, token, leaseMs, roomId, nowMs))) as
      | [string, string, number]
      | null;
    return reply ? { entryId: reply[0], event: JSON.parse(reply[1]) as AppEvent, attempts: Number(reply[2]) } : null;
  }

  async ack(roomId: string, token: string, entryId: string, nowMs: number): Promise<void> {
    await redisCall(() => this.redis.appEventsAck(this.#lock(roomId), this.#stream(roomId), this.#head(roomId), this.#ready, token, entryId, roomId, nowMs));
  }

  async retry(roomId: string, token: string, entryId: string, nextAtMs: number): Promise<void> {
    await redisCall(() => this.redis.appEventsRetry(this.#lock(roomId), this.#head(roomId), this.#ready, token, entryId, nextAtMs, roomId));
  }

  async deadLetter(claimed: ClaimedEvent, roomId: string, token: string, error: string, nowMs: number): Promise<void> {
    await redisCall(() =>
      this.redis.appEventsDead(
        this.#lock(roomId),
        this.#stream(roomId),
        this.#head(roomId),
        this.#ready,
        this.#dead,
        token,
        claimed.entryId,
        roomId,
        nowMs,
        JSON.stringify(claimed.event),
        claimed.attempts + 1,
        error,
        DEAD_LETTERS_MAX,
      ),
    );
  }

  async listDead(max: number): Promise<{ total: number; deadLetters: DeadLetter[] }> {
    const [total, entries] = await redisCall(() => Promise.all([this.redis.xlen(this.#dead), this.redis.xrange(this.#dead, '-', '+', 'COUNT', max)]));
    const deadLetters = entries.map(([id, fields]) => {
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
      return { id, event: JSON.parse(f.get('e') ?? '{}') as AppEvent, attempts: Number(f.get('attempts')), error: f.get('error') ?? '', deadAtMs: Number(f.get('at')) };
    });
    return { total, deadLetters };
  }

  async replayDead(id: string, nowMs: number): Promise<boolean> {
    if (!/^\d{1,20}-\d{1,20}$/.test(id)) return false;
    const entry = await redisCall(() => this.redis.xrange(this.#dead, id, id));
    const json = entry[0]?.[1][1];
    if (json === undefined) return false;
    const { roomId } = JSON.parse(json) as AppEvent;
    return (await redisCall(() => this.redis.appEventsReplay(this.#dead, this.#stream(roomId), this.#ready, id, roomId, nowMs))) === 1;
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }
}
