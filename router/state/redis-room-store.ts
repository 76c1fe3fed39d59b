import type { ChainableCommander, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type NormalizedPolicy, parsePolicyKey, policyKey } from '../../shared/schemas/index.ts';
import { compareParticipants } from './participants.ts';
import { dependencyFailure } from './dependency-error.ts';
import { closeRedis, connectRedis, execAll, redisCall, type RedisTarget } from './redis-client.ts';
import * as scripts from './redis-room-scripts.ts';
import type {
  AdoptOutcome,
  AllocateInput,
  AllocateOutcome,
  ExpiredAllocation,
  MarkJoinedOutcome,
  MovePlan,
  P2pAllocateInput,
  P2pAllocateOutcome,
  P2pParticipantRecord,
  P2pRoomState,
  ParticipantRecord,
  ReconcileStore,
  RoomRecord,
  RoomState,
  RoomStore,
  StoreIdentity,
} from './types.ts';

/** `url` or `sentinel`: where Redis is (redisTarget). */
export interface RedisRoomStoreOptions extends RedisTarget {
  /** Prefix of every key (the configured redisKeyPrefix). */
  keyPrefix: string;
  timeoutMs: number;
  roomIdleTtlMs: number;
  /** GEO_SFU_REDIS_MIN_REPLICAS_ACK: replicas that must acknowledge an allocation before it is answered (0: no WAIT). */
  minReplicasAck?: number;
  logger?: Logger;
}

type Script = (...args: Array<string | number>) => Promise<unknown>;

/** The ALLOCATE script's reply (see redis-room-scripts.ts). */
type AllocateReply =
  | ['ok', string, string, string, string, number, string, string | null]
  | ['stale']
  | ['stale', string, string, string, string, string, string[], string[], string]
  | ['node_full']
  | ['room_full']
  | ['p2p']
  | ['kicked']
  | ['policy_conflict', string];
interface RoomScripts {
  roomAllocate: Script;
  roomMarkJoined: Script;
  roomKick: Script;
  roomRemove: Script;
  roomExpire: Script;
  roomRehome: Script;
  roomPlanMoves: Script;
  roomPruneIds: Script;
  p2pAllocate: Script;
  p2pRenew: Script;
  p2pRemove: Script;
  roomAdopt: Script;
  roomRecount: Script;
  redisIdentity: Script;
  redisMarkReconciled: Script;
}

/** Every room script takes the same KEYS (see redis-room-scripts.ts). */
const ROOM_KEY_COUNT = 10;
/** Expired allocations and room ids are processed this many per round trip. */
const SCAN_BATCH = 500;

/**
 * Room state shared by router replicas. Keys (P = keyPrefix):
 * - `P room:{roomId}` hash: home, homeNode, epoch, createdAt, version, policy (carries the idle TTL while empty)
 * - `P room:{roomId}:participants` hash: participantId → JSON ParticipantRecord
 * - `P nodecount` hash: nodeId → participants allocated + joined
 * - `P allocations:pending` sorted set: JSON [roomId, participantId] scored by expiresAtMs
 * - `P rooms` set of room ids (ids of expired rooms are removed lazily by listRoomIds)
 * - `P roomversion` counter the room versions are taken from
 * - `P room:{roomId}:p2p` hash: participantId → JSON P2pParticipantRecord while the room is P2P (expires with its latest lease)
 * - `P room:{roomId}:plans` hash: participantId → JSON MovePlan (live rebalancing)
 * - `P room:{roomId}:kicks` hash: participantId → when an admin removed it (expires with the latest kick's memory)
 * - `P room:{roomId}:earlier` hash: participantId → its earlier nodes, space-separated (see MarkJoinedOutcome)
 * Every change is one Lua script (EVALSHA through ioredis defineCommand).
 */
export class RedisRoomStore implements RoomStore, ReconcileStore {
  private readonly keys: { counts: string; pending: string; rooms: string; versions: string; identity: string };
  private shortfalls = 0;

  private constructor(
    private readonly redis: Redis & RoomScripts,
    private readonly options: RedisRoomStoreOptions,
  ) {
    this.keys = {
      counts: `${options.keyPrefix}nodecount`,
      pending: `${options.keyPrefix}allocations:pending`,
      rooms: `${options.keyPrefix}rooms`,
      versions: `${options.keyPrefix}roomversion`,
      identity: `${options.keyPrefix}redis-identity`,
    };
  }

