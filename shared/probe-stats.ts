import { median } from './rtt.ts';

/**
 * Client-side RTT probing, the part the SDK (`fetch`, browsers and Node) and the CLI (undici, one
 * keep-alive connection per node) share: the series of one node — a warm-up request that pays for
 * connection set-up and is not counted, then `samples` timed requests one after another — and the
 * statistics of a series, of a region (its best node) and the recommendation. No I/O of its own:
 * the caller's `request` does the HTTP.
 */

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

export const round2 = (x: number) => Math.round(x * 100) / 100;

/** Statistics of a probe series in sending order; `null` is a lost sample. */
export function summarizeSamples(outcomes: ReadonlyArray<number | null>): ProbeStats {
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

/** Lowest median wins; ties go to the first listed (the router's catalog order). */
export function recommend(regions: ReadonlyArray<{ region: string; medianMs: number | null }>): string | null {
  let best: { region: string; medianMs: number } | null = null;
  for (const r of regions) if (r.medianMs !== null && (best === null || r.medianMs < best.medianMs)) best = { region: r.region, medianMs: r.medianMs };
  return best?.region ?? null;
}

/** A region's figures are its best node's (lowest median), else its first probed node's; `nodeId` null when nothing was probed. */
export function regionFigures<N extends ProbeStats & { nodeId: string }>(nodes: readonly N[], probedAny: boolean): ProbeStats & { nodeId: string | null } {
  const best = nodes.filter((n) => n.medianMs !== null).sort((a, b) => a.medianMs! - b.medianMs!)[0];
  const { sent, received, minMs, medianMs, p95Ms, jitterMs, loss } = best ?? nodes[0] ?? summarizeSamples([]);
  return { nodeId: best?.nodeId ?? nodes[0]?.nodeId ?? null, sent, received, minMs, medianMs, p95Ms, jitterMs, loss: probedAny ? loss : 1 };
}

export interface ProbeSeriesOptions {
  samples: number;
  /** Pause between two samples, so they do not queue behind each other. */
  gapMs: number;
  /** One GET of the probe URL, body consumed, within `signal`; resolves with the HTTP status. */
  request: (signal: AbortSignal) => Promise<number>;
  /** Each request may take at most this long, and all must be done by `deadline` (epoch ms). */
  sampleTimeoutMs: number;
  deadline: number;
  onSample?: (rttMs: number | null) => void;
}

/** One node's series: warm-up, then `samples` timed requests; its statistics, answered samples and first loss reason. */
export async function probeSeries(o: ProbeSeriesOptions): Promise<ProbeStats & { samplesMs: number[]; error?: string }> {
  const outcomes: Array<number | null> = [];
  let error: string | undefined;
  const lost = (why: string) => void (error ??= why);
  const once = async (): Promise<number | null> => {
    const budget = Math.min(o.sampleTimeoutMs, o.deadline - Date.now());
    if (budget <= 0) {
      lost('region timeout');
      return null;
    }
    const started = performance.now();
    try {
      const status = await o.request(AbortSignal.timeout(budget));
      if (status < 400) return performance.now() - started;
      lost(`HTTP ${status}`);
    } catch (err) {
      lost(probeFailure(err, budget));
    }
    return null;
  };
  await once(); // warm-up: connection set-up, not counted
  for (let i = 0; i < o.samples; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, o.gapMs));
    const rtt = await once();
    outcomes.push(rtt);
    o.onSample?.(rtt);
  }
  return {
    ...summarizeSamples(outcomes),
    samplesMs: outcomes.filter((x): x is number => x !== null).map(round2),
    ...(error !== undefined && outcomes.some((x) => x === null) ? { error } : {}),
  };
}

/** Why a probe request failed, in a few words. */
function probeFailure(err: unknown, budgetMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { message?: string } };
  return e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${budgetMs} ms` : (e.cause?.message ?? e.message ?? String(err));
}
