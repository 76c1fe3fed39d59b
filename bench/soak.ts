/**
 * Soak on loopback: the embedded default (router + one agent per region, each its own process,
 * real SFUs, the router on the shared Redis and PostgreSQL under a key prefix and schema of its
 * own) under steady churn — /allocate, then a real signaling session that joins the room, opens a
 * send transport and leaves — while the router's and agents' resident memory, V8 heap, open
 * handles and sockets, the agents' mediasoup objects and the router's Redis keys are sampled.
 * Growth per hour is the least-squares slope of the lower envelope (the minimum of each window of
 * samples: what survives garbage collection and the churn's own coming and going, not the
 * saw-tooth between collections) after a warm-up third, so start-up allocation does not count.
 * The full run is 30 minutes, --quick 15 s (it shows the method works, not much about hours).
 *
 * With `heapSnapshotDir`, the router and the first agent write V8 heap snapshots at the end of the
 * warm-up, the middle and the end of the churn, and the growth between them by constructor
 * (bench/heap-diff.ts) is printed: where a leak is. Snapshots stop the process for a second or so
 * each, which the slopes of such a run show.
 *
 * `node --import tsx bench/soak.ts [--quick] [--minutes N] [--heap-snapshots DIR] [--memory]` runs it alone.
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { io } from 'socket.io-client';
import { request } from 'undici';
import { launchEmbedded } from '../infra/embedded/launcher.ts';
import { loadConfig } from '../shared/config/index.ts';
import { PROTOCOL_VERSION } from '../shared/signaling.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TestPgSchemas, TestRedisKeys } from '../test/utils/test-backends.ts';
import { countByConstructor, growth, readHeapSnapshot, type ConstructorCount } from './heap-diff.ts';

const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];
const MiB = 1024 * 1024;

/** Growth per hour (slope after warm-up, of the lower envelope) and the value at the end. */
export interface Trend {
  perHour: number;
  end: number;
}

export interface ProcessTrends {
  /** MiB. */
  rss: Trend;
  /** MiB after the last major garbage collection (what survives: shared/live-heap.ts). */
  heap: Trend;
  /** MiB of heapUsed, garbage of the old generation included (lower envelope, as the first soaks measured). */
  heapUsed: Trend;
  /** MiB the V8 heap reserves (used, garbage and free: the heap's part of RSS) and MiB outside it (Buffers...). */
  heapTotal: Trend;
  external: Trend;
  /** process.getActiveResourcesInfo(): sockets, servers, timers... */
  handles: Trend;
  /** TCP sockets among them. */
  sockets: Trend;
}

export interface SoakResult {
  durationS: number;
  allocations: number;
  /** Signaling sessions that joined a room and left it. */
  sessions: number;
  failures: number;
  /** Why sessions failed: allocate's status and mode, or the signaling error. */
  failureReasons: Record<string, number>;
  samples: number;
  /** `redisKeys`: the router's state in Redis (rooms, participants, registry...); `redisNonces`: signed-request nonces, which expire. */
  router: ProcessTrends & { redisKeys: Trend; redisNonces: Trend };
  /** Each agent, in launch order. */
  agents: Array<ProcessTrends & { nodeId: string; mediasoupObjects: Trend }>;
  /** The agent whose figure grows fastest (or shrinks fastest), per figure: what the goal is checked on. */
  worstAgent: { rss: Trend; heap: Trend; handles: Trend; sockets: Trend; mediasoupObjects: Trend };
  /** With `heapSnapshotDir`: the constructors that grew most, per snapshotted process. */
  heapGrowth?: Record<string, { totalMiB: number[]; top: Array<{ name: string; counts: number[]; growthKiB: number }> }>;
}

export interface SoakOptions {
  quick: boolean;
  /** Length of the churn; default 30 min (15 s with `quick`). */
  durationMs?: number;
  /** Heap snapshots of the router and the first agent go here (see the top of this file). */
  heapSnapshotDir?: string;
  /** 'memory': the router without Redis and PostgreSQL (in-memory state; no Redis keys to count). Default 'real'. */
  backend?: 'real' | 'memory';
}

type Sample = { atS: number } & Record<string, number>;

interface Scrape {
  /** Metric line values by `name{labels}` (labels as printed) and by bare name (the first line of that name). */
  value(name: string, labels?: Record<string, string>): number;
  /** Sum over every line of the metric. */
  sum(name: string, filter?: (labels: string) => boolean): number;
}

