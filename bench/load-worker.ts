import { parentPort, workerData } from 'node:worker_threads';
import { closedLoop, openLoop, type RequestSpec } from './load.ts';

/**
 * Runs one load phase in its own thread, so the client's event loop does not share time with the
 * server under test (which runs on the main thread).
 */
export interface LoadJob {
  mode: 'closed' | 'open';
  origin: string;
  method: 'GET' | 'POST';
  path: string;
  /** Body generator by name (functions cannot cross threads). */
  body: 'allocate' | 'none';
  concurrency: number;
  ratePerSecond: number;
  durationMs: number;
  offset: number;
}

const PROFILES = [
  { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 },
  { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 },
  { 'us-west': 140, 'us-east': 80, 'eu-west': 5, apac: 180 },
  { 'us-west': 165, 'us-east': 225, 'eu-west': 170, apac: 5 },
];

/** Rooms of 10 people, each from one of four places. */
export function allocateBody(i: number): string {
  return JSON.stringify({ roomId: `bench-${Math.floor(i / 10)}`, participantId: `p${i}`, latencies: PROFILES[i % 4] });
}

const job = workerData as LoadJob;
const spec: RequestSpec = { method: job.method, path: job.path, ...(job.body === 'allocate' ? { body: allocateBody } : {}) };
const result = job.mode === 'closed'
  ? await closedLoop(job.origin, spec, job.concurrency, job.durationMs, job.offset)
  : await openLoop(job.origin, spec, job.ratePerSecond, job.durationMs, job.offset);
parentPort!.postMessage(result);
