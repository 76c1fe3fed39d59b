import type { RoomView } from '../../shared/schemas/index.ts';
import type { Context } from '../context.ts';
import { DASH, table } from '../render.ts';

/** GET /rooms/:id for this many rooms at once (`rooms list`). */
const ROOM_READS_IN_FLIGHT = 8;

export async function roomShowCommand(ctx: Context, roomId: string, opts: { json?: boolean }): Promise<void> {
  const room = await (await ctx.client()).room(roomId);
  ctx.out(opts.json ? JSON.stringify(room, null, 2) : renderRoom(room));
}

/** One line of `rooms list`. */
export interface RoomSummary {
  roomId: string;
  homeRegion: string;
  participants: number;
  joined: number;
  /** Edge regions, home first. */
  regions: string[];
}

export function roomSummary(room: RoomView): RoomSummary {
  return {
    roomId: room.roomId,
    homeRegion: room.homeRegion,
    participants: room.participants.length,
    joined: room.participants.filter((p) => p.status === 'joined').length,
    regions: [...new Set([room.homeRegion, ...room.participants.map((p) => p.region)])],
  };
}

export async function roomListCommand(ctx: Context, opts: { json?: boolean }): Promise<void> {
  const client = await ctx.client();
  const ids = (await client.roomIds()).sort();
  const rooms: RoomSummary[] = [];
  for (let i = 0; i < ids.length; i += ROOM_READS_IN_FLIGHT) {
    const views = await Promise.all(
      ids.slice(i, i + ROOM_READS_IN_FLIGHT).map((id) =>
        client.room(id).catch((err: unknown) => {
          // A room that emptied between the list and its read is gone, not an error.
          if ((err as { details?: { status?: number } }).details?.status === 404) return null;
          throw err;
        }),
      ),
    );
    for (const view of views) if (view) rooms.push(roomSummary(view));
  }
  if (opts.json) {
    ctx.out(JSON.stringify({ rooms }, null, 2));
    return;
  }
  if (rooms.length === 0) {
    ctx.out('No rooms.');
    return;
  }
  ctx.out(
    table(
      ['room', 'home', 'participants', 'joined', 'regions'],
      rooms.map((r) => [r.roomId, r.homeRegion, r.participants, r.joined, r.regions.join(', ')]),
      ['left', 'left', 'right', 'right', 'left'],
    ),
  );
}

export async function roomKickCommand(ctx: Context, roomId: string, participantId: string, opts: { json?: boolean }): Promise<void> {
  await (await ctx.client()).kick(roomId, participantId);
  ctx.out(
    opts.json
      ? JSON.stringify({ removed: { roomId, participantId } }, null, 2)
      : `Removed ${participantId} from room ${roomId}: its seat is released, its sessions closed, and its grants issued until now refused`,
  );
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
