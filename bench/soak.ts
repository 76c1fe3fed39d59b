/**
 * Bounded soak on loopback: the embedded default (router + one agent per region, each its own
 * process, real SFUs) under steady churn — /allocate, then a real signaling session that joins
 * the room, opens a send transport and leaves — while the router's and agents' resident memory
 * and V8 heap are sampled from their /metrics. Growth per hour is the least-squares slope of the
 * lower envelope (the minimum of each window of samples: what survives garbage collection, not the
 * saw-tooth between collections) after a warm-up third, so start-up allocation does not count.
 * The --quick run (40 s) shows the method works; only the full run (10 min) says much about hours.
 */
import { io } from 'socket.io-client';
import { request } from 'undici';
import { launchEmbedded } from '../infra/embedded/launcher.ts';
import { loadConfig } from '../shared/config/index.ts';
import { PROTOCOL_VERSION } from '../shared/signaling.ts';

const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];
const MiB = 1024 * 1024;

export interface SoakResult {
  durationS: number;
  allocations: number;
  /** Signaling sessions that joined a room and left it. */
  sessions: number;
  failures: number;
  samples: number;
  /** MiB per hour (slope after warm-up) and MiB at the end. */
  router: { rssPerHourMiB: number; heapPerHourMiB: number; rssEndMiB: number; heapEndMiB: number };
  /** All agents together. */
  agents: { rssPerHourMiB: number; heapPerHourMiB: number; rssEndMiB: number; heapEndMiB: number };
}

interface Sample {
  atS: number;
  routerRss: number;
  routerHeap: number;
  agentsRss: number;
  agentsHeap: number;
}

async function metric(url: string, name: string): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`${url}/metrics has no ${name}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** One participant's life: allocate, connect, join, open a send transport, leave. */
async function session(routerUrl: string, apiKey: string, roomId: string, participantId: string): Promise<boolean> {
  const near = REGIONS[Math.floor(Math.random() * REGIONS.length)]!;
  const res = await request(`${routerUrl}/allocate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ roomId, participantId, latencies: Object.fromEntries(REGIONS.map((r) => [r, r === near ? 10 : 80 + Math.random() * 100])) }),
  });
  const allocation = (await res.body.json()) as { token: string; node: { signalingUrl: string } };
  if (res.statusCode !== 200) return false;
  const socket = io(allocation.node.signalingUrl, { auth: { protocolVersion: PROTOCOL_VERSION, token: allocation.token }, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('welcome', () => resolve());
      socket.once('connect_error', reject);
    });
    const ask = async (name: string, payload: unknown) => {
      const reply = (await socket.timeout(10_000).emitWithAck(name, payload)) as { ok: boolean; data: Record<string, unknown> };
      if (!reply.ok) throw new Error(`${name} refused`);
      return reply.data;
    };
    const { rtpCapabilities } = await ask('getRouterRtpCapabilities', {});
    await ask('join', { rtpCapabilities });
    await ask('createWebRtcTransport', { direction: 'send' });
    await ask('leave', {});
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

export async function benchSoak(opts: { quick: boolean }): Promise<SoakResult> {
  const durationMs = opts.quick ? 40_000 : 600_000;
  const sampleEveryMs = opts.quick ? 500 : 2_000;
  const windowMs = opts.quick ? 5_000 : 30_000;
  const concurrency = 8;
  const env = { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_RATE_LIMIT_PER_MINUTE: '0', GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE: '0', GEO_SFU_ALLOCATION_TTL_MS: '5000' };
  const embedded = await launchEmbedded({ config: loadConfig(env), fixedPorts: false, env });
  try {
    const agentUrls = embedded.agents.map((a) => a.directUrl);
    // Wait for every agent to be registered and alive.
    for (const deadline = Date.now() + 60_000; ; ) {
      const body = await request(`${embedded.routerUrl}/regions`).then((r) => r.body.json() as Promise<{ regions: Array<{ nodes: Array<{ state: string }> }> }>).catch(() => null);
      if (body && body.regions.flatMap((r) => r.nodes).filter((n) => n.state === 'alive').length === agentUrls.length) break;
      if (Date.now() > deadline) throw new Error('soak: agents not alive within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    const started = performance.now();
    const samples: Sample[] = [];
    const sample = async () => {
      const [routerRss, routerHeap, ...agents] = await Promise.all([
        metric(embedded.routerUrl, 'geo_sfu_router_process_resident_memory_bytes'),
        metric(embedded.routerUrl, 'geo_sfu_router_nodejs_heap_size_used_bytes'),
        ...agentUrls.flatMap((u) => [metric(u, 'geo_sfu_agent_process_resident_memory_bytes'), metric(u, 'geo_sfu_agent_process_heap_used_bytes')]),
      ]);
      const agentsRss = agents.filter((_, i) => i % 2 === 0).reduce((a, b) => a + b, 0);
      const agentsHeap = agents.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0);
      samples.push({ atS: (performance.now() - started) / 1000, routerRss: routerRss!, routerHeap: routerHeap!, agentsRss, agentsHeap });
    };
    const sampler = setInterval(() => void sample().catch(() => undefined), sampleEveryMs);
    let allocations = 0;
    let sessions = 0;
    let failures = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() - started < durationMs) {
          const i = next++;
          allocations++;
          if (await session(embedded.routerUrl, embedded.credentials.apiKey, `soak-${i % 40}`, `p${i % 400}`)) sessions++;
          else failures++;
        }
      }),
    );
    clearInterval(sampler);
    await sample();
    const steady = samples.filter((s) => s.atS >= durationMs / 3000);
    const windows = new Map<number, Sample[]>();
    for (const s of steady) windows.set(Math.floor((s.atS * 1000) / windowMs), [...(windows.get(Math.floor((s.atS * 1000) / windowMs)) ?? []), s]);
    const perHour = (pick: (s: Sample) => number) => {
      const lows = [...windows.values()].map((w) => ({ atS: w.reduce((a, s) => a + s.atS, 0) / w.length, value: Math.min(...w.map(pick)) }));
      return (slope(lows.map((l) => l.atS), lows.map((l) => l.value)) * 3600) / MiB;
    };
    const last = samples.at(-1)!;
    return {
      durationS: Math.round((performance.now() - started) / 1000),
      allocations,
      sessions,
      failures,
      samples: samples.length,
      router: { rssPerHourMiB: perHour((s) => s.routerRss), heapPerHourMiB: perHour((s) => s.routerHeap), rssEndMiB: last.routerRss / MiB, heapEndMiB: last.routerHeap / MiB },
      agents: { rssPerHourMiB: perHour((s) => s.agentsRss), heapPerHourMiB: perHour((s) => s.agentsHeap), rssEndMiB: last.agentsRss / MiB, heapEndMiB: last.agentsHeap / MiB },
    };
  } finally {
    await embedded.close();
  }
}
