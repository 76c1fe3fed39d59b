/**
 * The SFU's own load, which the region agent samples (its `SfuLoad`): counts, and the
 * workers' cumulative CPU time and current RSS so the agent can difference
 * CPU over its own interval. Workers that died are not counted.
 */
import type { RoomRouter } from './room-router.ts';
import type { WorkerPool } from './worker-pool.ts';

export interface SfuLoadSnapshot {
  participants: number;
  rooms: number;
  transports: number;
  producers: number;
  consumers: number;
  workers: number;
  /** CPU time (user + system, ms) of the live workers since they started, summed. */
  workerCpuTimeMs: number;
  /** Resident memory of the live workers now, bytes. */
  workerRssBytes: number;
}

export async function collectSfuLoad(pool: WorkerPool, rooms: RoomRouter): Promise<SfuLoadSnapshot> {
  const { totals } = await pool.getLoad();
  return {
    participants: rooms.participantCount,
    rooms: rooms.rooms.size,
    transports: totals.transports,
    producers: totals.producers,
    consumers: totals.consumers,
    workers: totals.workers,
    workerCpuTimeMs: totals.cpuTimeMs,
    workerRssBytes: totals.memoryRssBytes,
  };
}
