import { Pool } from 'undici';

/**
 * Load generation for the benchmarks: closed-loop throughput (N requests in flight for a fixed
 * time) and open-loop latency at a fixed request rate (requests start on schedule whether or not
 * earlier ones finished, so queueing shows in the percentiles).
 */
export interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  body?: (i: number) => string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function send(pool: Pool, spec: RequestSpec, i: number): Promise<boolean> {
  const res = await pool.request({
    method: spec.method,
    path: spec.path,
    headers: spec.body ? { 'content-type': 'application/json' } : {},
    body: spec.body?.(i),
  });
  await res.body.dump();
  return res.statusCode < 400;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(latencies: number[], errors: number, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export async function closedLoop(origin: string, spec: RequestSpec, concurrency: number, durationMs: number, offset = 0): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let next = offset;
  const started = performance.now();
  const end = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const ok = await send(pool, spec, next++).catch(() => false);
        if (ok) latencies.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return summarize(latencies, errors, seconds);
}

export async function openLoop(origin: string, spec: RequestSpec, ratePerSecond: number, durationMs: number, offset = 0): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: 64, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.round((ratePerSecond * durationMs) / 1000);
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / ratePerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // Latency counts from the scheduled start, so a stalled server cannot hide its backlog.
    inFlight.push(
      send(pool, spec, offset + i).then(
        (ok) => {
          if (ok) latencies.push(performance.now() - due);
          else errors++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return summarize(latencies, errors, seconds);
}
