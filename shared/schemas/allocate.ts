import { Type, type Static } from '@sinclair/typebox';
import { Id, RegionId, RtpCapabilitiesObject } from './common.ts';
import { RegionPolicy } from './policy.ts';
import { EXCLUSION_CODES, Reason, stringEnum } from './reasons.ts';

export const AllocateRequest = Type.Object(
  {
    roomId: Id,
    participantId: Id,
    /** RTTs the client measured itself, ms, by region id. */
    latencies: Type.Optional(
      Type.Record(RegionId, Type.Number({ minimum: 0, maximum: 60_000 }), { maxProperties: 64 }),
    ),
    /** Client IP for server-side callers holding the API key; ignored otherwise. */
    clientIp: Type.Optional(Type.String({ minLength: 2, maxLength: 45, pattern: '^[0-9a-fA-F:.]+$' })),
    /** Nodes the client just failed on. */
    excludeNodeIds: Type.Optional(Type.Array(Id, { maxItems: 64, uniqueItems: true })),
    /**
     * What the participant may do on the SFU (carried in the join token's `perm`). API-key (and
     * anonymous) callers: as given, each field absent = allowed (`publishData`: as `publish`). A
     * grant caller may only narrow its grant's permissions (more is 403 naming the field).
     */
    permissions: Type.Optional(
      Type.Object(
        { publish: Type.Optional(Type.Boolean()), subscribe: Type.Optional(Type.Boolean()), publishData: Type.Optional(Type.Boolean()) },
        { additionalProperties: false },
      ),
    ),
    /**
     * The room's region policy (docs/region-policy.md), for API-key (and anonymous) callers; a grant
     * caller's comes from its grant's `policy` claim (sending one here is 403). The room's first
     * allocation fixes it; a later one with another policy (or none) is 409 POLICY_CONFLICT.
     */
    policy: Type.Optional(RegionPolicy),
  },
  { additionalProperties: false },
);
export type AllocateRequest = Static<typeof AllocateRequest>;

export const IceServerSchema = Type.Object({
  urls: Type.Union([Type.String(), Type.Array(Type.String())]),
  username: Type.Optional(Type.String()),
  credential: Type.Optional(Type.String()),
});

export const Candidate = Type.Object({
  region: Type.String(),
  /** Mean one-way delay (ms) the newcomer would have to the room (or RTT to the region when alone). */
  score: Type.Union([Type.Number(), Type.Null()]),
  /** The client's RTT to that region, ms, as used for the decision. */
  clientRttMs: Type.Number(),
  nodeId: Type.Optional(Type.String()),
  excludedBecause: Type.Optional(stringEnum(EXCLUSION_CODES)),
});
export type Candidate = Static<typeof Candidate>;

export const NodeRef = Type.Object({
  id: Type.String(),
  region: Type.String(),
  signalingUrl: Type.String(),
  /** The node's SFU RTP capabilities, when its agent registered them: load the Device and join within the signaling handshake (protocol 1.3). */
  rtpCapabilities: Type.Optional(RtpCapabilitiesObject),
});
export type NodeRef = Static<typeof NodeRef>;

export const AllocateSfuResponse = Type.Object({
  mode: Type.Literal('sfu'),
  allocationId: Type.String(),
  roomId: Type.String(),
  participantId: Type.String(),
  homeRegion: Type.String(),
  region: Type.String(),
  node: NodeRef,
  token: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  iceServers: Type.Array(IceServerSchema),
  cascade: Type.Object({ regions: Type.Array(Type.String()) }),
  rttSource: Type.Union([Type.Literal('client'), Type.Literal('geoip'), Type.Literal('default')]),
  reasons: Type.Array(Reason),
  candidates: Type.Array(Candidate),
});
export type AllocateSfuResponse = Static<typeof AllocateSfuResponse>;

/**
 * The P2P fallback: no region can take the room now, so its (at most GEO_SFU_P2P_MAX_PARTICIPANTS)
 * participants connect directly to each other (full mesh), exchanging offers, answers and ICE
 * candidates through the router's relay (socket.io at `relay.path` on the router), and move to an
 * SFU when the relay says `migrate`.
 */
export const AllocateP2pResponse = Type.Object(
  {
    mode: Type.Literal('p2p'),
    allocationId: Type.String(),
    roomId: Type.String(),
    participantId: Type.String(),
    relay: Type.Object(
      {
        /** socket.io path on the router's own origin. */
        path: Type.String(),
        /** Signed, short-lived, bound to this room, participant and allocation. */
        token: Type.String(),
      },
      { additionalProperties: false },
    ),
    /** When the relay token expires (connect before then). */
    expiresAt: Type.String({ format: 'date-time' }),
    iceServers: Type.Array(IceServerSchema),
    /** Most participants the mesh takes. */
    maxParticipants: Type.Integer({ minimum: 2 }),
    rttSource: Type.Union([Type.Literal('client'), Type.Literal('geoip'), Type.Literal('default')]),
    /** Why no region could take the room: every candidate with its exclusion. */
    candidates: Type.Array(Candidate),
  },
  { additionalProperties: false },
);
export type AllocateP2pResponse = Static<typeof AllocateP2pResponse>;

/** A union on `mode`. */
export const AllocateResponse = Type.Union([AllocateSfuResponse, AllocateP2pResponse]);
export type AllocateResponse = Static<typeof AllocateResponse>;
