import { median } from '../shared/rtt.ts';
import type { RegionsResponse } from '../shared/schemas/views.ts';

/**
 * Client-side RTT probes with `fetch` (browsers and Node): GET each live node's `probeUrl` (the
 * agent answers 204, no-store, readable cross-origin). Per node, the first request pays for the
 * connection set-up and is discarded; then `samples` requests are timed one after another. All
 * nodes are probed in parallel; a region's nodes share one deadline (`timeoutMs`) and samples not
 * answered by then count as lost. A region's figures are its best node's (lowest median).
 *
 * Same method as the CLI's `geo-sfu probe` (cli/probe.ts, undici); the pure statistics could move
 * to shared/ so both use one implementation.
 */

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

export interface SampleStats {
  /** Samples attempted (the warm-up excluded). */
  sent: number;
  received: number;
  minMs: number | null;
  medianMs: number | null;
  /** Mean absolute difference between consecutive answered samples. */
  jitterMs: number | null;
  /** Fraction lost, 0..1. */
  loss: number;
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

const round2 = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statistics of a probe series in sending order; `null` is a lost sample. Pure. */
export function summarizeSamples(outcomes: ReadonlyArray<number | null>): SampleStats {
  const answered = outcomes.filter((x): x is number => x !== null);
  const sorted = [...answered].sort((a, b) => a - b);
  const sent = outcomes.length;
  if (sorted.length === 0) return { sent, received: 0, minMs: null, medianMs: null, jitterMs: null, loss: sent === 0 ? 0 : 1 };
  let jitter: number | null = null;
  if (answered.length >= 2) {
    let sum = 0;
    for (let i = 1; i < answered.length; i++) sum += Math.abs(answered[i]! - answered[i - 1]!);
    jitter = round2(sum / (answered.length - 1));
  }
  return { sent, received: sorted.length, minMs: round2(sorted[0]!), medianMs: round2(median(sorted)), jitterMs: jitter, loss: round2((sent - sorted.length) / sent) };
}

async function probeNode(
  fetchImpl: typeof fetch,
  target: { nodeId: string; probeUrl: string },
  deadline: number,
  o: Required<ProbeRegionsOptions>,
): Promise<NodeProbeResult> {
  const outcomes: Array<number | null> = [];
  let error: string | undefined;
  const once = async (): Promise<number | null> => {
    const budget = Math.min(o.sampleTimeoutMs, deadline - Date.now());
    if (budget <= 0) {
      error ??= 'region timeout';
      return null;
    }
    const started = performance.now();
    try {
      const res = await fetchImpl(target.probeUrl, { method: 'GET', cache: 'no-store', signal: AbortSignal.timeout(budget) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 400) {
        error ??= `HTTP ${res.status}`;
        return null;
      }
      return performance.now() - started;
    } catch (err) {
      const e = err as { name?: string; message?: string; cause?: { message?: string } };
      error ??= e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${budget} ms` : (e.cause?.message ?? e.message ?? String(err));
      return null;
    }
  };
  await once(); // warm-up: connection set-up, not counted
  for (let i = 0; i < o.samples; i++) {
    if (i > 0) await sleep(o.gapMs);
    outcomes.push(await once());
  }
  return {
    nodeId: target.nodeId,
    probeUrl: target.probeUrl,
    ...summarizeSamples(outcomes),
    samplesMs: outcomes.filter((x): x is number => x !== null).map(round2),
    ...(error !== undefined && outcomes.some((x) => x === null) ? { error } : {}),
  };
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
      const best = nodes.filter((n) => n.medianMs !== null).sort((a, b) => a.medianMs! - b.medianMs!)[0];
      const { sent, received, minMs, medianMs, jitterMs, loss } = best ?? nodes[0] ?? summarizeSamples([]);
      return { region: r.id, nodeId: best?.nodeId ?? nodes[0]?.nodeId ?? null, sent, received, minMs, medianMs, jitterMs, loss: live.length === 0 ? 1 : loss, nodes };
    }),
  );
  const latencies: Record<string, number> = {};
  let recommended: { region: string; medianMs: number } | null = null;
  for (const r of regions) {
    if (r.medianMs === null) continue;
    latencies[r.region] = r.medianMs;
    if (recommended === null || r.medianMs < recommended.medianMs) recommended = { region: r.region, medianMs: r.medianMs };
  }
  return { regions, latencies, recommended: recommended?.region ?? null, measuredAt: Date.now() };
}
