import type { Worker } from 'node:worker_threads';
import { launchEmbedded, type Embedded } from '../infra/embedded/launcher.ts';
import { loadConfig } from '../shared/config/index.ts';
import type { RegionsResponse } from '../shared/schemas/index.ts';
import type { AttackerMessage, AttackJob } from './hostile-attacker.ts';
import { allocate, participant, request, type Target } from './hostile-client.ts';
import { startTsWorker } from './ts-worker-host.ts';

/**
 * A hostile client against the embedded default, measured side by side with a quiet cluster in the
 * same run: one signaling peer attempting 1,000 WebRTC transports and 1,000 consumers of one
 * producer, plus 300 connections to the router that send a request body one byte at a time.
 * Meanwhile an agent's `/probe` time (what the router's RTT measurement sees) and a legitimate
 * participant's /allocate latency are measured. The attacker runs in a thread of its own
 * (bench/hostile-attacker.ts), so what it costs shows in the cluster, not in the measuring client's
 * timers. Each round measures a quiet window, then an attacked one; figures are medians over the
 * rounds (5; 2 with `--quick`).
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
/** The next message of `kind` from the attacker thread. */
function next<K extends AttackerMessage['kind']>(worker: Worker, kind: K): Promise<Extract<AttackerMessage, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: AttackerMessage) => {
      if (m.kind !== kind) return;
      worker.off('message', onMessage);
      resolve(m as Extract<AttackerMessage, { kind: K }>);
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
}

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

interface Window {
  probes: number[];
  allocations: number[];
}

/** Sequential probes of one agent and a steady trickle of legitimate /allocate calls, for `ms`. */
async function measure(target: Target, agentUrl: string, ms: number): Promise<Window> {
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
        const { ms: took, answer } = await allocate(target, `legit-${n % 10}`, `p-${n++ % 40}`);
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
    const rounds = opts.quick ? 2 : 5;
    const windowMs = opts.quick ? 2_000 : 5_000;
    const target: Target = { routerUrl: embedded.routerUrl, apiKey: embedded.credentials.apiKey };
    const publisher = await participant(target, 'hostile', 'publisher');
    const produced = await request(publisher.socket, 'produce', { transportId: publisher.send, kind: 'video', rtpParameters: VP8 });
    if (!produced.ok) throw new Error(`produce refused: ${JSON.stringify(produced.error)}`);
    const producerId = String(produced.data.producerId);
    const quiet: WindowFigures[] = [];
    const attacked: WindowFigures[] = [];
    const attacker: HostileBenchResult['attacker'] = { transports: 0, consumers: 0, refusals: {}, slowConnectionsOpenAtEnd: 0, slowConnections: SLOW_CONNECTIONS };
    const refusals = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      quiet.push(figures(await measure(target, publisher.agentUrl, windowMs)));

      const job: AttackJob = { ...target, roomId: 'hostile', participantId: `attacker-${round}`, producerId, attempts: ATTEMPTS, slowConnections: SLOW_CONNECTIONS };
      const worker = startTsWorker(new URL('./hostile-attacker.ts', import.meta.url), job);
      const answered = next(worker, 'attacked');
      await next(worker, 'attacking');
      attacked.push(figures(await measure(target, publisher.agentUrl, windowMs)));
      const got = await answered;
      attacker.transports += got.transports;
      attacker.consumers += got.consumers;
      for (const [code, n] of got.refusals) refusals.set(code, (refusals.get(code) ?? 0) + n);
      const stopped = next(worker, 'stopped');
      worker.postMessage('stop');
      attacker.slowConnectionsOpenAtEnd = Math.max(attacker.slowConnectionsOpenAtEnd, (await stopped).slowConnectionsOpen);
      await worker.terminate();
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
    for (const [code, n] of refusals) attacker.refusals[code] = Math.round(n / rounds);
    return { rounds, quiet: summarize(quiet), attacked: summarize(attacked), attacker };
  } finally {
    await embedded.close();
  }
}

/** The goal: attacked ≤ 1.5 × quiet, or within 2 ms of it, whichever is larger. */
export function withinHostileGoal(quietMs: number, attackedMs: number): boolean {
  return attackedMs <= Math.max(quietMs * 1.5, quietMs + 2);
}
