import type { RoomView } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import { DASH, table } from '../render.ts';

export async function roomsCommand(ctx: Context, roomId: string, opts: { json?: boolean }): Promise<void> {
  const room = await (await ctx.client()).room(roomId);
  ctx.out(opts.json ? JSON.stringify(room, null, 2) : renderRoom(room));
}

export function renderRoom(room: RoomView): string {
  const byRegion = new Map<string, RoomView['participants']>();
  // Home first, then the cascade's order, then anything else.
  for (const region of [room.homeRegion, ...room.cascade.regions]) if (!byRegion.has(region)) byRegion.set(region, []);
  for (const p of room.participants) {
    if (!byRegion.has(p.region)) byRegion.set(p.region, []);
    byRegion.get(p.region)!.push(p);
  }
  const rows = [...byRegion].map(([region, ps]) => [
    region === room.homeRegion ? `${region} (home)` : region,
    [...new Set(ps.map((p) => p.nodeId))].join(', ') || DASH,
    ps.length,
    ps.map((p) => `${p.participantId}${p.status === 'allocated' ? ' (allocated)' : ''}`).join(', ') || DASH,
  ]);
  const links = room.cascade.links.map((l) => [`${l.fromRegion} ${l.from}`, `${l.toRegion} ${l.to}`]);
  return [
    `Room ${room.roomId}: home ${room.homeRegion} on ${room.homeNodeId} (epoch ${room.epoch}), ${room.participants.length} participant(s)`,
    policyLine(room.policy),
    '',
    'Participants by region',
    table(['region', 'node', 'count', 'participants'], rows, ['left', 'left', 'right', 'left']),
    '',
    links.length > 0 ? `Cascade links (${room.cascade.regions.join(' ↔ ')})` : 'Cascade links: none (one region)',
    ...(links.length > 0 ? [table(['from', 'to'], links)] : []),
  ].join('\n');
}

/** The room's region policy in a line (docs/region-policy.md). */
function policyLine(policy: RoomView['policy']): string {
  if (!policy) return 'Region policy: none';
  const preferred = policy.preferredRegions?.length ? `; preferred ${policy.preferredRegions.join(', ')}` : '';
  return `Region policy: media only in ${policy.allowedRegions.join(', ')}${preferred}; P2P fallback ${policy.allowP2p ? 'allowed' : 'not allowed'}`;
}
