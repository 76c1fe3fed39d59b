import cliProgress from 'cli-progress';
import { Pool } from 'undici';
import { CONFIG_SPEC } from '../shared/config/spec.ts';
import { median } from '../shared/rtt.ts';
import type { RegionsResponse } from '../shared/schemas/index.ts';

/**
 * Client-side RTT probes: from this machine to each node's `probeUrl` (GET, answered 204 by the
 * region agent), over one keep-alive connection per node. The first request of each connection is
 * a warm-up that pays for TCP (and TLS) set-up and is not counted; then `samples` requests are
 * timed one after another. Every node of every region is probed at the same time; a region's
 * nodes share its deadline (`regionTimeoutMs`), and requests not answered by then count as lost.
 */

export { DEFAULT_REGION_TIMEOUT_MS, DEFAULT_SAMPLES } from './defaults.ts';
/** One request may take at most this long (the router's own probe timeout, GEO_SFU_PROBE_TIMEOUT_MS). */
export const SAMPLE_TIMEOUT_MS = CONFIG_SPEC.probeTimeoutMs.default;
/** Pause between two samples of one node, so they do not queue behind each other. */
export const SAMPLE_GAP_MS = 20;

export interface ProbeStats {
  /** Samples attempted (the warm-up excluded). */
  sent: number;
  received: number;
  minMs: number | null;
  medianMs: number | null;
  /** Nearest-rank 95th percentile. */
  p95Ms: number | null;
  /** Mean absolute difference between consecutive answered samples (RFC 3550's idea, unsmoothed). */
  jitterMs: number | null;
  /** Fraction of samples lost, 0..1. */
  loss: number;
}

export interface NodeProbe extends ProbeStats {
  nodeId: string;
  probeUrl: string;
  samplesMs: number[];
  /** Why samples were lost (first error), when any were. */
  error?: string;
}

export interface RegionProbe extends ProbeStats {
  region: string;
  /** The node whose figures the region's are: lowest median, else the first probed; null when nothing was probed. */
  nodeId: string | null;
  nodes: NodeProbe[];
  /** Set when the region had nothing to probe. */
  note?: string;
}

