import { parentPort, workerData } from 'node:worker_threads';
import { closedLoop, openLoop, type RequestSpec } from './load.ts';
import { allocateBody, honestHeaders, type HonestCredentials } from './load-worker-body.ts';

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
  /** With them, each /allocate carries a credential (the honest path). */
  credentials?: HonestCredentials;
  concurrency: number;
  ratePerSecond: number;
  durationMs: number;
  offset: number;
}

const job = (workerData as { data: LoadJob }).data;
const spec: RequestSpec = {
  method: job.method,
  path: job.path,
  ...(job.body === 'allocate' ? { body: allocateBody } : {}),
  ...(job.credentials ? { headers: honestHeaders(job.credentials) } : {}),
};
const result = job.mode === 'closed'
  ? await closedLoop(job.origin, spec, job.concurrency, job.durationMs, job.offset)
  : await openLoop(job.origin, spec, job.ratePerSecond, job.durationMs, job.offset);
parentPort!.postMessage(result);
