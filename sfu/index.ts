/**
 * sfu/: mediasoup-based SFU library used by the region agent.
 *
 * mediasoup itself is only loaded through loadMediasoup() (worker-binary.ts),
 * which points it at the offline-built worker binary.
 */
export { SfuError, type SfuErrorCode } from './errors.ts';
export { assertLastN, lastNPeers } from './last-n.ts';
export { DEFAULT_MEDIA_CODECS } from './media-codecs.ts';
export {
  aggregateRoomStats,
  computeParticipantStats,
  jitterToMs,
  type ParticipantQualityStats,
  type ParticipantRawStats,
  type RoomQualityStats,
} from './quality-stats.ts';
export {
  Peer,
  Room,
  RoomRouter,
  type ConsumeDataOptions,
  type ConsumeOptions,
  type ConsumerCloseReason,
  type JoinOptions,
  type PeerEvents,
  type PeerOrigin,
  type PipedProducerOrigin,
  type ProduceDataOptions,
  type PeerPlainTransportOptions,
  type PeerWebRtcTransportOptions,
  type PipeOptions,
  type ProduceOptions,
  type RoomCloseReason,
  type RoomEvents,
  type RoomRouterEvents,
  type RoomRouterOptions,
  type RoomRouterSlot,
  type SpreadOptions,
  type TransportConnectParams,
  type WebRtcTransportDefaults,
} from './room-router.ts';
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
