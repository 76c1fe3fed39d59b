import type { NodeAdminStatus, NodeView, RegionsResponse } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import { ms, pct, table } from '../render.ts';

/** `joined+pending/max`: NodeView.occupancy, the one definition the API and the dashboard use too. */
export const occupancyText = (n: NodeView): string => `${n.occupancy.joined}+${n.occupancy.pending}/${n.maxParticipants}`;

export const OCCUPANCY_LEGEND = 'participants = joined + pending (allocated, not joined yet) / max';

/** A node's state and operator flags: `alive`, `alive, cordoned`, `suspect, draining`. */
export const nodeFlags = (n: NodeView): string => [n.state, n.draining ? 'draining' : '', n.cordoned ? 'cordoned' : ''].filter(Boolean).join(', ');

export async function nodesCommand(ctx: Context, opts: { json?: boolean }): Promise<void> {
  const view = await (await ctx.client()).regions();
  const nodes = view.regions.flatMap((r) => r.nodes);
  ctx.out(opts.json ? JSON.stringify({ nodes }, null, 2) : renderNodes(view));
}

export function renderNodes(view: RegionsResponse): string {
  const rows = view.regions.flatMap((r) =>
    r.nodes.map((n) => [n.nodeId, r.id, nodeFlags(n), n.stress.toFixed(2), pct(n.load.cpu), pct(n.load.memory), occupancyText(n), n.load.rooms, ms(n.probe.medianMs), `${Math.round(n.lastHeartbeatAgoMs / 100) / 10} s`]),
  );
  if (rows.length === 0) return 'No node registered.';
  return [
    `Nodes (${OCCUPANCY_LEGEND}; RTT: router → node probe median)`,
    table(
      ['node', 'region', 'state', 'stress', 'cpu', 'mem', 'participants', 'rooms', 'RTT ms', 'heartbeat'],
      rows,
      ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  ].join('\n');
}

export type NodeAction = 'cordon' | 'uncordon' | 'drain';

const DONE: Record<NodeAction, string> = {
  cordon: 'cordoned: it takes no new rooms; its rooms and participants stay',
  uncordon: 'uncordoned: it takes new rooms again',
  drain: 'draining: it takes no new rooms, tells its clients to move within GEO_SFU_DRAIN_DEADLINE_MS, then deregisters and stops',
};

/** Forwarded by the router to the node's agent (signed); prints the agent's answer. */
export async function nodeActionCommand(ctx: Context, action: NodeAction, nodeId: string, opts: { json?: boolean }): Promise<void> {
  const client = await ctx.client();
  const status: NodeAdminStatus = action === 'drain' ? await client.drain(nodeId) : await client.cordon(nodeId, action === 'cordon');
  if (opts.json) {
    ctx.out(JSON.stringify({ action, node: status }, null, 2));
    return;
  }
  ctx.out(
    [
      `${status.nodeId} (${status.region}) ${DONE[action]}`,
      `  cordoned ${status.cordoned ? 'yes' : 'no'} · draining ${status.draining ? 'yes' : 'no'} · max participants ${status.maxParticipants}${status.capacityOverride === null ? '' : ' (operator override)'}`,
      `  the router's view (geo-sfu nodes) follows with the node's next heartbeat`,
    ].join('\n'),
  );
}
