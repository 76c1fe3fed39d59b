/**
 * A region agent whose media crosses the launcher's emulated links: started by the embedded
 * launcher, with an IPC channel, when it emulates a WAN for media too. With `--pipe-relays` its
 * cascade pipes go through the launcher's delaying UDP relays (infra/embedded/pipe-relays.ts);
 * with `--client-relay=<ip>` its WebRtcServers announce that loopback address in their ICE
 * candidates and it reports their UDP ports, so that clients' media goes through the launcher's
 * client relays (infra/embedded/client-relays.ts): the agent waits for them before it registers,
 * and reports again when a worker is replaced. Everything else is region-agent/main.ts.
 */
import type { EndpointRewrite } from '../../region-agent/cascade/index.ts';
import { type RunAgentOptions, runAgent } from '../../region-agent/run.ts';
import { AgentSfu } from '../../region-agent/sfu.ts';
import { type ClientRelayRequest, isClientRelayMessage } from './client-relays.ts';
import { isPipeRelayMessage, type PipeRelayRequest } from './pipe-relays.ts';

const TIMEOUT_MS = 5_000;
const pending = new Map<number, { resolve: (answer: Record<string, unknown>) => void; reject: (e: Error) => void }>();
let nextId = 0;

if (!process.send) throw new Error('relayed-agent.ts runs under the embedded launcher (it needs an IPC channel)');
process.on('message', (msg: unknown) => {
  if (!isPipeRelayMessage(msg) && !isClientRelayMessage(msg)) return;
  const answer = msg as unknown as Record<string, unknown> & { type: string; id: number };
  const waiter = pending.get(answer.id);
  if (!waiter) return;
  pending.delete(answer.id);
  if (typeof answer.error === 'string') waiter.reject(new Error(`${answer.type === 'geo-sfu:pipe-relay' ? 'pipe' : 'client'} relay: ${answer.error}`));
  else waiter.resolve(answer);
});
// The IPC channel must not keep the agent alive once it has drained.
process.channel?.unref();

/** Sends a request to the launcher and waits for its answer. */
function ask(request: PipeRelayRequest | ClientRelayRequest): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(request.id);
      reject(new Error(`${request.type}: no answer from the launcher within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    pending.set(request.id, {
      resolve: (a) => {
        clearTimeout(timer);
        resolve(a);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    process.send!(request);
  });
}

const viaLauncher: EndpointRewrite = async (ctx) => {
  const answer = await ask({ type: 'geo-sfu:pipe-relay', id: ++nextId, roomId: ctx.roomId, localNodeId: ctx.localNodeId, remoteNodeId: ctx.remoteNodeId, ip: ctx.ip, port: ctx.port });
  return { ip: answer.ip as string, port: answer.port as number };
};

/** Tells the launcher where the WebRtcServers listen (UDP), and waits until it relays them. */
async function reportWebRtcPorts(sfu: AgentSfu): Promise<void> {
  const dumps = await Promise.all(sfu.pool.workers.map((w) => w.webRtcServer.dump()));
  await ask({ type: 'geo-sfu:client-relay', id: ++nextId, sockets: dumps.flatMap((d) => d.udpSockets.map(({ ip, port }) => ({ ip, port }))) });
}

/** The SFU, announcing the relay's address to clients (the cascade's pipes keep the configured one). */
const behindClientRelay =
  (address: string): RunAgentOptions['createSfu'] =>
  async (config) => {
    const sfu = await AgentSfu.create({ ...config, rtcAnnouncedAddress: address });
    try {
      await reportWebRtcPorts(sfu);
    } catch (err) {
      sfu.close();
      throw err;
    }
    sfu.pool.on('workerreplaced', () => {
      reportWebRtcPorts(sfu).catch((err: unknown) => process.stderr.write(`client relay: a replaced worker's port is not relayed: ${(err as Error).message}\n`));
    });
    return sfu;
  };

const args = process.argv.slice(2);
const clientRelay = args.find((a) => a.startsWith('--client-relay='))?.slice('--client-relay='.length);
const createSfu = clientRelay ? behindClientRelay(clientRelay) : undefined;
runAgent({
  ...(args.includes('--pipe-relays') ? { rewriteRemoteEndpoint: viaLauncher } : {}),
  ...(createSfu ? { createSfu } : {}),
});
