import { parentPort, workerData } from 'node:worker_threads';
import { openLoop } from '../load.ts';

/**
 * /allocate at a fixed rate from its own thread (the main thread speaks for the nodes): newcomers
 * into the given rooms in turn, each from one of the given places (its RTT to every region).
 */
export interface AllocateLatencyJob {
  origin: string;
  ratePerSecond: number;
  durationMs: number;
  roomIds: string[];
  /** Client RTT profiles, by region id; request i uses profile i mod length. */
  profiles: Array<Record<string, number>>;
  /** Participant ids are `<participantPrefix><i>`. */
  participantPrefix: string;
}

const job = (workerData as { data: AllocateLatencyJob }).data;
const body = (i: number) => JSON.stringify({ roomId: job.roomIds[i % job.roomIds.length], participantId: `${job.participantPrefix}${i}`, latencies: job.profiles[i % job.profiles.length] });
parentPort!.postMessage(await openLoop(job.origin, { method: 'POST', path: '/allocate', body }, job.ratePerSecond, job.durationMs));
