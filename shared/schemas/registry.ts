import { Type, type Static } from '@sinclair/typebox';
import { Id, RegionId, RtpCapabilitiesObject, RttStats, Url } from './common.ts';

/** What an agent tells the router about itself when it starts (signed request). */
export const NodeRegistration = Type.Object(
  {
    nodeId: Id,
    region: RegionId,
    /** Base URL of the agent's HTTP API (control, probes). */
    controlUrl: Url,
    /** socket.io signaling URL clients connect to. */
    signalingUrl: Url,
    /** URL clients and the router probe for RTT (GET, cheap). */
    probeUrl: Url,
    maxParticipants: Type.Integer({ minimum: 1, maximum: 100_000 }),
    version: Type.String({ maxLength: 64 }),
    /**
     * The RTP capabilities of the agent's SFU routers (every room's are the same), handed to clients
     * in /allocate's answer so they can join within their connection's handshake (signaling
     * protocol 1.3). Absent: an agent before it, or without an SFU.
     */
    rtpCapabilities: Type.Optional(RtpCapabilitiesObject),
  },
  { additionalProperties: false },
);
export type NodeRegistration = Static<typeof NodeRegistration>;

/** The agent's own load (its process and its SFU workers, not the host's). */
export const NodeLoad = Type.Object(
  {
    /** CPU used over the last interval as a fraction of the cores the agent may use, 0..n. */
    cpu: Type.Number({ minimum: 0, maximum: 1_000 }),
    /** Resident memory as a fraction of the memory the agent may use. */
    memory: Type.Number({ minimum: 0, maximum: 1_000 }),
    participants: Type.Integer({ minimum: 0 }),
    rooms: Type.Integer({ minimum: 0 }),
    transports: Type.Integer({ minimum: 0 }),
    producers: Type.Integer({ minimum: 0 }),
    consumers: Type.Integer({ minimum: 0 }),
    workers: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type NodeLoad = Static<typeof NodeLoad>;

export const NodeState = Type.Union([
  Type.Literal('alive'),
  Type.Literal('suspect'),
  Type.Literal('dead'),
]);
export type NodeState = Static<typeof NodeState>;

const Bps = Type.Number({ minimum: 0 });

/**
 * One track of a participant as the SFU sees it (sfu/quality-stats.ts). Measured by the SFU: bitrate,
 * loss, RTT, jitter, score, the layer in use. Derived (mediasoup does not decode video): width,
 * height and frame rate, from the capture the client declared at produce time and the layer's scale.
 * An absent figure was not measured (no report yet, or it does not apply).
 */
export const TrackQuality = Type.Object(
  {
    /** in: the participant publishes it (a producer); out: it receives it (a consumer). */
    direction: Type.Union([Type.Literal('in'), Type.Literal('out')]),
    kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
    producerId: Type.String({ maxLength: 64 }),
    paused: Type.Boolean(),
    bitrateBps: Bps,
    loss: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    rttMs: Type.Optional(Type.Number({ minimum: 0 })),
    jitterMs: Type.Optional(Type.Number({ minimum: 0 })),
    /** mediasoup's stream score, 0 (bad) to 10 (good). */
    score: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
    spatialLayers: Type.Integer({ minimum: 1, maximum: 16 }),
    temporalLayers: Type.Integer({ minimum: 1, maximum: 16 }),
    spatialLayer: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })),
    temporalLayer: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })),
    width: Type.Optional(Type.Integer({ minimum: 0, maximum: 16_384 })),
    height: Type.Optional(Type.Integer({ minimum: 0, maximum: 16_384 })),
    frameRate: Type.Optional(Type.Number({ minimum: 0, maximum: 240 })),
  },
  { additionalProperties: false },
);
export type TrackQuality = Static<typeof TrackQuality>;

/** Tracks a heartbeat carries per participant: what it publishes first, then what it receives, by bitrate. */
export const TRACKS_PER_PARTICIPANT = 8;

