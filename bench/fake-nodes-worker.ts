import { parentPort, workerData } from 'node:worker_threads';
import { FakeNodes, type FakeNodeSpec } from '../test/utils/fake-nodes.ts';

/**
 * Scripted nodes (test/utils/fake-nodes.ts) in a thread of their own: they register, heartbeat and
 * answer the router's signed pushes as agents would from their own processes, so the router's
 * thread under measurement does only the router's work. Posts 'ready' once every node is
 * registered; on 'close' stops them and posts 'closed'.
 */
export interface FakeNodesJob {
  routerUrl: string;
  secret: string;
  heartbeatIntervalMs: number;
  nodes: FakeNodeSpec[];
}

const job = (workerData as { data: FakeNodesJob }).data;
const nodes = new FakeNodes(job.routerUrl, job.secret);
nodes.recordPushes = false;
await nodes.start(job.heartbeatIntervalMs);
for (const spec of job.nodes) await nodes.add(spec);
parentPort!.on('message', (message: unknown) => {
  if (message !== 'close') return;
  void nodes.close().then(() => parentPort!.postMessage('closed'));
});
parentPort!.postMessage('ready');
