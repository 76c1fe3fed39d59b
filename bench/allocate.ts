import { Redis } from 'ioredis';
import { FakeNodes } from '../test/utils/fake-nodes.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, startRouter, testConfig } from '../test/utils/router-harness.ts';
import type { LoadJob } from './load-worker.ts';
import { startTsWorker } from './ts-worker-host.ts';
import type { LoadResult } from './load.ts';

/**
 * /allocate with Redis (and the PostgreSQL session log) against a reference route in the same
 * process that does one Redis round trip, measured by the same client in the same run.
 * Targets: ≥ 50% of the reference's throughput; p99 < 10 ms at 1,000 req/s.
 */
export interface AllocateBenchResult {
  allocatePerSecond: number;
  referencePerSecond: number;
  ratio: number;
  p99AtRateMs: number;
  p50AtRateMs: number;
  rate: number;
  errors: number;
}

function runJob(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(new URL('./load-worker.ts', import.meta.url), job);
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

export async function benchAllocate(opts: { quick: boolean }): Promise<AllocateBenchResult> {
  const ns = runNamespace();
  const config = testConfig('real', { maxParticipantsPerNode: 1_000_000, allocationTtlMs: 600_000 }, ns);
  // Same client settings as the router's own connection, so only the work differs.
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true });
  const refKey = `${ns.redisKeyPrefix}bench:reference`;
  await redis.set(refKey, '1');
  const router = await startRouter(config, (app) => {
    app.get('/bench/reference', async () => ({ value: await redis.get(refKey) }));
  });
  const nodes = new FakeNodes(router.url, config.clusterSecret);
  await nodes.start(1_000);
  for (const region of ['us-west', 'us-east', 'eu-west', 'apac']) await nodes.add({ nodeId: `${region}-1`, region, maxParticipants: 100_000 });
  await router.app.registry.refresh();

  const seconds = opts.quick ? 2_000 : 5_000;
  const base = { origin: router.url, concurrency: 16, ratePerSecond: 0, durationMs: seconds };
  const alloc = { ...base, method: 'POST' as const, path: '/allocate', body: 'allocate' as const };
  const ref = { ...base, method: 'GET' as const, path: '/bench/reference', body: 'none' as const };
  let offset = 0;
  const next = (n: number) => (offset += n) - n;
  // Warm-up (JIT, connection pools, Redis script cache), then alternate to spread machine noise evenly.
  await runJob({ ...alloc, mode: 'closed', durationMs: 1_000, offset: next(1_000_000) });
  await runJob({ ...ref, mode: 'closed', durationMs: 1_000, offset: 0 });
  const allocRuns: LoadResult[] = [];
  const refRuns: LoadResult[] = [];
  for (let round = 0; round < 2; round++) {
    refRuns.push(await runJob({ ...ref, mode: 'closed', offset: 0 }));
    allocRuns.push(await runJob({ ...alloc, mode: 'closed', offset: next(1_000_000) }));
  }
  const rate = 1_000;
  const atRate = await runJob({ ...alloc, mode: 'open', ratePerSecond: rate, offset: next(1_000_000) });

  const mean = (runs: LoadResult[]) => runs.reduce((s, r) => s + r.perSecond, 0) / runs.length;
  const allocatePerSecond = mean(allocRuns);
  const referencePerSecond = mean(refRuns);
  const errors = [...allocRuns, ...refRuns, atRate].reduce((s, r) => s + r.errors, 0);

  await nodes.close();
  await router.close();
  await redis.quit();
  await cleanupNamespaces();
  return {
    allocatePerSecond,
    referencePerSecond,
    ratio: allocatePerSecond / referencePerSecond,
    p99AtRateMs: atRate.p99Ms,
    p50AtRateMs: atRate.p50Ms,
    rate,
    errors,
  };
}