/** Media quality of one participant as the SFU sees it (mediasoup stats, aggregated by the agent). */
export const ParticipantQuality = Type.Object(
  {
    roomId: Id,
    participantId: Id,
    /** Fraction of packets lost, 0..1 (worst of its transports' directions). */
    packetLoss: Type.Number({ minimum: 0, maximum: 1 }),
    /** From RTCP receiver reports (consumers' outbound roundTripTime); null before any report. */
    rttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    /** Inbound jitter of its producers; null when it publishes nothing. */
    jitterMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    bitrateBps: Type.Number({ minimum: 0 }),
    /** What the SFU receives from it and sends to it (its transports, RTP and the rest). */
    inBps: Type.Optional(Bps),
    outBps: Type.Optional(Bps),
    /** Its tracks (at most TRACKS_PER_PARTICIPANT; left out when the heartbeat would be too large). */
    tracks: Type.Optional(Type.Array(TrackQuality, { maxItems: TRACKS_PER_PARTICIPANT })),
  },
  { additionalProperties: false },
);
export type ParticipantQuality = Static<typeof ParticipantQuality>;

/** The media a cascade link to one other node carries, summed over the rooms linked to it. */
export const CascadeLinkMedia = Type.Object(
  {
    peerNodeId: Id,
    peerRegion: RegionId,
    rooms: Type.Integer({ minimum: 0 }),
    /** Received from the peer node, sent to it (its pipe transports). */
    inBps: Bps,
    outBps: Bps,
    /**
     * Measured on the streams received from the peer node (its producers piped in here, all rooms):
     * the fraction of their packets lost on the way over the last 5 s, repaired since or not (with
     * the pipe conditioner, what its FEC rebuilt is not lost); rounded to 0.01 %. Absent while
     * nothing is expected from the peer (region-agent/cascade/link-loss.ts).
     */
    loss: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Their interarrival jitter (RFC 3550), ms, rounded to 0.1 ms: the lowest of the streams arriving (sfu/quality-stats.ts cascadeLinkJitterMs). */
    jitterMs: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type CascadeLinkMedia = Static<typeof CascadeLinkMedia>;

/** The node's media bandwidth: every transport (clients' and cascade pipes'), and per cascade peer. */
export const NodeMedia = Type.Object(
  {
    inBps: Bps,
    outBps: Bps,
    links: Type.Array(CascadeLinkMedia, { maxItems: 1_000 }),
  },
  { additionalProperties: false },
);
export type NodeMedia = Static<typeof NodeMedia>;

/** A session whose signaling connection dropped: its SFU peer is kept while it may resume. */
export const ReconnectingSession = Type.Object(
  {
    roomId: Id,
    participantId: Id,
    /** How long ago the connection dropped. */
    forMs: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type ReconnectingSession = Static<typeof ReconnectingSession>;

export const Heartbeat = Type.Object(
  {
    nodeId: Id,
    /** Monotonic per agent process; lets the router ignore reordered heartbeats. */
    seq: Type.Integer({ minimum: 0 }),
    load: NodeLoad,
    draining: Type.Boolean(),
    cordoned: Type.Boolean(),
    /** Max participants the agent currently accepts (operator override may lower it). */
    maxParticipants: Type.Integer({ minimum: 0, maximum: 100_000 }),
    /** RTT this agent measured to its peers, by peer node id. */
    peerRtt: Type.Record(Id, RttStats, { maxProperties: 1_000 }),
    /** Media quality per participant (absent until the SFU has stats). */
    quality: Type.Optional(Type.Array(ParticipantQuality, { maxItems: 10_000 })),
    /** Bandwidth of the node and of its cascade links (absent without an SFU). */
    media: Type.Optional(NodeMedia),
    /** Sessions waiting for their client to resume (GEO_SFU_RESUME_GRACE_MS), at most 1,000. */
    reconnecting: Type.Optional(Type.Array(ReconnectingSession, { maxItems: 1_000 })),
  },
  { additionalProperties: false },
);
export type Heartbeat = Static<typeof Heartbeat>;

export const PeerInfo = Type.Object({
  nodeId: Type.String(),
  region: Type.String(),
  controlUrl: Type.String(),
  probeUrl: Type.String(),
});
export type PeerInfo = Static<typeof PeerInfo>;

/** What every quality alert says: where, which condition, the value that crossed the threshold and since when. */
const alertCommon = {
  /** The region and node of the participant's session, or of the receiving end of the cascade link. */
  region: Type.String(),
  nodeId: Type.String(),
  /** The value that crossed the threshold (loss fraction or ms). */
  value: Type.Number(),
  threshold: Type.Number(),
  since: Type.String({ format: 'date-time' }),
};

/** A participant's own loss or RTT over its threshold (measured by its SFU). */
export const ParticipantQualityAlert = Type.Object({
  scope: Type.Literal('participant'),
  roomId: Type.String(),
  participantId: Type.String(),
  kind: Type.Union([Type.Literal('packet_loss'), Type.Literal('rtt')]),
  ...alertCommon,
});
export type ParticipantQualityAlert = Static<typeof ParticipantQualityAlert>;

/**
 * A cascade link's loss, jitter or RTT over its threshold: the media `nodeId` receives from
 * `peerNodeId` (all the rooms they share), and the RTT between the two nodes.
 */
export const CascadeLinkQualityAlert = Type.Object({
  scope: Type.Literal('cascade_link'),
  peerNodeId: Type.String(),
  peerRegion: Type.String(),
  kind: Type.Union([Type.Literal('packet_loss'), Type.Literal('rtt'), Type.Literal('jitter')]),
  ...alertCommon,
  /** The link's latest figures, whatever the kind (null: not measured, e.g. nothing arriving). */
  loss: Type.Union([Type.Number(), Type.Null()]),
  jitterMs: Type.Union([Type.Number(), Type.Null()]),
  rttMs: Type.Union([Type.Number(), Type.Null()]),
});
export type CascadeLinkQualityAlert = Static<typeof CascadeLinkQualityAlert>;

export const QualityAlert = Type.Union([ParticipantQualityAlert, CascadeLinkQualityAlert]);
export type QualityAlert = Static<typeof QualityAlert>;

/** Router's answer to register and heartbeat: who else to probe, and alerts about this node's participants. */
export const HeartbeatAck = Type.Object({
  /** False when the router does not know this node (restarted, or it was forgotten): register again. */
  known: Type.Boolean(),
  peers: Type.Array(PeerInfo),
  /**
   * Active quality alerts for participants on this node (the agent tells those clients); not the
   * cascade links' (no client to tell). `scope` is not required: a router of the previous version
   * does not send it.
   */
  alerts: Type.Optional(Type.Array(Type.Omit(ParticipantQualityAlert, ['scope']))),
});
export type HeartbeatAck = Static<typeof HeartbeatAck>;

/** Why a session left, as its agent saw it. */
export const LeftReport = Type.Union([Type.Literal('left'), Type.Literal('timed_out')]);
export type LeftReport = Static<typeof LeftReport>;

/** Agent→router report of a participant that actually joined or left (signed). */
export const ParticipantEvent = Type.Object(
  {
    nodeId: Id,
    roomId: Id,
    participantId: Id,
    allocationId: Type.String({ minLength: 1, maxLength: 64 }),
    event: Type.Union([Type.Literal('joined'), Type.Literal('left')]),
    /** For `left`: the client left (or its session was closed here), or its connection dropped and was not resumed in time. */
    reason: Type.Optional(LeftReport),
  },
  { additionalProperties: false },
);
export type ParticipantEvent = Static<typeof ParticipantEvent>;

export const RoomNode = Type.Object({
  nodeId: Type.String(),
  region: Type.String(),
  controlUrl: Type.String(),
  state: NodeState,
});
export type RoomNode = Static<typeof RoomNode>;

/**
 * The nodes serving a room (its participants' nodes), with the room version they were read at: an
 * agent keeps the highest version it has seen, so a stale set (an older push from another router
 * replica, or a poll answer overtaken by a push) never replaces a newer one.
 */
export const RoomNodeSet = Type.Object({
  version: Type.Integer({ minimum: 0 }),
  nodes: Type.Array(RoomNode),
});
export type RoomNodeSet = Static<typeof RoomNodeSet>;

/** A room's node set, named. */
export const RoomNodesOfRoom = Type.Object({ roomId: Id, ...RoomNodeSet.properties }, { additionalProperties: false });
export type RoomNodesOfRoom = Static<typeof RoomNodesOfRoom>;

/** Rooms in one push, at most (a room of 100 nodes is ~15 KB of JSON: the agent's 4 MiB body limit holds 250). */
export const ROOM_NODES_PUSH_MAX_ROOMS = 200;

/**
 * Router → agent (signed): the node sets of rooms this agent serves or served, after they changed;
 * the changes the router made while its last push to that agent was on its way, in one call.
 */
export const RoomNodesPush = Type.Object({ rooms: Type.Array(RoomNodesOfRoom, { minItems: 1, maxItems: ROOM_NODES_PUSH_MAX_ROOMS }) }, { additionalProperties: false });
export type RoomNodesPush = Static<typeof RoomNodesPush>;

/**
 * The router's answer to a `joined` report (200): whether the allocation is current for that
 * participant. Not current: `replaced` (the participant allocated again since), `removed` (an admin
 * removed it), `unknown` (it expired, left or its room was forgotten). The agent closes a session
 * whose allocation is not current; an undetermined answer (503, timeout) admits it and asks again.
 */
export const ParticipantEventAnswer = Type.Object(
  {
    current: Type.Boolean(),
    reason: Type.Optional(Type.Union([Type.Literal('replaced'), Type.Literal('removed'), Type.Literal('unknown')])),
    /** When current: the room's node set, so the agent can set up its cascade without asking. */
    room: Type.Optional(RoomNodeSet),
  },
  { additionalProperties: false },
);
export type ParticipantEventAnswer = Static<typeof ParticipantEventAnswer>;

/**
 * Router → agent (signed): close this participant's session on that node. `removed`: an admin
 * removed the participant (every session of it closes); `replaced`: a newer allocation of the
 * participant joined elsewhere, so a session holding any other allocation than `keepAllocationId`
 * closes — both with the final `removed` event. `expired`: the allocation that replaced this
 * session's expired unjoined, so the session holds no current allocation: it closes with `moved`
 * (allocate again, to be counted).
 */
export const CloseSessionRequest = Type.Object(
  {
    roomId: Id,
    participantId: Id,
    reason: Type.Union([Type.Literal('removed'), Type.Literal('replaced'), Type.Literal('expired')]),
    keepAllocationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type CloseSessionRequest = Static<typeof CloseSessionRequest>;

/**
 * Router → agent (signed): live rebalancing moved this participant; its agent sends it `moved`
 * (reason `rebalance`) and keeps its session until it leaves (make-before-break). Only the named
 * allocation is moved: a participant that allocated again since is left alone.
 */
export const MoveRequest = Type.Object(
  {
    roomId: Id,
    participantId: Id,
    allocationId: Type.String({ minLength: 1, maxLength: 64 }),
  },
  { additionalProperties: false },
);
export type MoveRequest = Static<typeof MoveRequest>;

/** Agent → router: which nodes serve these rooms (the cascade mesh the agent must pipe to). */
export const RoomNodesQuery = Type.Object(
  {
    nodeId: Id,
    roomIds: Type.Array(Id, { maxItems: 1_000 }),
  },
  { additionalProperties: false },
);
export type RoomNodesQuery = Static<typeof RoomNodesQuery>;


export const RoomNodesAnswer = Type.Object({
  /** For each asked room that exists: the nodes its participants are placed on (this node included). */
  rooms: Type.Record(Type.String(), RoomNodeSet),
});
export type RoomNodesAnswer = Static<typeof RoomNodesAnswer>;

/** One session an agent holds: the participant and the allocation its join token named. */
export const InventoryParticipant = Type.Object(
  {
    participantId: Id,
    allocationId: Type.String({ minLength: 1, maxLength: 64 }),
    /** Joined (its SFU peer exists), or connected and not joined yet. */
    joined: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type InventoryParticipant = Static<typeof InventoryParticipant>;

/**
 * Sessions an agent serves a node may hold: GEO_SFU_MAX_PARTICIPANTS_PER_NODE's bound. About 110
 * bytes each in JSON, so an inventory is at most ≈ 11 MB (INVENTORY_BODY_LIMIT_BYTES on the router's
 * side of the call).
 */
export const INVENTORY_MAX_SESSIONS = 100_000;

export const InventoryRoom = Type.Object(
  {
    roomId: Id,
    participants: Type.Array(InventoryParticipant, { maxItems: INVENTORY_MAX_SESSIONS }),
  },
  { additionalProperties: false },
);
export type InventoryRoom = Static<typeof InventoryRoom>;

/**
 * Agent → router, answering the router's signed inventory call: every session the agent holds now
 * (connected, joined, or waiting for its client to resume), by room. The router reconciles the
 * rooms and node counts in Redis with it after a Redis failover and periodically
 * (router/operations/reconciler.ts).
 */
export const NodeInventory = Type.Object(
  {
    nodeId: Id,
    rooms: Type.Array(InventoryRoom, { maxItems: INVENTORY_MAX_SESSIONS }),
  },
  { additionalProperties: false },
);
export type NodeInventory = Static<typeof NodeInventory>;
