import net from 'node:net';
import { io, type Socket } from 'socket.io-client';
import { launchEmbedded, type Embedded } from '../infra/embedded/launcher.ts';
import { loadConfig } from '../shared/config/index.ts';
import type { AllocateSfuResponse, RegionsResponse } from '../shared/schemas/index.ts';
import { type Ack, PROTOCOL_VERSION } from '../shared/signaling.ts';

/**
 * A hostile client against the embedded default, measured side by side with a quiet cluster in the
 * same run: one signaling peer attempting 1,000 WebRTC transports and 1,000 consumers of one
 * producer, plus 300 connections to the router that send a request body one byte at a time.
 * Meanwhile an agent's `/probe` time (what the router's RTT measurement sees) and a legitimate
 * participant's /allocate latency are measured. Each round measures a quiet window, then an attacked
 * one; figures are medians over the rounds.
 * Goal (hardening issue): attacked ≤ 1.5 × quiet, or within 2 ms of it, whichever is larger.
 */
export interface HostileBenchResult {
  rounds: number;
  quiet: WindowFigures;
  attacked: WindowFigures;
  /** What the attacker got: created transports and consumers, refusals by code, slow connections still open at the window's end. */
  attacker: { transports: number; consumers: number; refusals: Record<string, number>; slowConnectionsOpenAtEnd: number; slowConnections: number };
}
export interface WindowFigures {
  probeP50Ms: number;
  probeP99Ms: number;
  allocateP50Ms: number;
  allocateP99Ms: number;
}

const ATTEMPTS = 1_000;
const SLOW_CONNECTIONS = 300;
const VP8 = { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }] }], encodings: [{ ssrc: 4242 }] };

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const median = (values: number[]) => percentile(values, 50);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitHealthy(embedded: Embedded): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const body = (await fetch(`${embedded.routerUrl}/regions`)
      .then((res) => res.json())
      .catch(() => null)) as RegionsResponse | null; // the router may not listen yet
    if (body && body.regions.length > 0 && body.regions.every((r) => r.healthy && r.nodes.every((n) => n.state === 'alive'))) return;
    await sleep(250);
  }
  throw new Error('embedded cluster not healthy within 60 s');
}

