import { type Static, Type } from '@sinclair/typebox';
import { QualityAlert, TrackQuality } from './registry.ts';
import { RegionPolicy } from './policy.ts';
import { RegionsResponse } from './views.ts';

const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

/** The scaling manager's state per region and its recent decisions (GET /scaling, the dashboard). */
export const ScalingView = Type.Object({
  regions: Type.Array(
    Type.Object({
      region: Type.String(),
      nodes: Type.Integer(),
      meanStress: Nullable(Type.Number()),
      overflowsInWindow: Type.Integer(),
      /** Median RTT to this region of the clients placed here in the scaling window (GEO_SFU_SCALING_WINDOW_MS). */
      medianClientRttMs: Nullable(Type.Number()),
      /** How many client RTTs the window holds, and how many the median needs (null below that). */
      clientRttSamples: Type.Integer(),
      clientRttMinSamples: Type.Integer(),
      highForMs: Type.Number(),
      lowForMs: Type.Number(),
      farForMs: Type.Number(),
      coolingDownForMs: Type.Number(),
    }),
  ),
  decisions: Type.Array(
    Type.Object({
      region: Type.String(),
      action: Type.Union([Type.Literal('scale_out'), Type.Literal('scale_in'), Type.Literal('add_region')]),
      reason: Type.String(),
      at: Type.String({ format: 'date-time' }),
      meanStress: Nullable(Type.Number()),
      nodes: Type.Integer(),
      medianClientRttMs: Nullable(Type.Number()),
    }),
  ),
});
export type ScalingView = Static<typeof ScalingView>;

/**
 * One participant with its media as its SFU reported it in the last heartbeat (admin only). The
 * figures are the SFU's (mediasoup stats); a track's width, height and frame rate are derived (see
 * TrackQuality).
 */
export const DashboardParticipant = Type.Object({
  participantId: Type.String(),
  region: Type.String(),
  nodeId: Type.String(),
  /**
   * allocated: a seat reserved, not joined yet; joined; reconnecting: joined, but its signaling
   * connection dropped and its session waits for a resume (GEO_SFU_RESUME_GRACE_MS), after which
   * it leaves.
   */
  status: Type.Union([Type.Literal('allocated'), Type.Literal('joined'), Type.Literal('reconnecting')]),
  /** How long it has been reconnecting. */
  reconnectingForMs: Type.Optional(Type.Integer()),
  /** Null: no SFU figures for it (not joined, or its node has not reported it yet). */
  media: Type.Union([
    Type.Object({
      /** What the SFU receives from it and sends to it, bits per second. */
      inBps: Nullable(Type.Number()),
      outBps: Nullable(Type.Number()),
      packetLoss: Type.Number(),
      rttMs: Nullable(Type.Number()),
      jitterMs: Nullable(Type.Number()),
      tracks: Type.Array(TrackQuality),
    }),
    Type.Null(),
  ]),
});
export type DashboardParticipant = Static<typeof DashboardParticipant>;

/** A room as the dashboard draws it: participants grouped by edge region, region-level cascade links. */
export const DashboardRoom = Type.Object({
  roomId: Type.String(),
  homeRegion: Type.String(),
  participants: Type.Integer(),
  /** Edge regions, home first; `participantIds` lists at most the first 24 of `count`. */
  edges: Type.Array(Type.Object({ region: Type.String(), count: Type.Integer(), joined: Type.Integer(), reconnecting: Type.Integer(), participantIds: Type.Array(Type.String()) })),
  /** The first 24 participants (in the room's order) with their status and media. */
  people: Type.Array(DashboardParticipant),
  /** One entry per pair of regions the room's cascade links (nodes in the same region are not a link). */
  links: Type.Array(Type.Object({ from: Type.String(), to: Type.String() })),
  /** The room's region policy; absent when it has none. */
  policy: Type.Optional(RegionPolicy),
});
export type DashboardRoom = Static<typeof DashboardRoom>;

/** A live rebalancing decision as the dashboard shows it (its reasons are in the router's log). */
const DashboardRebalanceDecision = Type.Object({
  roomId: Type.String(),
  at: Type.String({ format: 'date-time' }),
  /**
   * moved: plans stored and agents told; stable: nothing better found; below_threshold: better, not
   * enough; plan_in_flight: an earlier plan is still live; raced: the room changed (or another router
   * planned it) between the read and the plan; failed: the store could not be read or written.
   */
  outcome: Type.Union([
    Type.Literal('moved'),
    Type.Literal('stable'),
    Type.Literal('below_threshold'),
    Type.Literal('plan_in_flight'),
    Type.Literal('raced'),
    Type.Literal('failed'),
  ]),
  participants: Type.Integer(),
  meanDelayBeforeMs: Nullable(Type.Number()),
  meanDelayAfterMs: Nullable(Type.Number()),
  moves: Type.Array(Type.Object({ participantId: Type.String(), from: Type.String(), to: Type.String(), gainMs: Type.Number(), told: Type.Boolean() })),
  home: Type.Union([Type.Object({ from: Type.String(), to: Type.String() }), Type.Null()]),
  /** Time of the pure decision, ms. */
  decisionMs: Type.Number(),
});

/**
 * One `snapshot` event of the dashboard's GET /events stream (server-sent events). Anyone gets the
 * public part; with the admin token the rooms, alerts, scaling and rebalancing parts too.
 */
export const DashboardSnapshot = Type.Object({
  at: Type.String({ format: 'date-time' }),
  scope: Type.Union([Type.Literal('public'), Type.Literal('admin')]),
  /** Exactly what GET /regions answers. */
  regions: RegionsResponse,
  /** Admin only: the first rooms by id (100 by default), and how many there are. */
  rooms: Type.Optional(Type.Array(DashboardRoom)),
  /** Every room the router holds, empty ones included (they stay until they expire). */
  roomsTotal: Type.Optional(Type.Integer()),
  /** Of the rooms read (the first ones by id), how many have no participant: not listed. */
  roomsEmpty: Type.Optional(Type.Integer()),
  /** Admin only: every live node's media bandwidth and its cascade links', from its last heartbeat. */
  media: Type.Optional(
    Type.Object({
      nodes: Type.Array(Type.Object({ nodeId: Type.String(), region: Type.String(), inBps: Type.Number(), outBps: Type.Number() })),
      /** One entry per node and peer node it has cascade links with (in: received from the peer). */
      links: Type.Array(Type.Object({ nodeId: Type.String(), region: Type.String(), peerNodeId: Type.String(), peerRegion: Type.String(), rooms: Type.Integer(), inBps: Type.Number(), outBps: Type.Number() })),
    }),
  ),
  alerts: Type.Optional(Type.Array(QualityAlert)),
  scaling: Type.Optional(ScalingView),
  /** Admin only: live rebalancing, its last decisions newest first. */
  rebalancing: Type.Optional(Type.Object({ enabled: Type.Boolean(), decisions: Type.Array(DashboardRebalanceDecision) })),
});
export type DashboardSnapshot = Static<typeof DashboardSnapshot>;
