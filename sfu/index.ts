/**
 * sfu/: mediasoup-based SFU library used by the region agent.
 *
 * mediasoup itself is only loaded through loadMediasoup() (worker-binary.ts),
 * which points it at the offline-built worker binary.
 */
import type { Peer as PeerOf } from './peer.ts';
import type { Room } from './room.ts';

/** mediasoup's types, as the library hands its objects out (mediasoup itself is loaded by loadMediasoup()). */
export type { types } from 'mediasoup';
export { SfuError, type SfuErrorCode } from './errors.ts';
export { assertLastN, lastNPeers } from './last-n.ts';
export { DEFAULT_MEDIA_CODECS } from './media-codecs.ts';
export {
  aggregateRoomStats,
  cascadeLinkJitterMs,
  computeParticipantStats,
  computeTrackStats,
  firstTransmissions,
  jitterToMs,
  type ParticipantQualityStats,
  type ParticipantRawStats,
  type PipedStreamRawStats,
  type RoomQualityStats,
  type TrackQualityStats,
  type TrackRawStats,
} from './quality-stats.ts';
export {
  type ConsumeDataOptions,
  type ConsumeOptions,
  type ConsumerCloseReason,
  type JoinOptions,
  type PeerEvents,
  type PeerObserverEvents,
  type PeerOrigin,
  type PeerPlainTransportOptions,
  type PeerWebRtcTransportOptions,
  type ProduceDataOptions,
  type ProduceOptions,
  type TransportConnectParams,
  type WebRtcTransportDefaults,
} from './peer.ts';
export {
  Room,
  type PipedProducerOrigin,
  type PipeOptions,
  type RoomCloseReason,
  type RoomEvents,
  type RoomObserverEvents,
  type RoomRouterSlot,
} from './room.ts';
export { RoomRouter, type RoomRouterEvents, type RoomRouterObserverEvents, type RoomRouterOptions } from './room-router.ts';
export { type SpreadOptions } from './spread.ts';
export { collectSfuLoad, type SfuLoadSnapshot } from './sfu-load.ts';
export { setListenerErrorHandler, TypedEmitter, type EventMap, type Listener } from './typed-emitter.ts';
export {
  installedMediasoupVersion,
  loadedWorkerBinary,
  loadMediasoup,
  resolveWorkerBinary,
  WorkerBinaryMissingError,
  workerCacheRoot,
  workerPointerFile,
  type MediasoupModule,
  type WorkerBinaryOptions,
} from './worker-binary.ts';
export {
  compareWorkerLoad,
  PoolWorker,
  WorkerPool,
  type PoolLoadSnapshot,
  type PoolWorkerEvents,
  type PortRange,
  type ResolvedWorkerPoolOptions,
  type TransportProtocol,
  type WorkerCounts,
  type WorkerDiedEvent,
  type WorkerLoad,
  type WorkerPoolEvents,
  type WorkerPoolOptions,
  type WorkerReplacedEvent,
} from './worker-pool.ts';
export {
  RegionPipe,
  type ExportedDataProducer,
  type ExportedProducer,
  type PipeEndpoint,
  type PipeExport,
  type PipeImportResult,
  type RegionPipeCloseReason,
  type RegionPipeEvents,
  type RegionPipeOptions,
} from './region-pipe.ts';

/** A participant of a Room: local, or remote through a region pipe (`peer.remote`). */
export type Peer = PeerOf<Room>;