async function allocate(embedded: Embedded, roomId: string, participantId: string): Promise<{ ms: number; answer: AllocateSfuResponse | null }> {
  const started = performance.now();
  const res = await fetch(`${embedded.routerUrl}/allocate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': embedded.credentials.apiKey },
    // The attacked agent's region, so the attacker and the legitimate traffic meet on one node.
    body: JSON.stringify({ roomId, participantId, latencies: { 'us-west': 5, 'us-east': 70, 'eu-west': 140, apac: 170 } }),
  });
  const answer = res.status === 200 ? ((await res.json()) as AllocateSfuResponse) : (await res.body?.cancel(), null);
  return { ms: performance.now() - started, answer };
}

function connect(answer: AllocateSfuResponse): Promise<Socket> {
  const socket = io(answer.node.signalingUrl, { auth: { protocolVersion: PROTOCOL_VERSION, token: answer.token }, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    socket.once('welcome', () => resolve(socket));
    socket.once('connect_error', (err) => reject(err));
  });
}

async function request(socket: Socket, name: string, payload: unknown): Promise<Ack<Record<string, unknown>>> {
  try {
    return (await socket.timeout(20_000).emitWithAck(name, payload)) as Ack<Record<string, unknown>>;
  } catch {
    return { ok: false, error: { code: 'TIMEOUT', message: 'no answer' } };
  }
}

/** Joins as a participant with a send and a receive transport. */
async function participant(embedded: Embedded, roomId: string, participantId: string) {
  const { answer } = await allocate(embedded, roomId, participantId);
  if (!answer) throw new Error(`allocation of ${participantId} refused`);
  const socket = await connect(answer);
  const caps = await request(socket, 'getRouterRtpCapabilities', {});
  if (!caps.ok) throw new Error('getRouterRtpCapabilities refused');
  await request(socket, 'join', { rtpCapabilities: caps.data.rtpCapabilities });
  const send = await request(socket, 'createWebRtcTransport', { direction: 'send' });
  const recv = await request(socket, 'createWebRtcTransport', { direction: 'recv' });
  if (!send.ok || !recv.ok) throw new Error('transports refused');
  return { socket, send: String(send.data.transportId), recv: String(recv.data.transportId), agentUrl: new URL(answer.node.signalingUrl).origin };
}

/** A request that never finishes: headers, then one byte of body every few seconds. */
function slowBody(routerUrl: string, sockets: net.Socket[]): void {
  const { hostname, port } = new URL(routerUrl);
  const socket = net.connect(Number(port), hostname, () => {
    socket.write(`POST /allocate HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{`);
  });
  socket.on('error', () => {});
  const drip = setInterval(() => (socket.writable ? socket.write(' ') : clearInterval(drip)), 2_000);
  socket.once('close', () => clearInterval(drip));
  sockets.push(socket);
}

interface Window {
  probes: number[];
  allocations: number[];
}

/** Sequential probes of one agent and a steady trickle of legitimate /allocate calls, for `ms`. */
async function measure(embedded: Embedded, agentUrl: string, ms: number): Promise<Window> {
  const end = performance.now() + ms;
  const probes: number[] = [];
  const allocations: number[] = [];
  let n = 0;
  await Promise.all([
    (async () => {
      while (performance.now() < end) {
        const started = performance.now();
        const res = await fetch(`${agentUrl}/probe`);
        await res.arrayBuffer();
        probes.push(performance.now() - started);
        await sleep(20);
      }
    })(),
    (async () => {
      while (performance.now() < end) {
        // 40 (room, participant) pairs re-allocated over and over: a bounded number of seats.
        const { ms: took, answer } = await allocate(embedded, `legit-${n % 10}`, `p-${n++ % 40}`);
        if (answer) allocations.push(took);
        await sleep(25);
      }
    })(),
  ]);
  return { probes, allocations };
}

const figures = (w: Window): WindowFigures => ({
  probeP50Ms: median(w.probes),
  probeP99Ms: percentile(w.probes, 99),
  allocateP50Ms: median(w.allocations),
  allocateP99Ms: percentile(w.allocations, 99),
});

export async function benchHostile(opts: { quick: boolean }): Promise<HostileBenchResult> {
  const env = {
    GEO_SFU_LOG_LEVEL: 'error',
    GEO_SFU_REBALANCE: 'false',
    // The legitimate trickle would otherwise meet the per-credential limit (one API key).
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE: '0',
  };
  const config = loadConfig(env);
  const embedded = await launchEmbedded({ config, fixedPorts: false, env, onOutput: () => {} });
  try {
    await waitHealthy(embedded);
    const rounds = 5;
    const windowMs = opts.quick ? 2_000 : 5_000;
    const publisher = await participant(embedded, 'hostile', 'publisher');
    const produced = await request(publisher.socket, 'produce', { transportId: publisher.send, kind: 'video', rtpParameters: VP8 });
    if (!produced.ok) throw new Error(`produce refused: ${JSON.stringify(produced.error)}`);
    const producerId = String(produced.data.producerId);
    const quiet: WindowFigures[] = [];
    const attacked: WindowFigures[] = [];
    const attacker: HostileBenchResult['attacker'] = { transports: 0, consumers: 0, refusals: {}, slowConnectionsOpenAtEnd: 0, slowConnections: SLOW_CONNECTIONS };
    for (let round = 0; round < rounds; round++) {
      quiet.push(figures(await measure(embedded, publisher.agentUrl, windowMs)));

      const slow: net.Socket[] = [];
      for (let i = 0; i < SLOW_CONNECTIONS; i++) slowBody(embedded.routerUrl, slow);
      const hostile = await participant(embedded, 'hostile', `attacker-${round}`);
      const refuse = (code: string) => (attacker.refusals[code] = (attacker.refusals[code] ?? 0) + 1);
      const attack = (async () => {
        const transports = await Promise.all(Array.from({ length: ATTEMPTS }, () => request(hostile.socket, 'createWebRtcTransport', { direction: 'recv' })));
        for (const t of transports) {
          if (t.ok) attacker.transports++;
          else refuse(t.error.code);
        }
        const consumers = await Promise.all(Array.from({ length: ATTEMPTS }, () => request(hostile.socket, 'consume', { transportId: hostile.recv, producerId })));
        for (const c of consumers) {
          if (c.ok) attacker.consumers++;
          else refuse(c.error.code);
        }
      })();
      attacked.push(figures(await measure(embedded, publisher.agentUrl, windowMs)));
      await attack;
      attacker.slowConnectionsOpenAtEnd = Math.max(attacker.slowConnectionsOpenAtEnd, slow.filter((s) => !s.destroyed && s.readyState === 'open').length);
      hostile.socket.close();
      for (const s of slow) s.destroy();
      await sleep(500);
    }
    publisher.socket.close();
    const med = (list: WindowFigures[], key: keyof WindowFigures) => median(list.map((f) => f[key]));
    const summarize = (list: WindowFigures[]): WindowFigures => ({
      probeP50Ms: med(list, 'probeP50Ms'),
      probeP99Ms: med(list, 'probeP99Ms'),
      allocateP50Ms: med(list, 'allocateP50Ms'),
      allocateP99Ms: med(list, 'allocateP99Ms'),
    });
    // Per round, so the totals read as what one attacker got.
    attacker.transports = Math.round(attacker.transports / rounds);
    attacker.consumers = Math.round(attacker.consumers / rounds);
    for (const code of Object.keys(attacker.refusals)) attacker.refusals[code] = Math.round(attacker.refusals[code]! / rounds);
    return { rounds, quiet: summarize(quiet), attacked: summarize(attacked), attacker };
  } finally {
    await embedded.close();
  }
}

/** The goal: attacked ≤ 1.5 × quiet, or within 2 ms of it, whichever is larger. */
export function withinHostileGoal(quietMs: number, attackedMs: number): boolean {
  return attackedMs <= Math.max(quietMs * 1.5, quietMs + 2);
}
