import type { RoomView } from '../shared/schemas/index.ts';
import type { RoomState } from './state/types.ts';

/** The room as GET /rooms/:roomId shows it: home, participants by edge, and the cascade mesh. */
export function roomView(state: RoomState, regionOrder: readonly string[]): RoomView {
  const nodeRegion = new Map<string, string>([[state.room.homeNodeId, state.room.homeRegion]]);
  for (const p of state.participants) nodeRegion.set(p.nodeId, p.region);
  const inUse = new Set(state.participants.map((p) => p.nodeId));
  const nodes = [...nodeRegion.keys()].filter((n) => inUse.has(n));
  const regions = [...new Set(nodes.map((n) => nodeRegion.get(n)!))].sort(
    (a, b) => rank(a, state.room.homeRegion, regionOrder) - rank(b, state.room.homeRegion, regionOrder),
  );
  const links: RoomView['cascade']['links'] = [];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const from = nodes[i]!;
      const to = nodes[j]!;
      links.push({ from, to, fromRegion: nodeRegion.get(from)!, toRegion: nodeRegion.get(to)! });
    }
  }
  return {
    roomId: state.room.roomId,
    homeRegion: state.room.homeRegion,
    homeNodeId: state.room.homeNodeId,
    epoch: state.room.epoch,
    ...(state.room.policy ? { policy: state.room.policy } : {}),
    participants: state.participants.map((p) => ({
      participantId: p.participantId,
      region: p.region,
      nodeId: p.nodeId,
      status: p.status,
      allocationId: p.allocationId,
    })),
    cascade: { regions, nodes, links },
  };
}

function rank(region: string, home: string, order: readonly string[]): number {
  return region === home ? -1 : order.indexOf(region);
}
