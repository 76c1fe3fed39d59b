import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { BODY_LIMIT_BYTES } from '../shared/http.ts';
import { participant, request, type Target } from './hostile-client.ts';

/**
 * The hostile benchmark's attacker, in a worker thread of its own (bench/ts-worker.mjs) so its
 * work does not delay the measuring client's timers: slow-body connections to the router, then one
 * participant firing transports and consumers at its agent. Posts `attacking` when the requests
 * start, `attacked` with what it got when they are answered; on `stop` it counts the slow
 * connections still open, closes everything and posts `stopped`.
 */
export interface AttackJob extends Target {
  roomId: string;
  participantId: string;
  producerId: string;
  attempts: number;
  slowConnections: number;
}
export type AttackerMessage =
  | { kind: 'attacking' }
  | { kind: 'attacked'; transports: number; consumers: number; refusals: Array<[string, number]> }
  | { kind: 'stopped'; slowConnectionsOpen: number };

/**
 * A request that never finishes: headers announcing a body under the router's body limit (a larger
 * one is refused at once), then one byte of it every two seconds.
 */
function slowBody(routerUrl: string): net.Socket {
  const { hostname, port } = new URL(routerUrl);
  const socket = net.connect(Number(port), hostname, () => {
    socket.write(`POST /allocate HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${BODY_LIMIT_BYTES - 1}\r\n\r\n{`);
  });
  socket.on('error', () => {});
  const drip = setInterval(() => (socket.writable ? socket.write(' ') : clearInterval(drip)), 2_000);
  socket.once('close', () => clearInterval(drip));
  return socket;
}

const job = (workerData as { data: AttackJob }).data;
const post = (message: AttackerMessage) => parentPort!.postMessage(message);
const slow = Array.from({ length: job.slowConnections }, () => slowBody(job.routerUrl));
const attacker = await participant(job, job.roomId, job.participantId);
const stop = new Promise<void>((resolve) => parentPort!.once('message', () => resolve()));
post({ kind: 'attacking' });

const refusals = new Map<string, number>();
const tally = (answers: Array<{ ok: boolean; error?: { code: string } }>) => {
  let ok = 0;
  for (const a of answers) {
    if (a.ok) ok++;
    else refusals.set(a.error!.code, (refusals.get(a.error!.code) ?? 0) + 1);
  }
  return ok;
};
const transports = tally(await Promise.all(Array.from({ length: job.attempts }, () => request(attacker.socket, 'createWebRtcTransport', { direction: 'recv' }))));
const consumers = tally(await Promise.all(Array.from({ length: job.attempts }, () => request(attacker.socket, 'consume', { transportId: attacker.recv, producerId: job.producerId }))));
post({ kind: 'attacked', transports, consumers, refusals: [...refusals] });

await stop;
const slowConnectionsOpen = slow.filter((s) => !s.destroyed && s.readyState === 'open').length;
attacker.socket.close();
for (const s of slow) s.destroy();
post({ kind: 'stopped', slowConnectionsOpen });
