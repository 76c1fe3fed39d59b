import { Type, type Static } from '@sinclair/typebox';
import { NodeLoad, NodeState } from './registry.ts';
import { RttStats } from './common.ts';
import { RegionPolicy } from './policy.ts';

/**
 * A node's participants, one definition for the API, the CLI and the dashboard: `joined` are
 * connected to the node (its agent's count), `pending` hold an allocation there and have not joined
 * yet, `total` = joined + pending is what placement counts against `maxParticipants`.
 */
export const NodeOccupancy = Type.Object({
  joined: Type.Integer({ minimum: 0 }),
  pending: Type.Integer({ minimum: 0 }),
  total: Type.Integer({ minimum: 0 }),
});
export type NodeOccupancy = Static<typeof NodeOccupancy>;

/**
 * `reserved`: the router's count of allocations on the node, which includes the joined ones;
 * `joined`: the agent's count of connected participants (it may run ahead of the router's count
 * for a moment, so the total is the larger of the two, as placement's stress counts it).
 */
export function nodeOccupancy(reserved: number, joined: number): NodeOccupancy {
  const total = Math.max(reserved, joined);
  return { joined, pending: total - joined, total };
}

export const NodeView = Type.Object({
  nodeId: Type.String(),
  region: Type.String(),
  state: NodeState,
  draining: Type.Boolean(),
  cordoned: Type.Boolean(),
  signalingUrl: Type.String(),
  probeUrl: Type.String(),
  load: NodeLoad,
  /**
   * Participants the router counts on the node: its allocations not yet expired, joined or not
   * (across router replicas). `occupancy` is the figure to show (nodeOccupancy).
   */
  reserved: Type.Integer(),
  maxParticipants: Type.Integer(),
  occupancy: NodeOccupancy,
  stress: Type.Number(),
  lastHeartbeatAgoMs: Type.Number(),
  /** Router→node probe figures. */
  probe: RttStats,
});
export type NodeView = Static<typeof NodeView>;

export const RegionView = Type.Object({
  id: Type.String(),
  displayName: Type.String(),
  lat: Type.Number(),
  lon: Type.Number(),
  healthy: Type.Boolean(),
  nodes: Type.Array(NodeView),
});

export const RegionsResponse = Type.Object({
  regions: Type.Array(RegionView),
  /** Inter-region RTT as the agents measured it: matrix[from][to] (ms, smoothed; null if unmeasured). */
  interRegionRttMs: Type.Record(Type.String(), Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]))),
  /** Full stats per region pair (best node pair). */
  interRegion: Type.Record(Type.String(), Type.Record(Type.String(), RttStats)),
});
export type RegionsResponse = Static<typeof RegionsResponse>;

export const RoomParticipantView = Type.Object({
  participantId: Type.String(),
  region: Type.String(),
  nodeId: Type.String(),
  status: Type.Union([Type.Literal('allocated'), Type.Literal('joined')]),
  allocationId: Type.String(),
});

export const RoomView = Type.Object({
  roomId: Type.String(),
  homeRegion: Type.String(),
  homeNodeId: Type.String(),
  epoch: Type.Integer(),
  /** The room's region policy (normalized: regions in catalog order); absent when it has none. */
  policy: Type.Optional(RegionPolicy),
  participants: Type.Array(RoomParticipantView),
  cascade: Type.Object({
    regions: Type.Array(Type.String()),
    nodes: Type.Array(Type.String()),
    /** Full mesh between the room's nodes. */
    links: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), fromRegion: Type.String(), toRegion: Type.String() })),
  }),
});
export type RoomView = Static<typeof RoomView>;
