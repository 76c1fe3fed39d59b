import type { RegionsResponse } from '../../shared/schemas/index.ts';
import { ms, pct, table } from '../render.ts';
import { createProgress, probeRegions, type ProbeReport } from '../probe.ts';
import type { Context } from '../context.ts';

export interface ProbeCommandOptions {
  samples: number;
  timeout: number;
  progress: boolean;
  json?: boolean;
}

/** GET /regions, then probe every live node from here. Shared with `allocate` (no --latency). */
export async function measure(ctx: Context, opts: ProbeCommandOptions): Promise<{ view: RegionsResponse; report: ProbeReport }> {
  const view = await (await ctx.client()).regions();
  const report = await probeRegions(view, {
    samples: opts.samples,
    regionTimeoutMs: opts.timeout,
    progress: createProgress(process.stderr, opts.progress),
  });
  return { view, report };
}

export function renderProbe(report: ProbeReport): string {
  const rows = report.regions.map((r) => [
    r.region === report.recommended ? `${r.region} *` : r.region,
    r.nodeId ?? r.note ?? 'no answer',
    `${r.received}/${r.sent}`,
    ms(r.minMs),
    ms(r.medianMs),
    ms(r.p95Ms),
    ms(r.jitterMs),
    pct(r.loss),
  ]);
  const lines = [
    table(['region', 'node', 'answered', 'min ms', 'median ms', 'p95 ms', 'jitter ms', 'loss'], rows, ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right']),
  ];
  const best = report.regions.find((r) => r.region === report.recommended);
  lines.push(best ? `recommended: ${best.region} (lowest median RTT, ${ms(best.medianMs)} ms)` : 'recommended: none (no region answered)');
  for (const r of report.regions) for (const n of r.nodes) if (n.error) lines.push(`  ${n.nodeId}: ${n.loss > 0 ? `${pct(n.loss)} lost` : ''} (${n.error})`);
  return lines.join('\n');
}

export async function probeCommand(ctx: Context, opts: ProbeCommandOptions): Promise<void> {
  const { report } = await measure(ctx, opts);
  ctx.out(opts.json ? JSON.stringify({ router: ctx.routerUrl, ...report }, null, 2) : renderProbe(report));
  if (report.recommended === null) ctx.fail('NO_REGION_ANSWERED', 'no region answered a probe');
}
