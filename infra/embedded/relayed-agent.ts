/**
 * A region agent whose cascade pipes go through the launcher's delaying UDP relays
 * (infra/embedded/pipe-relays.ts): started by the embedded launcher, with an IPC channel, when
 * it emulates a WAN for media too. Everything else is region-agent/main.ts.
 */
import type { EndpointRewrite } from '../../region-agent/cascade/index.ts';
import { runAgent } from '../../region-agent/run.ts';
import { isPipeRelayMessage, type PipeRelayAnswer, type PipeRelayRequest } from './pipe-relays.ts';

const TIMEOUT_MS = 5_000;
const pending = new Map<number, { resolve: (a: { ip: string; port: number }) => void; reject: (e: Error) => void }>();
let nextId = 0;

if (!process.send) throw new Error('relayed-agent.ts runs under the embedded launcher (it needs an IPC channel)');
process.on('message', (msg: unknown) => {
  if (!isPipeRelayMessage(msg)) return;
  const answer = msg as unknown as PipeRelayAnswer;
  const waiter = pending.get(answer.id);
  if (!waiter) return;
  pending.delete(answer.id);
  if ('error' in answer) waiter.reject(new Error(`pipe relay: ${answer.error}`));
  else waiter.resolve({ ip: answer.ip, port: answer.port });
});
// The IPC channel must not keep the agent alive once it has drained.
process.channel?.unref();

const viaLauncher: EndpointRewrite = (ctx) =>
  new Promise((resolve, reject) => {
    const id = ++nextId;
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`pipe relay: no answer from the launcher within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    pending.set(id, {
      resolve: (a) => {
        clearTimeout(timer);
        resolve(a);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    const request: PipeRelayRequest = { type: 'geo-sfu:pipe-relay', id, roomId: ctx.roomId, localNodeId: ctx.localNodeId, remoteNodeId: ctx.remoteNodeId, ip: ctx.ip, port: ctx.port };
    process.send!(request);
  });

runAgent({ rewriteRemoteEndpoint: viaLauncher });
