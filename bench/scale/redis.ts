import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, stopChild } from '../../infra/embedded/launcher.ts';
import type { ParticipantRecord } from '../../router/state/types.ts';

/**
 * The scale benchmark's own Redis: a redis-server on a spare port, never the machine's shared one
 * (the benchmark fills it with a million records and reads its CPU counters, which other users of
 * a shared server would spoil).
 */
export interface PrivateRedis {
  port: number;
  url: string;
  /** A client for the benchmark's own reads and writes (fill, counters). */
  client: Redis;
  /** The server's CPU time (used_cpu_user + used_cpu_sys, all its threads), seconds. */
  cpuSeconds(): Promise<number>;
  /** INFO memory's used_memory, bytes. */
  usedMemory(): Promise<number>;
  close(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-scale-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 2, retryStrategy: () => 100 });
  client.on('error', () => undefined); // failures reach the callers through their commands
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.ping();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`redis-server on :${port} did not answer: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const field = (info: string, name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    cpuSeconds: async () => {
      const info = await client.info('cpu');
      return field(info, 'used_cpu_user') + field(info, 'used_cpu_sys');
    },
    usedMemory: async () => field(await client.info('memory'), 'used_memory'),
    close: async () => {
      client.disconnect();
      await stopChild(child, 2_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The room a fill writes: its id, its home and its participants (all joined). */
export interface FillRoom {
  roomId: string;
  homeRegion: string;
  homeNodeId: string;
  participants: ParticipantRecord[];
}

/**
 * Writes rooms with RedisRoomStore's key layout (router/state/redis-room-store.ts, the scripts'
 * record format in redis-room-scripts.ts) straight with pipelined HSET/SADD/HINCRBY, as the ALLOCATE
 * and MARK_JOINED scripts would have left them for joined participants: a million /allocate calls
 * would take the whole benchmark's time. Room ids must hold no ':' or '%' (the store would encode them).
 */
export async function writeRooms(redis: Redis, keyPrefix: string, rooms: readonly FillRoom[], firstVersion: number): Promise<number> {
  const pipeline = redis.pipeline();
  let version = firstVersion;
  for (const room of rooms) {
    const roomKey = `${keyPrefix}room:${room.roomId}`;
    pipeline.hset(roomKey, 'home', room.homeRegion, 'homeNode', room.homeNodeId, 'epoch', '0', 'createdAt', String(room.participants[0]?.allocatedAtMs ?? 0), 'version', String(version++));
    pipeline.sadd(`${keyPrefix}rooms`, room.roomId);
    const fields: string[] = [];
    for (const p of room.participants) {
      fields.push(p.participantId, encodeJoined(p));
      pipeline.hincrby(`${keyPrefix}nodecount`, p.nodeId, 1);
    }
    if (fields.length > 0) pipeline.hset(`${roomKey}:participants`, ...fields);
  }
  pipeline.set(`${keyPrefix}roomversion`, String(version));
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0]!;
  return version;
}

/** As RedisRoomStore encodes a record: `status` first (the scripts rewrite it in place). */
function encodeJoined(p: ParticipantRecord): string {
  const { status, ...rest } = p;
  return JSON.stringify({ status, ...rest });
}
