import { writeFileSync } from 'node:fs';
import { Session, type Profiler } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { configWith } from '../shared/config/index.ts';
import type { NodeRegistration } from '../shared/schemas/index.ts';
import { RoomRouter, WorkerPool } from '../sfu/index.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, startRouter, testConfig } from '../test/utils/router-harness.ts';
import type { FakeNodesJob } from './fake-nodes-worker.ts';
import type { HonestCredentials } from './load-worker-body.ts';
import type { LoadJob } from './load-worker.ts';
import { startTsWorker } from './ts-worker-host.ts';
import type { LoadResult } from './load.ts';

/**
 * /allocate with Redis (and the PostgreSQL session log) against a reference route in the same
 * process that does one Redis round trip, measured by the same client in the same run, twice:
 * the bare path (no credential, no rate limit), and the honest path production runs — every call
 * with a credential (each participant its own grant, every tenth call an application server's API
 * key), the per-identity rate limit on and counted in Redis, so it is passed but never refused.
 * Targets: ≥ 50% of the reference's throughput; p99 < 10 ms at 1,000 req/s. The honest path's
 * closed-loop run is CPU-profiled (the router runs on this thread): the functions with the most
 * self time go to the result, the profile to bench/results/allocate-honest.cpuprofile.
 */
export interface AllocatePath {
  allocatePerSecond: number;
  ratio: number;
  p99AtRateMs: number;
  p50AtRateMs: number;
  /** Calls not answered 2xx (a 429 among them would mean the limiter refused a participant), and by status. */
  errors: number;
  failures: Record<string, number>;
}

export interface AllocateBenchResult extends AllocatePath {
  referencePerSecond: number;
  rate: number;
  honest: AllocatePath & { profileTop: ProfileEntry[]; profileByComponent: ProfileEntry[] };
}

export interface ProfileEntry {
  /** `function (file:line)`. */
  where: string;
  selfPct: number;
}

function runJob(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(new URL('./load-worker.ts', import.meta.url), job);
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

/** FakeNodes (bench/fake-nodes-worker.ts) in a worker thread, registered once this resolves. */
async function startFakeNodes(job: FakeNodesJob): Promise<{ close(): Promise<void> }> {
  const worker = startTsWorker(new URL('./fake-nodes-worker.ts', import.meta.url), job);
  const said = (what: string) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown) => {
        if (message !== what) return;
        worker.off('message', onMessage);
        resolve();
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  await said('ready');
  return {
    async close() {
      const closed = said('closed');
      worker.postMessage('close');
      await closed;
      await worker.terminate();
    },
  };
}

/** What an agent registers: the RTP capabilities of a room router with the SFU's codecs (one worker, closed after). */
async function sfuRtpCapabilities(): Promise<NonNullable<NodeRegistration['rtpCapabilities']>> {
  const pool = await WorkerPool.create({ numWorkers: 1 });
  const rooms = new RoomRouter({ pool });
  try {
    return (await rooms.rtpCapabilities()) as unknown as NonNullable<NodeRegistration['rtpCapabilities']>;
  } finally {
    rooms.close();
    pool.close();
  }
}

const GRANT_KEY = { kid: 'bench-app', secret: 'bench-grant-secret-0123456789abcdef0123' };

export async function benchAllocate(opts: { quick: boolean }): Promise<AllocateBenchResult> {
  const ns = runNamespace();
  const bare = testConfig('real', { maxParticipantsPerNode: 1_000_000, allocationTtlMs: 600_000 }, ns);
  // Production's path: a credential on every call, one rate limit per identity (each participant
  // calls once a run, far under 60 a minute), counted in Redis as router replicas share it.
  const honest = configWith({ ...bare, requireAuth: true, grantKeys: [GRANT_KEY], rateLimitPerMinute: 60 });
  const credentials: HonestCredentials = { grantKey: GRANT_KEY, grantAudience: honest.grantAudience, apiKey: honest.apiKey };
  // Same client settings as the router's own connection, so only the work differs.
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true });
  const refKey = `${ns.redisKeyPrefix}bench:reference`;
  await redis.set(refKey, '1');
  const router = await startRouter(bare, (app) => {
    app.get('/bench/reference', async () => ({ value: await redis.get(refKey) }));
  });
  const honestRouter = await startRouter(honest, undefined, { sharedLimits: true });
  // The nodes answer the router's pushes from a thread of their own, as agents do from their
  // processes, and register an SFU's RTP capabilities, as agents do: every answer carries them.
  const rtpCapabilities = await sfuRtpCapabilities();
  const nodes = await startFakeNodes({
    routerUrl: router.url,
    secret: bare.clusterSecret,
    heartbeatIntervalMs: 1_000,
    nodes: ['us-west', 'us-east', 'eu-west', 'apac'].map((region) => ({ nodeId: `${region}-1`, region, maxParticipants: 100_000, rtpCapabilities })),
  });
  await router.app.registry.refresh();
  await honestRouter.app.registry.refresh();

  const durationMs = opts.quick ? 1_500 : 5_000;
  const base = { concurrency: 16, ratePerSecond: 0, durationMs };
  const alloc = { ...base, origin: router.url, method: 'POST' as const, path: '/allocate', body: 'allocate' as const };
  const allocHonest = { ...alloc, origin: honestRouter.url, credentials };
  const ref = { ...base, origin: router.url, method: 'GET' as const, path: '/bench/reference', body: 'none' as const };
  let offset = 0;
  const next = (n: number) => (offset += n) - n;
  // Warm-up (JIT, connection pools, Redis script cache), then alternate to spread machine noise evenly.
  await runJob({ ...alloc, mode: 'closed', durationMs: 1_000, offset: next(1_000_000) });
  await runJob({ ...allocHonest, mode: 'closed', durationMs: 1_000, offset: next(1_000_000) });
  await runJob({ ...ref, mode: 'closed', durationMs: 1_000, offset: 0 });
  const runs = { ref: [] as LoadResult[], bare: [] as LoadResult[], honest: [] as LoadResult[] };
  let profile: Profiler.Profile | undefined;
  for (let round = 0; round < 2; round++) {
    runs.ref.push(await runJob({ ...ref, mode: 'closed', offset: 0 }));
    runs.bare.push(await runJob({ ...alloc, mode: 'closed', offset: next(1_000_000) }));
    // The second round is profiled (the profiler's own cost is in it: the first round is not).
    if (round === 1) {
      const profiled = await profiling(() => runJob({ ...allocHonest, mode: 'closed', offset: next(1_000_000) }));
      runs.honest.push(profiled.result);
      profile = profiled.profile;
    } else runs.honest.push(await runJob({ ...allocHonest, mode: 'closed', offset: next(1_000_000) }));
  }
  const rate = 1_000;
  const atRate = await runJob({ ...alloc, mode: 'open', ratePerSecond: rate, offset: next(1_000_000) });
  const honestAtRate = await runJob({ ...allocHonest, mode: 'open', ratePerSecond: rate, offset: next(1_000_000) });

  const perSecond = (r: LoadResult[]) => r.reduce((s, x) => s + x.perSecond, 0) / r.length;
  const errors = (r: LoadResult[]) => r.reduce((s, x) => s + x.errors, 0);
  const failures = (r: LoadResult[]) => {
    const all: Record<string, number> = {};
    for (const [status, n] of r.flatMap((x) => Object.entries(x.failures))) all[status] = (all[status] ?? 0) + n;
    return all;
  };
  const referencePerSecond = perSecond(runs.ref);
  writeFileSync(new URL('./results/allocate-honest.cpuprofile', import.meta.url), JSON.stringify(profile));

  await nodes.close();
  await honestRouter.close();
  await router.close();
  await redis.quit();
  await cleanupNamespaces();
  return {
    allocatePerSecond: perSecond(runs.bare),
    referencePerSecond,
    ratio: perSecond(runs.bare) / referencePerSecond,
    p99AtRateMs: atRate.p99Ms,
    p50AtRateMs: atRate.p50Ms,
    rate,
    errors: errors([...runs.bare, ...runs.ref, atRate]),
    failures: failures([...runs.bare, ...runs.ref, atRate]),
    honest: {
      allocatePerSecond: perSecond(runs.honest),
      ratio: perSecond(runs.honest) / referencePerSecond,
      p99AtRateMs: honestAtRate.p99Ms,
      p50AtRateMs: honestAtRate.p50Ms,
      errors: errors([...runs.honest, honestAtRate]),
      failures: failures([...runs.honest, honestAtRate]),
      profileTop: profile ? topSelfTime(profile, 8) : [],
      profileByComponent: profile ? timeByComponent(profile) : [],
    },
  };
}

