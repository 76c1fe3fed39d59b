import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * The client ↔ region-agent signaling protocol over socket.io, versioned and typed. One source
 * for the agent (validation) and the SDK (types).
 *
 * Connect with `io(signalingUrl, { auth: { protocolVersion, token } })` (or `{ protocolVersion,
 * resume }` to resume a dropped session). The agent refuses an incompatible major version or a bad
 * credential with a connect_error whose `data` is `{ code, message }`. Requests are emitted with an
 * acknowledgement callback that receives `{ ok: true, data }` or `{ ok: false, error }`; a bad
 * payload gets an error naming the field and changes nothing.
 *
 * Since 1.3 a token connection may carry its first requests in `auth.requests` (a client that got
 * the agent's RTP capabilities from /allocate: `node.rtpCapabilities`): the agent runs them right
 * after `welcome`, as if they had been emitted then, and sends each answer as `handshakeAnswer`.
 * The join and the transports then need no round trip of their own after the connection's.
 *
 * Since 1.4 the agent tells how long the browser should hold a consumer's video before it plays
 * (`jitterBufferTargetMs`, set as `RTCRtpReceiver.jitterBufferTarget`): in the consumer's answer
 * and, when it changes, in `consumerJitterBuffer`. Only for video piped in over a lossy cascade
 * link whose repair takes longer than a browser waits (see region-agent/cascade/README.md).
 */
export const PROTOCOL_VERSION = '1.4';

/** Compatible when the major versions match. */
export function protocolCompatible(clientVersion: unknown): boolean {
  return typeof clientVersion === 'string' && /^\d+\.\d+$/.test(clientVersion) && clientVersion.split('.')[0] === PROTOCOL_VERSION.split('.')[0];
}

/** Whether a compatible peer's `N.M` version is at least `N.minor` (what a minor version added). */
export function protocolAtLeast(version: unknown, minor: number): boolean {
  return protocolCompatible(version) && Number((version as string).split('.')[1]) >= minor;
}

/** mediasoup parameter objects are checked in depth by mediasoup itself; here only their shape. */
const MediasoupObject = Type.Object({}, { additionalProperties: true });

/** Requests a connection may carry in its handshake (protocol 1.3): a join and its two transports. */
export const HANDSHAKE_REQUESTS_MAX = 3;
/** One request carried in `auth.requests`: its name and payload are checked as an emitted request's are. */
export const HandshakeRequest = Type.Object(
  { name: Type.String({ maxLength: 64 }), payload: Type.Optional(MediasoupObject) },
  { additionalProperties: false },
);
export type HandshakeRequest = Static<typeof HandshakeRequest>;

export const ConnectAuth = Type.Object(
  {
    protocolVersion: Type.String({ maxLength: 16 }),
    token: Type.Optional(Type.String({ maxLength: 4096 })),
    resume: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Protocol 1.3, with `token` only: requests run right after `welcome`, each answered by a `handshakeAnswer`. */
    requests: Type.Optional(Type.Array(HandshakeRequest, { maxItems: HANDSHAKE_REQUESTS_MAX })),
  },
  { additionalProperties: false },
);
export type ConnectAuth = Static<typeof ConnectAuth>;
const Direction = Type.Union([Type.Literal('send'), Type.Literal('recv')]);
const Kind = Type.Union([Type.Literal('audio'), Type.Literal('video')]);
const MsId = Type.String({ minLength: 1, maxLength: 64 });

/** Request name → [payload schema, response data type]. */
export const REQUESTS = {
  getRouterRtpCapabilities: Type.Object({}, { additionalProperties: false }),
  join: Type.Object(
    {
      rtpCapabilities: MediasoupObject,
      displayName: Type.Optional(Type.String({ maxLength: 128 })),
      /** Receive video from the `lastN` most recent active speakers only (0 or absent = no limit). */
      lastN: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    },
    { additionalProperties: false },
  ),
  createWebRtcTransport: Type.Object(
    {
      direction: Direction,
      sctp: Type.Optional(Type.Boolean()),
      /**
       * Protocol 1.2, `recv` only: also consume, on the new transport, every producer of the room
       * this participant may consume now (as `consume` would, paused until `resumeConsumer`); the
       * answer lists them. A joiner sends this right behind `join` and so needs no `consume` round
       * trip before its first remote media.
       */
      consumeAll: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  connectTransport: Type.Object({ transportId: MsId, dtlsParameters: MediasoupObject }, { additionalProperties: false }),
  restartIce: Type.Object({ transportId: MsId }, { additionalProperties: false }),
  produce: Type.Object(
    { transportId: MsId, kind: Kind, rtpParameters: MediasoupObject, appData: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 16 })) },
    { additionalProperties: false },
  ),
  closeProducer: Type.Object({ producerId: MsId }, { additionalProperties: false }),
  pauseProducer: Type.Object({ producerId: MsId }, { additionalProperties: false }),
  resumeProducer: Type.Object({ producerId: MsId }, { additionalProperties: false }),
  consume: Type.Object({ transportId: MsId, producerId: MsId }, { additionalProperties: false }),
  resumeConsumer: Type.Object({ consumerId: MsId }, { additionalProperties: false }),
  setPreferredLayers: Type.Object(
    { consumerId: MsId, spatialLayer: Type.Integer({ minimum: 0, maximum: 15 }), temporalLayer: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })) },
    { additionalProperties: false },
  ),
  produceData: Type.Object(
    { transportId: MsId, sctpStreamParameters: MediasoupObject, label: Type.Optional(Type.String({ maxLength: 128 })), protocol: Type.Optional(Type.String({ maxLength: 128 })) },
    { additionalProperties: false },
  ),
  consumeData: Type.Object({ transportId: MsId, dataProducerId: MsId }, { additionalProperties: false }),
  leave: Type.Object({}, { additionalProperties: false }),
} as const satisfies Record<string, TSchema>;

