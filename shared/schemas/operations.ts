import { Type, type Static } from '@sinclair/typebox';
import { Candidate, NodeRef } from './allocate.ts';
import { Reason } from './reasons.ts';

/** POST /admin/cordon on an agent, and the router's POST /nodes/:nodeId/cordon: take no new rooms (true) or take them again. */
export const CordonRequest = Type.Object({ cordoned: Type.Boolean() }, { additionalProperties: false });
export type CordonRequest = Static<typeof CordonRequest>;

/**
 * What an agent's admin routes answer: the operator-facing part of its status (GET /status has
 * more: load, peers, heartbeats). The router passes it on from its own admin routes.
 */
export const NodeAdminStatus = Type.Object({
  nodeId: Type.String(),
  region: Type.String(),
  registered: Type.Boolean(),
  draining: Type.Boolean(),
  cordoned: Type.Boolean(),
  /** Participants accepted now: the operator's override, else GEO_SFU_MAX_PARTICIPANTS_PER_NODE. */
  maxParticipants: Type.Integer(),
  capacityOverride: Type.Union([Type.Integer(), Type.Null()]),
});
export type NodeAdminStatus = Static<typeof NodeAdminStatus>;

/**
 * POST /allocate/dry-run: where POST /allocate would place this participant now, with the same
 * reasons and candidates, and nothing changed (no seat reserved, no home pinned, no session row,
 * no token). `mode`: `sfu` when a region can take it, else `p2p` (GEO_SFU_P2P_FALLBACK on) or
 * `refused` (POST /allocate would answer 503); `room` says whether the room exists now.
 */
export const AllocatePreview = Type.Object({
  dryRun: Type.Literal(true),
  mode: Type.Union([Type.Literal('sfu'), Type.Literal('p2p'), Type.Literal('refused')]),
  roomId: Type.String(),
  participantId: Type.String(),
  room: Type.Object({ exists: Type.Boolean(), homeRegion: Type.Union([Type.String(), Type.Null()]), participants: Type.Integer() }),
  homeRegion: Type.Union([Type.String(), Type.Null()]),
  region: Type.Union([Type.String(), Type.Null()]),
  node: Type.Union([NodeRef, Type.Null()]),
  cascade: Type.Object({ regions: Type.Array(Type.String()) }),
  rttSource: Type.Union([Type.Literal('client'), Type.Literal('geoip'), Type.Literal('default')]),
  reasons: Type.Array(Reason),
  candidates: Type.Array(Candidate),
});
export type AllocatePreview = Static<typeof AllocatePreview>;