/** A CPU profile of this thread while `run` goes on. */
async function profiling<T>(run: () => Promise<T>): Promise<{ result: T; profile: Profiler.Profile }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const result = await run();
    const { profile } = await session.post('Profiler.stop');
    return { result, profile };
  } finally {
    session.disconnect();
  }
}

/** The functions with the most self time (samples where they were on top), idle and GC left out of the total. */
export function topSelfTime(profile: Profiler.Profile, n: number): ProfileEntry[] {
  const hits = new Map<number, number>();
  for (const id of profile.samples ?? []) hits.set(id, (hits.get(id) ?? 0) + 1);
  const bySite = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)') continue;
    const count = hits.get(node.id) ?? 0;
    if (count === 0) continue;
    total += count;
    const file = url.replace(/^file:\/\/.*?\/(node_modules|router|shared|sfu|bench|test)\//, '$1/');
    const where = `${functionName || '(anonymous)'} (${file || 'native'}${url ? `:${lineNumber + 1}` : ''})`;
    bySite.set(where, (bySite.get(where) ?? 0) + count);
  }
  return [...bySite.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([where, count]) => ({ where, selfPct: Math.round((1000 * count) / Math.max(1, total)) / 10 }));
}

/**
 * Where the time went by component: each busy sample goes to the nearest frame of its stack that
 * is in a package (`node_modules/<name>`) or in one of our folders (`router/<folder>`), so a
 * native write ends up with the library that called it. Idle left out of the total.
 */
export function timeByComponent(profile: Profiler.Profile): ProfileEntry[] {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const component = (url: string): string | null => {
    const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (pkg) return pkg[1]!;
    const ours = /\/(router|shared|bench|test)\/([^/]+\/)?/.exec(url);
    if (ours) return `${ours[1]}/${ours[2] ?? ''}`.replace(/\/$/, '');
    return null;
  };
  const totals = new Map<string, number>();
  let total = 0;
  for (const id of profile.samples ?? []) {
    const top = byId.get(id);
    if (!top || top.callFrame.functionName === '(idle)' || top.callFrame.functionName === '(program)') continue;
    total++;
    // Node's own modules (node:net, node:http...) are passed through to whoever called them.
    let name: string | null = null;
    let sawNode = false;
    for (let at: number | undefined = id; at !== undefined && name === null; at = parent.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? '';
      sawNode ||= url.startsWith('node:');
      name = component(url);
    }
    const key = name ?? (top.callFrame.functionName === '(garbage collector)' ? '(garbage collector)' : sawNode ? 'node (no caller of ours)' : '(other native)');
    totals.set(key, (totals.get(key) ?? 0) + 1);
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([where, count]) => ({ where, selfPct: Math.round((1000 * count) / Math.max(1, total)) / 10 }));
}