async function scrape(url: string): Promise<Scrape> {
  const res = await request(`${url}/metrics`);
  const lines = (await res.body.text()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const parsed = lines.map((l) => {
    const space = l.lastIndexOf(' ');
    const key = l.slice(0, space);
    const brace = key.indexOf('{');
    return { name: brace < 0 ? key : key.slice(0, brace), labels: brace < 0 ? '' : key.slice(brace), value: Number(l.slice(space + 1)) };
  });
  return {
    value(name, labels = {}) {
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      const line = parsed.find((p) => p.name === name && want.every((w) => p.labels.includes(w)));
      if (!line) throw new Error(`${url}/metrics has no ${name}${want.length > 0 ? `{${want.join(',')}}` : ''}`);
      return line.value;
    },
    sum(name, filter = () => true) {
      return parsed.filter((p) => p.name === name && filter(p.labels)).reduce((a, p) => a + p.value, 0);
    },
  };
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

/** The run's Redis keys: the router's state, and the nonces of signed requests (each with a TTL of twice the replay window: their number follows the request rate). */
async function countKeys(redis: Redis, prefix: string): Promise<{ state: number; nonces: number }> {
  const counts = { state: 0, nonces: 0 };
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1_000 }) as AsyncIterable<string[]>) {
    for (const key of keys) counts[key.startsWith(`${prefix}nonce:`) ? 'nonces' : 'state']++;
  }
  return counts;
}

