import type { RegionsResponse } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import { DASH, ms, pct, table } from '../render.ts';
import { nodeFlags, OCCUPANCY_LEGEND, occupancyText } from './nodes.ts';

export async function regionsCommand(ctx: Context, opts: { json?: boolean }): Promise<void> {
  const view = await (await ctx.client()).regions();
  ctx.out(opts.json ? JSON.stringify(view, null, 2) : renderRegions(view));
}

export function renderRegions(view: RegionsResponse): string {
  const rows: Array<Array<string | number>> = [];
  for (const r of view.regions) {
    if (r.nodes.length === 0) rows.push([r.id, r.healthy ? 'yes' : 'no', DASH, 'no nodes', '', '', '', '', '', '', '', '']);
    for (const n of r.nodes) {
      rows.push([
        r.id,
        r.healthy ? 'yes' : 'no',
        n.nodeId,
        nodeFlags(n),
        n.stress.toFixed(2),
        pct(n.load.cpu),
        pct(n.load.memory),
        occupancyText(n),
        n.load.rooms,
        ms(n.probe.medianMs),
        ms(n.probe.jitterMs),
        pct(n.probe.loss),
      ]);
    }
  }
  const ids = view.regions.map((r) => r.id);
  const matrix = ids.map((from) => [from, ...ids.map((to) => (from === to ? DASH : ms(view.interRegionRttMs[from]?.[to] ?? null)))]);
  return [
    `Regions (${OCCUPANCY_LEGEND}; RTT, jitter, loss: router → node probes)`,
    table(
      ['region', 'healthy', 'node', 'state', 'stress', 'cpu', 'mem', 'participants', 'rooms', 'RTT ms', 'jitter ms', 'loss'],
      rows,
      ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    'Inter-region RTT, ms (smoothed, as the agents measure it; row = from, column = to)',
    table(['from \\ to', ...ids], matrix, ['left', ...ids.map(() => 'right' as const)]),
  ].join('\n');
}
