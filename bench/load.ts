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
  /** Extra headers of request `i` (a credential). */
  headers?: (i: number) => Record<string, string>;
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** Failed calls by status code (`error` when the call itself failed). */
  failures: Record<string, number>;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** The call's status (2xx/3xx is success). */
async function send(pool: Pool, spec: RequestSpec, i: number): Promise<number> {
  const res = await pool.request({
    method: spec.method,
    path: spec.path,
    headers: { ...(spec.body ? { 'content-type': 'application/json' } : {}), ...spec.headers?.(i) },
    body: spec.body?.(i),
  });
  await res.body.dump();
  return res.statusCode;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(latencies: number[], failures: Record<string, number>, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors: Object.values(failures).reduce((a, b) => a + b, 0),
    failures,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export async function closedLoop(origin: string, spec: RequestSpec, concurrency: number, durationMs: number, offset = 0): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let next = offset;
  const started = performance.now();
  const end = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const status = await send(pool, spec, next++).catch(() => 'error' as const);
        if (typeof status === 'number' && status < 400) latencies.push(performance.now() - t);
        else failures[status] = (failures[status] ?? 0) + 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return summarize(latencies, failures, seconds);
}

export async function openLoop(origin: string, spec: RequestSpec, ratePerSecond: number, durationMs: number, offset = 0): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: 64, pipelining: 1 });
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
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
        (status) => {
          if (status < 400) latencies.push(performance.now() - due);
          else failures[status] = (failures[status] ?? 0) + 1;
        },
        () => {
          failures.error = (failures.error ?? 0) + 1;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return summarize(latencies, failures, seconds);
}
