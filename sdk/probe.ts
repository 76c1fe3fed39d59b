import { probeSeries, type ProbeStats, recommend, regionFigures, summarizeSamples } from '../shared/probe-stats.ts';
import type { RegionsResponse } from '../shared/schemas/views.ts';

/**
 * Client-side RTT probes with `fetch` (browsers and Node): GET each live node's `probeUrl` (the
 * agent answers 204, no-store, readable cross-origin). Per node, the first request pays for the
 * connection set-up and is discarded; then `samples` requests are timed one after another. All
 * nodes are probed in parallel; a region's nodes share one deadline (`timeoutMs`) and samples not
 * answered by then count as lost. A region's figures are its best node's (lowest median). The
 * series and the statistics are the CLI's too (shared/probe-stats.ts).
 */

export { summarizeSamples };
/** Statistics of one probe series (see shared/probe-stats.ts). */
export type SampleStats = ProbeStats;

export interface ProbeRegionsOptions {
  /** Timed samples per node (the warm-up request excluded). Default 5. */
  samples?: number;
  /** Deadline per region for all its samples, ms. Default 3000. */
  timeoutMs?: number;
  /** One request may take at most this long, ms. Default 1000. */
  sampleTimeoutMs?: number;
  /** Pause between two samples of a node, ms. Default 20. */
  gapMs?: number;
}

export interface NodeProbeResult extends SampleStats {
  nodeId: string;
  probeUrl: string;
  samplesMs: number[];
  error?: string;
}

export interface RegionProbeResult extends SampleStats {
  region: string;
  /** The node the region's figures come from; null when nothing was probed. */
  nodeId: string | null;
  nodes: NodeProbeResult[];
}

export interface ProbeResult {
  regions: RegionProbeResult[];
  /** Median RTT by region, for `allocate({ latencies })`; regions that never answered are left out. */
  latencies: Record<string, number>;
  /** Region with the lowest median; null when none answered. */
  recommended: string | null;
  measuredAt: number;
}

async function probeNode(
  fetchImpl: typeof fetch,
  target: { nodeId: string; probeUrl: string },
  deadline: number,
  o: Required<ProbeRegionsOptions>,
): Promise<NodeProbeResult> {
  const series = await probeSeries({
    samples: o.samples,
    gapMs: o.gapMs,
    sampleTimeoutMs: o.sampleTimeoutMs,
    deadline,
    request: async (signal) => {
      const res = await fetchImpl(target.probeUrl, { method: 'GET', cache: 'no-store', signal });
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    },
  });
  return { nodeId: target.nodeId, probeUrl: target.probeUrl, ...series };
}

/** Probes every live node of every region in `view` (GET /regions). */
export async function probeRegionsView(view: RegionsResponse, options: ProbeRegionsOptions = {}, fetchImpl: typeof fetch = globalThis.fetch): Promise<ProbeResult> {
  const o: Required<ProbeRegionsOptions> = {
    samples: options.samples ?? 5,
    timeoutMs: options.timeoutMs ?? 3_000,
    sampleTimeoutMs: options.sampleTimeoutMs ?? 1_000,
    gapMs: options.gapMs ?? 20,
  };
  const deadline = Date.now() + o.timeoutMs;
  const regions = await Promise.all(
    view.regions.map(async (r): Promise<RegionProbeResult> => {
      const live = r.nodes.filter((n) => n.state !== 'dead');
      const nodes = await Promise.all(live.map((n) => probeNode(fetchImpl, n, deadline, o)));
      return { region: r.id, ...regionFigures(nodes, live.length > 0), nodes };
    }),
  );
  const latencies: Record<string, number> = {};
  for (const r of regions) if (r.medianMs !== null) latencies[r.region] = r.medianMs;
  return { regions, latencies, recommended: recommend(regions), measuredAt: Date.now() };
}
