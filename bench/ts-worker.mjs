// Worker threads on Node 20 do not inherit tsx's loader from --import: register it, then run the
// TypeScript module named in workerData.module (see runTsWorker in bench/ts-worker-host.ts).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
