import { Type, type Static } from '@sinclair/typebox';
import { Id } from './common.ts';

/**
 * The agent↔agent cascade control protocol (every call signed with the cluster secret; see
 * region-agent/cascade/README.md). Media parameters (RTP/SCTP parameters, appData) are passed through
 * as opaque JSON: mediasoup validates them when producing.
 */
const Link = {
  roomId: Id,
  fromNodeId: Id,
  toNodeId: Id,
};
const LinkId = Type.String({ minLength: 1, maxLength: 64 });
const Sealed = Type.String({ minLength: 1, maxLength: 16_384 });

/** Lower nodeId → higher: set up a pipe for the room. `sealed` = { endpoint, enableSrtp, enableRtx } */
export const OpenRequest = Type.Object({ ...Link, fromRegion: Type.String({ maxLength: 64 }), linkId: LinkId, sealed: Sealed }, { additionalProperties: false });
export type OpenRequest = Static<typeof OpenRequest>;
export const OpenAnswer = Type.Object({ linkId: LinkId, sealed: Sealed });
export type OpenAnswer = Static<typeof OpenAnswer>;

/** Sealed content of OpenRequest / OpenAnswer. */
export interface SealedEndpoint {
  endpoint: { ip: string; port: number; srtpParameters?: { cryptoSuite: string; keyBase64: string } };
  enableSrtp: boolean;
  enableRtx: boolean;
}

const Origin = Type.Object({ nodeId: Type.String(), region: Type.String() });
const ExportedProducer = Type.Object({
  producerId: Type.String({ minLength: 1, maxLength: 64 }),
  peerId: Type.String({ minLength: 1, maxLength: 128 }),
  kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
  rtpParameters: Type.Unknown(),
  paused: Type.Boolean(),
  appData: Type.Record(Type.String(), Type.Unknown()),
  byteCount: Type.Number({ minimum: 0 }),
});
const ExportedDataProducer = Type.Object({
  dataProducerId: Type.String({ minLength: 1, maxLength: 64 }),
  peerId: Type.String({ minLength: 1, maxLength: 128 }),
  sctpStreamParameters: Type.Optional(Type.Unknown()),
  label: Type.String({ maxLength: 1024 }),
  protocol: Type.String({ maxLength: 1024 }),
  appData: Type.Record(Type.String(), Type.Unknown()),
});
export const PipeExportSchema = Type.Object({
  origin: Origin,
  producers: Type.Array(ExportedProducer, { maxItems: 2_000 }),
  dataProducers: Type.Array(ExportedDataProducer, { maxItems: 2_000 }),
});

/** Either side → the other: my full export on this link (idempotent), also the link's heartbeat. */
export const SyncRequest = Type.Object({ ...Link, linkId: LinkId, state: PipeExportSchema }, { additionalProperties: false });
export type SyncRequest = Static<typeof SyncRequest>;
export const PipeImportResultSchema = Type.Object({
  producers: Type.Array(Type.String()),
  dataProducers: Type.Array(Type.String()),
  stalled: Type.Array(Type.String()),
});
export const SyncAnswer = Type.Object({ linkId: LinkId, result: PipeImportResultSchema });
export type SyncAnswer = Static<typeof SyncAnswer>;

/** Either side → the other: this link is gone here (room emptied, node leaving, stall). */
export const CloseRequest = Type.Object({ ...Link, linkId: LinkId, reason: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
export type CloseRequest = Static<typeof CloseRequest>;

/** Higher nodeId → lower: please (re)open the link for this room now (it has none). */
export const KickRequest = Type.Object({ ...Link }, { additionalProperties: false });
export type KickRequest = Static<typeof KickRequest>;