  /** Connects (failing with DependencyUnavailableError when Redis is away) and loads the scripts. */
  static async open(options: RedisRoomStoreOptions): Promise<RedisRoomStore> {
    const redis = await connectRedis({ url: options.url, sentinel: options.sentinel, timeoutMs: options.timeoutMs, connectionName: 'geo-sfu:rooms', logger: options.logger });
    redis.defineCommand('roomAllocate', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.ALLOCATE });
    redis.defineCommand('roomMarkJoined', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.MARK_JOINED });
    redis.defineCommand('roomKick', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.KICK });
    redis.defineCommand('roomRemove', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.REMOVE });
    redis.defineCommand('roomExpire', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.EXPIRE });
    redis.defineCommand('roomRehome', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.REHOME });
    redis.defineCommand('roomPlanMoves', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.PLAN_MOVES });
    redis.defineCommand('roomPruneIds', { lua: scripts.PRUNE_ROOM_IDS });
    redis.defineCommand('p2pAllocate', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.P2P_ALLOCATE });
    redis.defineCommand('p2pRenew', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.P2P_RENEW });
    redis.defineCommand('p2pRemove', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.P2P_REMOVE });
    redis.defineCommand('roomAdopt', { numberOfKeys: ROOM_KEY_COUNT, lua: scripts.ADOPT });
    redis.defineCommand('roomRecount', { numberOfKeys: 2, lua: scripts.RECOUNT });
    redis.defineCommand('redisIdentity', { numberOfKeys: 2, lua: scripts.IDENTITY });
    redis.defineCommand('redisMarkReconciled', { numberOfKeys: 1, lua: scripts.MARK_RECONCILED });
    return new RedisRoomStore(redis as Redis & RoomScripts, options);
  }

  async getRoom(roomId: string): Promise<RoomState | null> {
    const [room, participants, plans] = (await execAll(
      this.redis.multi().hgetall(this.roomKey(roomId)).hgetall(this.participantsKey(roomId)).hgetall(this.plansKey(roomId)),
    )) as Array<Record<string, string>>;
    if (!room || room.home === undefined) return null;
    return toRoomState(roomId, [room.home, room.homeNode, room.epoch, room.createdAt, room.policy], room.version, Object.values(participants ?? {}), Object.values(plans ?? {}));
  }

  async allocate(input: AllocateInput): Promise<AllocateOutcome> {
    const { participant } = input;
    const reply = (await redisCall(() =>
      this.redis.roomAllocate(
        ...this.roomKeys(input.roomId),
        input.roomId,
        input.proposedHome.region,
        input.proposedHome.nodeId,
        input.expectedHomeRegion ?? '',
        participant.participantId,
        encodeParticipant(participant),
        participant.nodeId,
        pendingMember(input.roomId, participant.participantId),
        participant.status === 'allocated' ? participant.expiresAtMs : '',
        input.nodeLimit,
        input.nowMs,
        input.expectedVersion ?? '',
        input.roomLimit,
        input.grantIssuedAtMs ?? '',
        policyKey(input.policy),
      ),
    )) as AllocateReply;
    switch (reply[0]) {
      case 'policy_conflict':
        return { status: 'policy_conflict', policy: parsePolicyKey(reply[1]) };
      case 'kicked':
        return { status: 'kicked' };
      case 'node_full':
        return { status: 'node_full' };
      case 'room_full':
        return { status: 'room_full' };
      case 'p2p':
        return { status: 'p2p' };
      case 'stale': {
        if (reply.length === 1) return { status: 'stale', current: null };
        const [, home, homeNode, epoch, createdAt, version, participants, plans, policy] = reply;
        // HGETALL's reply alternates field (participant id) and value (record).
        const values = (fields: string[]) => fields.filter((_, i) => i % 2 === 1);
        return { status: 'stale', current: toRoomState(input.roomId, [home, homeNode, epoch, createdAt, policy], version, values(participants), values(plans)) };
      }
      case 'ok': {
        await this.waitForReplicas();
        const [, home, homeNode, epoch, createdAt, version, previousVersion, replaced] = reply;
        return {
          status: 'ok',
          // The room's policy is the allocation's: the script refused any other.
          room: toRoomRecord(input.roomId, [home, homeNode, epoch, createdAt, policyKey(input.policy)]),
          replaced: replaced ? decodeParticipant(replaced) : null,
          version,
          previousVersion: Number(previousVersion),
        };
      }
    }
  }

  replicaAckShortfalls(): number {
    return this.shortfalls;
  }

  /**
   * GEO_SFU_REDIS_MIN_REPLICAS_ACK: WAIT on the connection that ran the script (WAIT cannot run
   * inside Lua), so the pin and the allocation are on that many replicas before the client hears
   * of them. It waits at most half the command timeout, so it answers before the command fails.
   * Fewer acknowledgements are not a refusal: the write is on the primary and cannot be taken back,
   * and a 503 would only make the client allocate again; it is counted instead.
   */
  private async waitForReplicas(): Promise<void> {
    const wanted = this.options.minReplicasAck ?? 0;
    if (wanted === 0) return;
    const acked = await redisCall(() => this.redis.wait(wanted, Math.floor(this.options.timeoutMs / 2)));
    if (acked >= wanted) return;
    this.shortfalls++;
    this.options.logger?.warn({ acked, wanted }, 'allocation acknowledged by fewer Redis replicas than GEO_SFU_REDIS_MIN_REPLICAS_ACK');
  }

  async markJoined(roomId: string, participantId: string, allocationId: string): Promise<MarkJoinedOutcome> {
    const reply = (await redisCall(() =>
      this.redis.roomMarkJoined(...this.roomKeys(roomId), participantId, allocationId, pendingMember(roomId, participantId)),
    )) as ['joined', string] | ['replaced' | 'removed' | 'unknown'];
    return reply[0] === 'joined' ? { status: 'joined', earlierNodeIds: nodeIdList(reply[1]) } : { status: reply[0] };
  }

  async kick(roomId: string, participantId: string, atMs: number, untilMs: number): Promise<{ removed: ParticipantRecord; earlierNodeIds: string[] } | null> {
    const reply = (await redisCall(() =>
      this.redis.roomKick(...this.roomKeys(roomId), participantId, pendingMember(roomId, participantId), this.options.roomIdleTtlMs, atMs, untilMs),
    )) as [string, string] | null;
    return reply ? { removed: decodeParticipant(reply[0]), earlierNodeIds: nodeIdList(reply[1]) } : null;
  }

  async removeParticipant(roomId: string, participantId: string, allocationId?: string): Promise<ParticipantRecord | null> {
    const record = (await redisCall(() =>
      this.redis.roomRemove(
        ...this.roomKeys(roomId),
        participantId,
        allocationId ?? '',
        pendingMember(roomId, participantId),
        this.options.roomIdleTtlMs,
      ),
    )) as string | null;
    return record ? decodeParticipant(record) : null;
  }

  async planMoves(roomId: string, expectedVersion: number, plans: MovePlan[], nowMs: number): Promise<number | null> {
    const version = (await redisCall(() =>
      this.redis.roomPlanMoves(...this.roomKeys(roomId), expectedVersion, nowMs, ...plans.flatMap((plan) => [plan.participantId, JSON.stringify(plan)])),
    )) as number | null;
    return version === null ? null : Number(version);
  }

  async rehome(roomId: string, expectedEpoch: number, home: { region: string; nodeId: string }): Promise<RoomRecord | null> {
    const fields = (await redisCall(() => this.redis.roomRehome(...this.roomKeys(roomId), expectedEpoch, home.region, home.nodeId))) as Array<string | null> | null;
    return fields ? toRoomRecord(roomId, fields) : null;
  }

  async expireAllocations(nowMs: number): Promise<ExpiredAllocation[]> {
    const expired: ExpiredAllocation[] = [];
    try {
      for (;;) {
        const members = await redisCall(() => this.redis.zrangebyscore(this.keys.pending, '-inf', nowMs, 'LIMIT', 0, SCAN_BATCH));
        const pipeline = this.redis.pipeline() as ChainableCommander & { roomExpire: (...args: Array<string | number>) => ChainableCommander };
        const roomIds = members.map((member) => {
          const [roomId, participantId] = JSON.parse(member) as [string, string];
          pipeline.roomExpire(...this.roomKeys(roomId), participantId, member, nowMs, this.options.roomIdleTtlMs);
          return roomId;
        });
        const records = members.length === 0 ? [] : await execAll(pipeline);
        for (const [i, reply] of records.entries()) {
          if (!reply) continue;
          const [record, earlier] = reply as [string, string];
          expired.push({ roomId: roomIds[i]!, participant: decodeParticipant(record), earlierNodeIds: nodeIdList(earlier) });
        }
        if (members.length < SCAN_BATCH) return expired;
      }
    } catch (err) {
      // Participants already removed must reach the caller (it closes their sessions); the rest
      // are still pending and the next call picks them up.
      if (expired.length > 0) return expired;
      throw err;
    }
  }

  async nodeCounts(): Promise<Map<string, number>> {
    const counts = await redisCall(() => this.redis.hgetall(this.keys.counts));
    return new Map(Object.entries(counts).map(([nodeId, count]) => [nodeId, Number(count)]));
  }

  async listRoomIds(): Promise<string[]> {
    const roomIds = await redisCall(() => this.redis.smembers(this.keys.rooms));
    const live: string[] = [];
    for (let i = 0; i < roomIds.length; i += SCAN_BATCH) {
      const batch = roomIds.slice(i, i + SCAN_BATCH);
      const alive = (await redisCall(() =>
        this.redis.roomPruneIds(batch.length + 1, this.keys.rooms, ...batch.map((roomId) => this.roomKey(roomId)), ...batch),
      )) as string[];
      live.push(...alive);
    }
    return live;
  }

  async allocateP2p(input: P2pAllocateInput): Promise<P2pAllocateOutcome> {
    const reply = (await redisCall(() =>
      this.redis.p2pAllocate(
        ...this.roomKeys(input.roomId),
        input.participant.participantId,
        encodeP2pParticipant(input.participant, input.policy),
        input.maxParticipants,
        input.nowMs,
        input.participant.leaseUntilMs,
        policyKey(input.policy),
      ),
    )) as ['ok', string, ...string[]] | ['full', ...string[]] | ['sfu'] | ['policy_conflict', string];
    switch (reply[0]) {
      case 'sfu':
        return { status: 'sfu' };
      case 'policy_conflict':
        return { status: 'policy_conflict', policy: parsePolicyKey(reply[1]) };
      case 'full':
        return { status: 'full', room: toP2pRoomState(input.roomId, reply.slice(1) as string[], input.nowMs) };
      case 'ok': {
        const [, replaced, ...records] = reply;
        return { status: 'ok', room: toP2pRoomState(input.roomId, records, input.nowMs), replaced: replaced ? decodeP2pParticipant(replaced).record : null };
      }
    }
  }

  async getP2pRoom(roomId: string, nowMs: number): Promise<P2pRoomState | null> {
    const room = toP2pRoomState(roomId, await redisCall(() => this.redis.hvals(this.p2pKey(roomId))), nowMs);
    return room.participants.length > 0 ? room : null;
  }

  async renewP2p(
    roomId: string,
    participants: ReadonlyArray<{ participantId: string; allocationId: string }>,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<P2pRoomState | null> {
    const records = (await redisCall(() =>
      this.redis.p2pRenew(...this.roomKeys(roomId), nowMs, leaseUntilMs, ...participants.flatMap((p) => [p.participantId, p.allocationId])),
    )) as string[] | null;
    return records ? toP2pRoomState(roomId, records, nowMs) : null;
  }

  async removeP2pParticipant(roomId: string, participantId: string, allocationId: string, nowMs: number): Promise<boolean> {
    return (await redisCall(() => this.redis.p2pRemove(...this.roomKeys(roomId), participantId, allocationId, nowMs))) === 1;
  }

  async endP2p(roomId: string): Promise<boolean> {
    return (await redisCall(() => this.redis.del(this.p2pKey(roomId)))) === 1;
  }

  async identity(nowMs: number): Promise<StoreIdentity> {
    // Only on a connection that is ready: ioredis lets INFO through while it is still connecting
    // (a command allowed while a server loads), next to its own ready check.
    if (this.redis.status !== 'ready') throw dependencyFailure('redis', new Error(`connection ${this.redis.status}`));
    const info = await redisCall(() => this.redis.info('server'));
    const runId = /run_id:(\w+)/.exec(info)?.[1] ?? '';
    const [changedAtMs, changed, reconciledAtMs] = (await redisCall(() => this.redis.redisIdentity(this.keys.identity, this.keys.versions, runId, nowMs))) as [number, number, number];
    return { runId, changedAtMs: Number(changedAtMs), changed: changed === 1, reconciledAtMs: Number(reconciledAtMs) };
  }

  async markReconciled(changedAtMs: number): Promise<boolean> {
    return (await redisCall(() => this.redis.redisMarkReconciled(this.keys.identity, changedAtMs))) === 1;
  }

  async adopt(roomId: string, participant: ParticipantRecord, nowMs: number): Promise<AdoptOutcome> {
    const [outcome] = (await redisCall(() =>
      this.redis.roomAdopt(
        ...this.roomKeys(roomId),
        roomId,
        participant.participantId,
        encodeParticipant(participant),
        participant.nodeId,
        participant.region,
        nowMs,
      ),
    )) as [AdoptOutcome];
    return outcome;
  }

  async recountNodes(): Promise<Array<{ nodeId: string; was: number; now: number }>> {
    const flat = (await redisCall(() => this.redis.roomRecount(this.keys.rooms, this.keys.counts, `${this.options.keyPrefix}room:`))) as Array<string | number>;
    const corrected: Array<{ nodeId: string; was: number; now: number }> = [];
    for (let i = 0; i < flat.length; i += 3) corrected.push({ nodeId: String(flat[i]), was: Number(flat[i + 1]), now: Number(flat[i + 2]) });
    return corrected;
  }

  async claimMove(allocationId: string, ttlMs: number): Promise<boolean> {
    return (await redisCall(() => this.redis.set(`${this.options.keyPrefix}reconcile-move:${allocationId}`, '1', 'PX', ttlMs, 'NX'))) === 'OK';
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  /**
   * Room ids may contain ':', so `room:a:participants` could name both room "a:participants" and
   * the participants of room "a"; ':' and '%' in the id are percent-encoded to keep keys distinct.
   */
  private roomKey(roomId: string): string {
    return `${this.options.keyPrefix}room:${roomId.replaceAll('%', '%25').replaceAll(':', '%3A')}`;
  }

  private participantsKey(roomId: string): string {
    return `${this.roomKey(roomId)}:participants`;
  }

  private p2pKey(roomId: string): string {
    return `${this.roomKey(roomId)}:p2p`;
  }

  private plansKey(roomId: string): string {
    return `${this.roomKey(roomId)}:plans`;
  }

  private kicksKey(roomId: string): string {
    return `${this.roomKey(roomId)}:kicks`;
  }

  private earlierNodesKey(roomId: string): string {
    return `${this.roomKey(roomId)}:earlier`;
  }

  /** The KEYS every room script takes, in the order redis-room-scripts.ts documents. */
  private roomKeys(roomId: string): string[] {
    return [
      this.roomKey(roomId),
      this.participantsKey(roomId),
      this.keys.counts,
      this.keys.pending,
      this.keys.rooms,
      this.keys.versions,
      this.p2pKey(roomId),
      this.plansKey(roomId),
      this.kicksKey(roomId),
      this.earlierNodesKey(roomId),
    ];
  }
}

/** Serialises with `status` as the first key, which the scripts rely on (see redis-room-scripts.ts). */
function encodeParticipant(participant: ParticipantRecord): string {
  const { status, ...rest } = participant;
  return JSON.stringify({ status, ...rest });
}

function decodeParticipant(json: string): ParticipantRecord {
  return JSON.parse(json) as ParticipantRecord;
}

/** The scripts' space-separated node id list. */
function nodeIdList(ids: string): string[] {
  return ids === '' ? [] : ids.split(' ');
}

function pendingMember(roomId: string, participantId: string): string {
  return JSON.stringify([roomId, participantId]);
}

function toRoomRecord(roomId: string, [home, homeNode, epoch, createdAt, policy]: Array<string | null | undefined>): RoomRecord {
  return { roomId, homeRegion: home ?? '', homeNodeId: homeNode ?? '', epoch: Number(epoch), createdAtMs: Number(createdAt), policy: parsePolicyKey(policy) };
}

/** `version` absent: the room hash has none yet (see redis-room-scripts.ts). */
function toRoomState(roomId: string, roomFields: Array<string | null | undefined>, version: string | undefined, records: string[], plans: string[]): RoomState {
  return {
    room: toRoomRecord(roomId, roomFields),
    participants: records.map(decodeParticipant).sort(compareParticipants),
    plans: plans.map((plan) => JSON.parse(plan) as MovePlan),
    version: Number(version ?? 0),
  };
}

/**
 * `leaseUntilMs` and `status` first: the renew script rewrites them in place; the room's policy as
 * its policyKey string, which the scripts compare (see redis-room-scripts.ts).
 */
function encodeP2pParticipant(participant: P2pParticipantRecord, policy: NormalizedPolicy | null): string {
  const { leaseUntilMs, status, ...rest } = participant;
  return JSON.stringify({ leaseUntilMs, status, ...rest, ...(policy ? { policy: policyKey(policy) } : {}) });
}

/** A record and the room policy it carries. */
function decodeP2pParticipant(json: string): { record: P2pParticipantRecord; policy: NormalizedPolicy | null } {
  const { policy, ...record } = JSON.parse(json) as P2pParticipantRecord & { policy?: string };
  return { record, policy: parsePolicyKey(policy) };
}

/** Only participants whose lease has not run out (the scripts drop the others lazily). */
function toP2pRoomState(roomId: string, records: string[], nowMs: number): P2pRoomState {
  const decoded = records.map(decodeP2pParticipant).filter((p) => p.record.leaseUntilMs > nowMs);
  return { roomId, policy: decoded[0]?.policy ?? null, participants: decoded.map((p) => p.record).sort(compareParticipants) };
}