export interface ProbeReport {
  samples: number;
  regions: RegionProbe[];
  /** Region with the lowest median RTT; null when none answered. */
  recommended: string | null;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Statistics of a probe series in sending order; `null` is a lost sample. Pure. */
export function summarize(outcomes: ReadonlyArray<number | null>): ProbeStats {
  const answered = outcomes.filter((x): x is number => x !== null);
  const sorted = [...answered].sort((a, b) => a - b);
  const sent = outcomes.length;
  if (sorted.length === 0) return { sent, received: 0, minMs: null, medianMs: null, p95Ms: null, jitterMs: null, loss: sent === 0 ? 0 : 1 };
  let jitter: number | null = null;
  if (answered.length >= 2) {
    let sum = 0;
    for (let i = 1; i < answered.length; i++) sum += Math.abs(answered[i]! - answered[i - 1]!);
    jitter = round2(sum / (answered.length - 1));
  }
  return {
    sent,
    received: sorted.length,
    minMs: round2(sorted[0]!),
    medianMs: round2(median(sorted)),
    p95Ms: round2(sorted[Math.ceil(0.95 * sorted.length) - 1]!),
    jitterMs: jitter,
    loss: round2((sent - sorted.length) / sent),
  };
}

/** Lowest median wins; ties go to the first listed (the router's catalog order). Pure. */
export function recommend(regions: ReadonlyArray<{ region: string; medianMs: number | null }>): string | null {
  let best: { region: string; medianMs: number } | null = null;
  for (const r of regions) if (r.medianMs !== null && (best === null || r.medianMs < best.medianMs)) best = { region: r.region, medianMs: r.medianMs };
  return best?.region ?? null;
}

export interface ProbeOptions {
  samples: number;
  regionTimeoutMs: number;
  progress?: ProbeProgress;
}

export interface ProbeProgress {
  add(key: string, label: string, total: number): void;
  tick(key: string, ok: boolean): void;
  stop(): void;
}

async function probeNode(target: { nodeId: string; probeUrl: string }, deadline: number, opts: ProbeOptions): Promise<NodeProbe> {
  const url = new URL(target.probeUrl);
  const pool = new Pool(url.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 30_000 });
  const path = url.pathname + url.search;
  const outcomes: Array<number | null> = [];
  let error: string | undefined;
  const once = async (): Promise<number | null> => {
    const budget = Math.min(SAMPLE_TIMEOUT_MS, deadline - Date.now());
    if (budget <= 0) {
      error ??= 'region timeout';
      return null;
    }
    const started = performance.now();
    try {
      const res = await pool.request({ method: 'GET', path, signal: AbortSignal.timeout(budget) });
      await res.body.dump();
      if (res.statusCode >= 400) {
        error ??= `HTTP ${res.statusCode}`;
        return null;
      }
      return performance.now() - started;
    } catch (err) {
      const e = err as { name?: string; code?: string; message?: string; cause?: { message?: string } };
      error ??= e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${budget} ms` : (e.cause?.message ?? e.message ?? String(err));
      return null;
    }
  };
  try {
    await once(); // warm-up: connection set-up, not counted
    for (let i = 0; i < opts.samples; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, SAMPLE_GAP_MS));
      const rtt = await once();
      outcomes.push(rtt);
      opts.progress?.tick(target.nodeId, rtt !== null);
    }
  } finally {
    await pool.destroy().catch(() => undefined);
  }
  return {
    nodeId: target.nodeId,
    probeUrl: target.probeUrl,
    ...summarize(outcomes),
    samplesMs: outcomes.filter((x): x is number => x !== null).map(round2),
    ...(error !== undefined && outcomes.some((x) => x === null) ? { error } : {}),
  };
}

/** Probes every node that is not dead, of every region the router lists. */
export async function probeRegions(view: RegionsResponse, opts: ProbeOptions): Promise<ProbeReport> {
  const started = Date.now();
  const deadline = started + opts.regionTimeoutMs;
  const targets = view.regions.flatMap((r) => r.nodes.filter((n) => n.state !== 'dead').map((n) => ({ key: n.nodeId, label: `${r.id} ${n.nodeId}` })));
  const width = Math.max(0, ...targets.map((t) => t.label.length));
  for (const t of targets) opts.progress?.add(t.key, t.label.padEnd(width), opts.samples);
  try {
    const regions = await Promise.all(
      view.regions.map(async (r): Promise<RegionProbe> => {
        const live = r.nodes.filter((n) => n.state !== 'dead');
        const nodes = await Promise.all(live.map((n) => probeNode(n, deadline, opts)));
        const best = nodes.filter((n) => n.medianMs !== null).sort((a, b) => a.medianMs! - b.medianMs!)[0];
        const figures: ProbeStats = best ?? nodes[0] ?? summarize([]);
        const { sent, received, minMs, medianMs, p95Ms, jitterMs, loss } = figures;
        return {
          region: r.id,
          nodeId: best?.nodeId ?? nodes[0]?.nodeId ?? null,
          sent,
          received,
          minMs,
          medianMs,
          p95Ms,
          jitterMs,
          loss: live.length === 0 ? 1 : loss,
          nodes,
          ...(live.length === 0 ? { note: r.nodes.length === 0 ? 'no node registered' : 'every node is dead' } : {}),
        };
      }),
    );
    return { samples: opts.samples, regions, recommended: recommend(regions) };
  } finally {
    opts.progress?.stop();
  }
}

/** A progress bar per node on a TTY stream (cli-progress); nothing elsewhere. */
export function createProgress(stream: NodeJS.WriteStream, enabled: boolean): ProbeProgress | undefined {
  if (!enabled || !stream.isTTY) return undefined;
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: ' {label} [{bar}] {value}/{total} {lost}',
      barsize: 20,
      hideCursor: true,
      clearOnComplete: true,
      stopOnComplete: false,
      forceRedraw: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, { bar: cliProgress.SingleBar; lost: number }>();
  return {
    add(key, label, total) {
      bars.set(key, { bar: multi.create(total, 0, { label, lost: '' }), lost: 0 });
    },
    tick(key, ok) {
      const b = bars.get(key);
      if (!b) return;
      if (!ok) b.lost++;
      b.bar.increment(1, { lost: b.lost > 0 ? `${b.lost} lost` : '' });
    },
    stop() {
      multi.stop();
    },
  };
}
