import { Worker } from 'node:worker_threads';

/**
 * Starts `module` (a TypeScript file of bench/) in a worker thread with `data` as its input, so a
 * load generator or an attacker does not share the measuring client's event loop (nor the server
 * under test's, when that runs on the main thread).
 */
export function startTsWorker(module: URL, data: unknown): Worker {
  return new Worker(new URL('./ts-worker.mjs', import.meta.url), { workerData: { module: module.href, data } });
}