/** One participant's life: allocate, connect, join, open a send transport, leave. */
async function session(routerUrl: string, apiKey: string, roomId: string, participantId: string, failed: (why: string) => void): Promise<boolean> {
  const near = REGIONS[Math.floor(Math.random() * REGIONS.length)]!;
  const res = await request(`${routerUrl}/allocate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ roomId, participantId, latencies: Object.fromEntries(REGIONS.map((r) => [r, r === near ? 10 : 80 + Math.random() * 100])) }),
  });
  const allocation = (await res.body.json()) as { mode?: string; token: string; node: { signalingUrl: string }; reasons?: unknown; code?: string };
  if (res.statusCode !== 200 || allocation.mode !== 'sfu') {
    failed(`allocate ${res.statusCode} ${allocation.mode ?? allocation.code ?? ''}`);
    return false;
  }
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
  } catch (err) {
    failed((err as Error).message);
    return false;
  } finally {
    socket.close();
  }
}

/** Signals `pid` to write a heap snapshot into `dir` (it runs with --heapsnapshot-signal) and waits until the file is complete. */
async function heapSnapshot(pid: number, dir: string, metricsUrl: string): Promise<string> {
  const own = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && f.includes(`.${pid}.`));
  const before = new Set(own());
  process.kill(pid, 'SIGUSR2');
  let lastSize = -1;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 500));
    const file = own().find((f) => !before.has(f));
    if (!file) continue;
    const size = statSync(join(dir, file)).size;
    // The snapshot is written on the process's main thread: once it answers again, the file is whole.
    if (size > 0 && size === lastSize && (await request(`${metricsUrl}/metrics`).then((r) => r.body.dump().then(() => true), () => false))) return join(dir, file);
    lastSize = size;
  }
  throw new Error(`process ${pid} wrote no heap snapshot into ${dir} within 120 s`);
}

export async function benchSoak(opts: SoakOptions): Promise<SoakResult> {
  const durationMs = opts.durationMs ?? (opts.quick ? 15_000 : 1_800_000);
  const sampleEveryMs = durationMs <= 60_000 ? 500 : 2_000;
  const windowMs = durationMs <= 60_000 ? 2_500 : 30_000;
  const concurrency = 8;
  const redisKeys = new TestRedisKeys();
  const pgSchemas = new TestPgSchemas();
  const prefix = redisKeys.prefix();
  const snapshotDir = opts.heapSnapshotDir ? resolve(opts.heapSnapshotDir) : null;
  if (snapshotDir) mkdirSync(snapshotDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    GEO_SFU_LOG_LEVEL: 'warn',
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE: '0',
    GEO_SFU_ALLOCATION_TTL_MS: '5000',
    ...(opts.backend === 'memory'
      ? { REDIS_URL: '', DATABASE_URL: '' }
      : { REDIS_URL: TEST_REDIS_URL, GEO_SFU_REDIS_PREFIX: prefix, DATABASE_URL: TEST_DATABASE_URL, GEO_SFU_PG_SCHEMA: pgSchemas.schema() }),
    ...(snapshotDir ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}`.trim() } : {}),
  };
  const redis = new Redis(TEST_REDIS_URL);
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
    let keys = { state: 0, nonces: 0 };
    const keySampler = setInterval(() => void countKeys(redis, prefix).then((n) => (keys = n), () => undefined), 10_000);
    keys = await countKeys(redis, prefix);
    const tcp = (labels: string) => labels.includes('type="TCPSocketWrap"');
    const sample = async () => {
      const [router, ...agents] = await Promise.all([scrape(embedded.routerUrl), ...agentUrls.map((u) => scrape(u))]);
      const s: Sample = {
        atS: (performance.now() - started) / 1000,
        routerRss: router!.value('geo_sfu_router_process_resident_memory_bytes') / MiB,
        routerHeap: router!.value('geo_sfu_router_nodejs_heap_after_gc_bytes') / MiB,
        routerHeapUsed: router!.value('geo_sfu_router_nodejs_heap_size_used_bytes') / MiB,
        routerExternal: router!.value('geo_sfu_router_nodejs_external_memory_bytes') / MiB,
        routerHeapTotal: router!.value('geo_sfu_router_nodejs_heap_size_total_bytes') / MiB,
        routerHandles: router!.value('geo_sfu_router_nodejs_active_resources_total'),
        routerSockets: router!.sum('geo_sfu_router_nodejs_active_resources', tcp),
        redisKeys: keys.state,
        redisNonces: keys.nonces,
      };
      agents.forEach((a, i) => {
        s[`a${i}Rss`] = a.value('geo_sfu_agent_process_resident_memory_bytes') / MiB;
        s[`a${i}Heap`] = a.value('geo_sfu_agent_process_heap_after_gc_bytes') / MiB;
        s[`a${i}HeapUsed`] = a.value('geo_sfu_agent_process_heap_used_bytes') / MiB;
        s[`a${i}HeapTotal`] = a.value('geo_sfu_agent_process_heap_total_bytes') / MiB;
        s[`a${i}External`] = a.value('geo_sfu_agent_process_external_memory_bytes') / MiB;
        s[`a${i}Handles`] = a.sum('geo_sfu_agent_process_active_resources');
        s[`a${i}Sockets`] = a.sum('geo_sfu_agent_process_active_resources', tcp);
        s[`a${i}Mediasoup`] = a.sum('geo_sfu_agent_sfu_objects');
      });
      samples.push(s);
    };
    const sampler = setInterval(() => void sample().catch(() => undefined), sampleEveryMs);

    const snapshots = new Map<string, string[]>();
    const snap = async () => {
      if (!snapshotDir) return;
      const targets = [
        { name: 'router', pid: embedded.router.pid!, url: embedded.routerUrl },
        { name: embedded.agents[0]!.nodeId, pid: embedded.agents[0]!.process.pid!, url: agentUrls[0]! },
      ];
      for (const t of targets) snapshots.set(t.name, [...(snapshots.get(t.name) ?? []), await heapSnapshot(t.pid, snapshotDir, t.url)]);
    };
    const snapshotTimers = snapshotDir ? [durationMs / 3, (2 * durationMs) / 3].map((at) => new Promise<void>((r) => setTimeout(() => void snap().then(r, r), at))) : [];

    let allocations = 0;
    let sessions = 0;
    let failures = 0;
    const failureReasons: Record<string, number> = {};
    const failed = (why: string) => {
      failureReasons[why] = (failureReasons[why] ?? 0) + 1;
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() - started < durationMs) {
          const i = next++;
          allocations++;
          if (await session(embedded.routerUrl, embedded.credentials.apiKey, `soak-${i % 40}`, `p${i % 400}`, failed)) sessions++;
          else failures++;
        }
      }),
    );
    await Promise.all(snapshotTimers);
    clearInterval(sampler);
    clearInterval(keySampler);
    keys = await countKeys(redis, prefix);
    await sample();
    await snap();

    const steady = samples.filter((s) => s.atS >= durationMs / 3000);
    const windows = new Map<number, Sample[]>();
    for (const s of steady) {
      const w = Math.floor((s.atS * 1000) / windowMs);
      windows.set(w, [...(windows.get(w) ?? []), s]);
    }
    const last = samples.at(-1)!;
    const trend = (key: string): Trend => {
      const lows = [...windows.values()].map((w) => ({ atS: w.reduce((a, s) => a + s.atS, 0) / w.length, value: Math.min(...w.map((s) => s[key]!)) }));
      return { perHour: slope(lows.map((l) => l.atS), lows.map((l) => l.value)) * 3600, end: last[key]! };
    };
    const agents = embedded.agents.map((a, i) => ({
      nodeId: a.nodeId,
      rss: trend(`a${i}Rss`),
      heap: trend(`a${i}Heap`),
      heapUsed: trend(`a${i}HeapUsed`),
      heapTotal: trend(`a${i}HeapTotal`),
      external: trend(`a${i}External`),
      handles: trend(`a${i}Handles`),
      sockets: trend(`a${i}Sockets`),
      mediasoupObjects: trend(`a${i}Mediasoup`),
    }));
    const worst = (pick: (a: (typeof agents)[number]) => Trend) => agents.map(pick).reduce((w, t) => (Math.abs(t.perHour) > Math.abs(w.perHour) ? t : w));
    const result: SoakResult = {
      durationS: Math.round((performance.now() - started) / 1000),
      allocations,
      sessions,
      failures,
      failureReasons,
      samples: samples.length,
      router: { rss: trend('routerRss'), heap: trend('routerHeap'), heapUsed: trend('routerHeapUsed'), heapTotal: trend('routerHeapTotal'), external: trend('routerExternal'), handles: trend('routerHandles'), sockets: trend('routerSockets'), redisKeys: trend('redisKeys'), redisNonces: trend('redisNonces') },
      agents,
      worstAgent: { rss: worst((a) => a.rss), heap: worst((a) => a.heap), handles: worst((a) => a.handles), sockets: worst((a) => a.sockets), mediasoupObjects: worst((a) => a.mediasoupObjects) },
    };
    if (snapshots.size > 0) {
      result.heapGrowth = {};
      for (const [name, files] of snapshots) {
        const series: Map<string, ConstructorCount>[] = files.map((f) => countByConstructor(readHeapSnapshot(f)));
        result.heapGrowth[name] = {
          totalMiB: series.map((s) => [...s.values()].reduce((a, c) => a + c.selfBytes, 0) / MiB),
          top: growth(series, 25).map((g) => ({ name: g.name, counts: g.counts, growthKiB: Math.round((g.selfBytes.at(-1)! - g.selfBytes[0]!) / 1024) })),
        };
      }
    }
    return result;
  } finally {
    await embedded.close();
    redis.disconnect();
    await redisKeys.cleanup().catch(() => undefined);
    await pgSchemas.cleanup().catch(() => undefined);
  }
}