export type RequestName = keyof typeof REQUESTS;
export type RequestPayload<N extends RequestName> = Static<(typeof REQUESTS)[N]>;

export interface PeerInfoMessage {
  peerId: string;
  region: string;
  displayName?: string;
}
export interface ProducerInfoMessage {
  producerId: string;
  peerId: string;
  kind: 'audio' | 'video';
  paused: boolean;
  /** Region where the producer's publisher is connected (differs for producers piped in). */
  region: string;
}

/** Response data of each request. */
export interface ResponseData {
  getRouterRtpCapabilities: { rtpCapabilities: Record<string, unknown> };
  join: {
    peerId: string;
    region: string;
    peers: PeerInfoMessage[];
    producers: ProducerInfoMessage[];
    /** What this participant may do (its join token's `perm`; requests beyond it are refused with FORBIDDEN). */
    permissions: ParticipantPermissions;
  };
  createWebRtcTransport: {
    transportId: string;
    iceParameters: Record<string, unknown>;
    iceCandidates: Record<string, unknown>[];
    dtlsParameters: Record<string, unknown>;
    sctpParameters?: Record<string, unknown>;
    /** With `consumeAll`: the consumers made on this transport (producers it could not consume are left out). */
    consumers?: ResponseData['consume'][];
  };
  connectTransport: Record<string, never>;
  restartIce: { iceParameters: Record<string, unknown> };
  produce: { producerId: string };
  closeProducer: Record<string, never>;
  pauseProducer: Record<string, never>;
  resumeProducer: Record<string, never>;
  consume: {
    consumerId: string;
    producerId: string;
    kind: 'audio' | 'video';
    rtpParameters: Record<string, unknown>;
    producerPaused: boolean;
    /** Protocol 1.4: the receiver's jitter buffer target for this consumer, ms (absent: the browser's own). */
    jitterBufferTargetMs?: number;
  };
  resumeConsumer: Record<string, never>;
  setPreferredLayers: Record<string, never>;
  produceData: { dataProducerId: string };
  consumeData: { dataConsumerId: string; dataProducerId: string; sctpStreamParameters: Record<string, unknown>; label: string; protocol: string };
  leave: Record<string, never>;
}

/** A participant's permissions as the agent enforces them (see README "Permissions"). */
export interface ParticipantPermissions {
  /** produce; a send transport. */
  publish: boolean;
  /** consume, consumeData; a recv transport. */
  subscribe: boolean;
  /** produceData; a send transport. */
  publishData: boolean;
}

export interface SignalingError {
  code: string;
  message: string;
  field?: string;
}
export type Ack<T> = { ok: true; data: T } | { ok: false; error: SignalingError };

/** What a resumed session still holds on the SFU (events sent while disconnected are not replayed). */
export interface SessionSnapshot {
  peers: PeerInfoMessage[];
  /** Other peers' producers, as `newProducer` would have announced them. */
  producers: ProducerInfoMessage[];
  transports: { transportId: string; direction: 'send' | 'recv' }[];
  /** This peer's own producers and consumers that survived. */
  producerIds: string[];
  consumers: { consumerId: string; producerId: string }[];
}

export interface WelcomeMessage {
  peerId: string;
  roomId: string;
  region: string;
  nodeId: string;
  /** Credential for `auth.resume` after a drop (valid while the session lives: resumeGraceMs after a disconnect). */
  resume: string;
  resumeGraceMs: number;
  protocolVersion: string;
  /** True when this connection resumed an existing session (auth.resume). */
  resumed: boolean;
  /** Whether the session has joined the room (a resumed session may have). */
  joined: boolean;
  /**
   * The room's routers' RTP capabilities (what getRouterRtpCapabilities answers) and what this
   * participant may do (what join answers), so a client loads its Device and sends join and its
   * transports at once, without waiting for two answers first. Absent from agents before protocol 1.1.
   */
  rtpCapabilities?: Record<string, unknown>;
  permissions?: ParticipantPermissions;
  /** On a resumed, joined session: the SFU state that survived the drop. */
  session?: SessionSnapshot;
}

