import type { QualityAlert, ScalingView } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import { DASH, ms, pct, table } from '../render.ts';

export async function alertsCommand(ctx: Context, opts: { json?: boolean }): Promise<void> {
  const alerts = await (await ctx.client()).alerts();
  ctx.out(opts.json ? JSON.stringify({ alerts }, null, 2) : renderAlerts(alerts));
}

export function renderAlerts(alerts: QualityAlert[]): string {
  if (alerts.length === 0) return 'No active quality alerts.';
  const value = (a: QualityAlert, x: number) => (a.kind === 'packet_loss' ? pct(x) : `${ms(x)} ms`);
  // A cascade link's alert: the media `node` receives from the peer node, in place of a room and participant.
  const subject = (a: QualityAlert) => (a.scope === 'cascade_link' ? [`link from ${a.peerNodeId}`, a.peerRegion] : [a.roomId, a.participantId]);
  return [
    `Active quality alerts (${alerts.length})`,
    table(
      ['room', 'participant', 'region', 'node', 'kind', 'value', 'threshold', 'since'],
      alerts.map((a) => [...subject(a), a.region, a.nodeId, a.kind, value(a, a.value), value(a, a.threshold), a.since]),
      ['left', 'left', 'left', 'left', 'left', 'right', 'right', 'left'],
    ),
  ].join('\n');
}

export async function scalingCommand(ctx: Context, opts: { json?: boolean }): Promise<void> {
  const view = await (await ctx.client()).scaling();
  ctx.out(opts.json ? JSON.stringify(view, null, 2) : renderScaling(view));
}

const seconds = (msValue: number) => (msValue > 0 ? `${Math.round(msValue / 1000)} s` : DASH);

export function renderScaling(view: ScalingView): string {
  const regions = table(
    ['region', 'nodes', 'mean stress', 'overflows', 'client RTT ms', 'high for', 'low for', 'far for', 'cooling down'],
    view.regions.map((r) => [
      r.region,
      r.nodes,
      r.meanStress === null ? DASH : r.meanStress.toFixed(2),
      r.overflowsInWindow,
      ms(r.medianClientRttMs),
      seconds(r.highForMs),
      seconds(r.lowForMs),
      seconds(r.farForMs),
      seconds(r.coolingDownForMs),
    ]),
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
  const decisions =
    view.decisions.length === 0
      ? ['Recent decisions: none']
      : ['Recent decisions', table(['at', 'region', 'action', 'reason'], view.decisions.map((d) => [d.at, d.region, d.action, d.reason]))];
  return ['Scaling by region (client RTT: median of recent allocations)', regions, '', ...decisions].join('\n');
}
