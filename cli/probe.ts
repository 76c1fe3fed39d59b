import cliProgress from 'cli-progress';
import { Pool } from 'undici';
import { CONFIG_SPEC } from '../shared/config/spec.ts';
import { probeSeries, type ProbeStats, recommend, regionFigures } from '../shared/probe-stats.ts';
import type { RegionsResponse } from '../shared/schemas/index.ts';

/**
 * Client-side RTT probes: from this machine to each node's `probeUrl` (GET, answered 204 by the
 * region agent), over one keep-alive connection per node. The first request of each connection is
 * a warm-up that pays for TCP (and TLS) set-up and is not counted; then `samples` requests are
 * timed one after another. Every node of every region is probed at the same time; a region's
 * nodes share its deadline (`regionTimeoutMs`), and requests not answered by then count as lost.
 * The series and the statistics are the SDK's too (shared/probe-stats.ts).
 */

/** One request may take at most this long (the router's own probe timeout, GEO_SFU_PROBE_TIMEOUT_MS). */
export const SAMPLE_TIMEOUT_MS = CONFIG_SPEC.probeTimeoutMs.default;
/** Pause between two samples of one node, so they do not queue behind each other. */
export const SAMPLE_GAP_MS = 20;

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
  try {
    const series = await probeSeries({
      samples: opts.samples,
      gapMs: SAMPLE_GAP_MS,
      sampleTimeoutMs: SAMPLE_TIMEOUT_MS,
      deadline,
      onSample: (rtt) => opts.progress?.tick(target.nodeId, rtt !== null),
      request: async (signal) => {
        const res = await pool.request({ method: 'GET', path, signal });
        await res.body.dump();
        return res.statusCode;
      },
    });
    return { nodeId: target.nodeId, probeUrl: target.probeUrl, ...series };
  } finally {
    await pool.destroy().catch(() => undefined);
  }
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
        return {
          region: r.id,
          ...regionFigures(nodes, live.length > 0),
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