/**
 * connect_error `data.code`: why an agent refused a connection (region-agent/signaling/README.md
 * "Connect"), sent by the agent and read by the SDK from this one list.
 */
const CONNECT_ERROR_CODES = [
  /** Too many connection attempts from this client IP (GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE). */
  'RATE_LIMITED',
  /** The agent failed to check the credential. */
  'INTERNAL',
  'BAD_AUTH',
  'PROTOCOL_VERSION',
  'AUTH_REQUIRED',
  /** A new token while the agent drains or closes: allocate again. */
  'DRAINING',
  'TOKEN_MALFORMED',
  'TOKEN_UNKNOWN_KEY',
  'TOKEN_BAD_SIGNATURE',
  'TOKEN_EXPIRED',
  'TOKEN_WRONG_AUDIENCE',
  'TOKEN_WRONG_BINDING',
  /** This join token opened a session already. */
  'TOKEN_USED',
  'RESUME_INVALID',
  'RESUME_EXPIRED',
] as const;
export type ConnectErrorCode = (typeof CONNECT_ERROR_CODES)[number];

/** Connect errors after which the same credential will never work on that node: all but a rate limit and an internal failure. */
export const FATAL_CONNECT_CODES: ReadonlySet<string> = new Set<ConnectErrorCode>(CONNECT_ERROR_CODES.filter((code) => code !== 'RATE_LIMITED' && code !== 'INTERNAL'));

/** What one participant may hold on the SFU, each capped (GEO_SFU_MAX_*_PER_PEER), and the code refusing one more. */
export const CAP_CODES = {
  transports: 'TOO_MANY_TRANSPORTS',
  producers: 'TOO_MANY_PRODUCERS',
  consumers: 'TOO_MANY_CONSUMERS',
  dataProducers: 'TOO_MANY_DATA_PRODUCERS',
  dataConsumers: 'TOO_MANY_DATA_CONSUMERS',
} as const;

/** A request's ack error codes. A refused request changed nothing. */
const REQUEST_ERROR_CODES = [
  /** With `field`: the payload does not match the request's schema. */
  'INVALID_PAYLOAD',
  'UNKNOWN_REQUEST',
  'NOT_JOINED',
  'ALREADY_JOINED',
  'WRONG_DIRECTION',
  'NOT_FOUND',
  'CANNOT_CONSUME',
  'NO_RTP_CAPABILITIES',
  'INVALID_ARGUMENT',
  'CLOSED',
  'NOT_SUPPORTED',
  'INTERNAL',
  /** The join token's permissions do not allow it. */
  'FORBIDDEN',
  /** More than GEO_SFU_SIGNALING_REQUESTS_PER_SECOND on this connection. */
  'RATE_LIMITED',
  /** One code per per-participant cap. */
  ...Object.values(CAP_CODES),
] as const;
export type RequestErrorCode = (typeof REQUEST_ERROR_CODES)[number];

/** Refusals that the same request meets again on any node: a client neither retries them nor fails over. */
export const FINAL_REQUEST_CODES: ReadonlySet<RequestErrorCode> = new Set<RequestErrorCode>(
  REQUEST_ERROR_CODES.filter((code) => code === 'FORBIDDEN' || (Object.values(CAP_CODES) as string[]).includes(code)),
);

/** Server → client events. */
export interface ServerEvents {
  /** Sent on connect: who you are and how to resume a dropped connection. */
  welcome: (msg: WelcomeMessage) => void;
  /** The answer to `auth.requests[index]` (protocol 1.3), sent when an emitted request's ack would be. */
  handshakeAnswer: (msg: { index: number; reply: Ack<unknown> }) => void;
  peerJoined: (msg: PeerInfoMessage) => void;
  peerLeft: (msg: { peerId: string }) => void;
  newProducer: (msg: ProducerInfoMessage) => void;
  producerClosed: (msg: { producerId: string }) => void;
  producerPaused: (msg: { producerId: string }) => void;
  producerResumed: (msg: { producerId: string }) => void;
  consumerClosed: (msg: { consumerId: string; producerId: string }) => void;
  /** Protocol 1.4: a consumer's jitter buffer target changed (0: the browser's own again). */
  consumerJitterBuffer: (msg: { consumerId: string; producerId: string; jitterBufferTargetMs: number }) => void;
  activeSpeaker: (msg: { peerId: string; producerId: string }) => void;
  quality: (msg: { peerId: string; packetLoss: number; rttMs: number | null; jitterMs: number | null; bitrateBps: number }) => void;
  /** The router re-homed or migrated this participant: allocate again (or use `allocation`). */
  moved: (msg: { reason: string; excludeNodeIds: string[] }) => void;
  /**
   * Final: this participant's session is closed and must not come back (the server disconnects
   * right after). `removed`: an admin removed the participant; `replaced`: a newer session of the
   * same participant carries its media now.
   */
  removed: (msg: { reason: 'removed' | 'replaced' }) => void;
}