/** One line per figure, for a run of this file alone. */
function report(r: SoakResult): string {
  const f = (t: Trend, unit = '') => `${t.perHour >= 0 ? '+' : ''}${t.perHour.toFixed(1)}${unit}/h (end ${t.end.toFixed(0)}${unit})`;
  const out = [
    `soak ${r.durationS} s: ${r.sessions} sessions, ${r.failures} of ${r.allocations} failed ${JSON.stringify(r.failureReasons)}, ${r.samples} samples`,
    `router: RSS ${f(r.router.rss, ' MiB')}, heap after GC ${f(r.router.heap, ' MiB')}, heapUsed ${f(r.router.heapUsed, ' MiB')}, heapTotal ${f(r.router.heapTotal, ' MiB')}, external ${f(r.router.external, ' MiB')}, handles ${f(r.router.handles)}, sockets ${f(r.router.sockets)}, Redis keys ${f(r.router.redisKeys)} and nonces ${f(r.router.redisNonces)}`,
    ...r.agents.map((a) => `${a.nodeId}: RSS ${f(a.rss, ' MiB')}, heap after GC ${f(a.heap, ' MiB')}, heapUsed ${f(a.heapUsed, ' MiB')}, heapTotal ${f(a.heapTotal, ' MiB')}, external ${f(a.external, ' MiB')}, handles ${f(a.handles)}, sockets ${f(a.sockets)}, mediasoup objects ${f(a.mediasoupObjects)}`),
  ];
  for (const [name, g] of Object.entries(r.heapGrowth ?? {})) {
    out.push(`heap of ${name} at the snapshots: ${g.totalMiB.map((m) => m.toFixed(1)).join(' → ')} MiB; grew most:`);
    for (const t of g.top) out.push(`  +${t.growthKiB} KiB ${t.name} (count ${t.counts.join(' → ')})`);
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const minutes = arg('--minutes');
  const dir = arg('--heap-snapshots');
  const result = await benchSoak({ quick: process.argv.includes('--quick'), ...(minutes ? { durationMs: Number(minutes) * 60_000 } : {}), ...(dir ? { heapSnapshotDir: dir } : {}), ...(process.argv.includes('--memory') ? { backend: 'memory' as const } : {}) });
  process.stdout.write(`${report(result)}\n`);
  process.exit(0);
}
