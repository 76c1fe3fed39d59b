/**
 * A Peer: one participant of a Room. It owns its transports and, through them, its producers,
 * consumers, data producers and data consumers; close() closes the transports (and so the rest).
 * Maps follow mediasoup's observer 'close' events, so objects closed by mediasoup itself
 * (transport closed, producer closed upstream, worker died) are removed too.
 *
 * - Consumers are created paused: the signaling layer resumes them with resumeConsumer() once
 *   the remote side is ready.
 * - Last-N (./last-n.ts): a peer joined with `lastN > 0` gets video only from the `lastN` first
 *   peers of the room's speaker order among those it consumes; its other video consumers are
 *   paused server-side until they rank again.
 * - A remote peer (`origin` set) is a participant of another node whose producers arrived over a
 *   region pipe (./region-pipe.ts): it has no transports and goes with its last piped producer.
 *
 * Owner events (`PeerEvents`) are for the signaling layer; `observer` (`PeerObserverEvents`)
 * reports every object the peer creates, for monitoring, as mediasoup's observers do.
 */
import type { types as ms } from 'mediasoup';

import { SfuError } from './errors.ts';
import { assertLastN, lastNPeers } from './last-n.ts';
import { type CaptureSettings, computeParticipantStats, type ParticipantQualityStats, type ParticipantRawStats, type TrackRawStats } from './quality-stats.ts';
import { TypedEmitter } from './typed-emitter.ts';
import type { PoolWorker, WorkerPool } from './worker-pool.ts';

export interface WebRtcTransportDefaults {
  enableUdp?: boolean;
  enableTcp?: boolean;
  preferUdp?: boolean;
  initialAvailableOutgoingBitrate?: number;
  /** Applied with setMaxIncomingBitrate() after creation. */
  maxIncomingBitrate?: number;
  enableSctp?: boolean;
}


/**
 * Where a remote peer lives: the node (and its region) whose participant it is. Producers of
 * remote peers arrive over a region pipe (sfu/region-pipe.ts) and are seen by the room like local
 * ones (`newproducer`, consume(), active speaker), but remote peers are not participants of this
 * node: they are not in `room.peers`, do not keep the room open and are not counted as load.
 */
export interface PeerOrigin {
  nodeId: string;
  region: string;
}

export type ConsumerCloseReason = 'producerclose' | 'transportclose' | 'closed';

export type PeerEvents = {
  producerclose: [ms.Producer];
  dataproducerclose: [ms.DataProducer];
  consumerclose: [ms.Consumer, ConsumerCloseReason];
  consumerproducerpause: [ms.Consumer];
  consumerproducerresume: [ms.Consumer];
  consumerlayerschange: [ms.Consumer, ms.ConsumerLayers | undefined];
  consumerscore: [ms.Consumer, ms.ConsumerScore];
  close: [];
};

export interface JoinOptions {
  /** The peer's device RTP capabilities (needed before consume()). */
  rtpCapabilities?: ms.RtpCapabilities;
  appData?: Record<string, unknown>;
  /** Receive video from the `lastN` most recent active speakers only (0 or absent = no limit). */
  lastN?: number;
}

export interface PeerWebRtcTransportOptions extends WebRtcTransportDefaults {
  appData?: Record<string, unknown>;
}

export interface PeerPlainTransportOptions {
  /** Listen IP (default: the pool's listenIp). Port is ephemeral unless portRange is given. */
  ip?: string;
  announcedAddress?: string;
  portRange?: { min: number; max: number };
  rtcpMux?: boolean;
  comedia?: boolean;
  enableSrtp?: boolean;
  srtpCryptoSuite?: ms.SrtpCryptoSuite;
  appData?: Record<string, unknown>;
}

export type TransportConnectParams =
  | { dtlsParameters: ms.DtlsParameters }
  | { ip?: string; port?: number; rtcpPort?: number; srtpParameters?: ms.SrtpParameters };

export interface ProduceOptions {
  transportId: string;
  kind: ms.MediaKind;
  rtpParameters: ms.RtpParameters;
  paused?: boolean;
  appData?: Record<string, unknown>;
}

export interface ProduceDataOptions {
  transportId: string;
  /** Required on SCTP (WebRTC) transports; absent on a DirectTransport. */
  sctpStreamParameters?: ms.SctpStreamParameters;
  label?: string;
  protocol?: string;
  appData?: Record<string, unknown>;
}

export interface ConsumeDataOptions {
  transportId: string;
  dataProducerId: string;
  ordered?: boolean;
  appData?: Record<string, unknown>;
}

export interface ConsumeOptions {
  transportId: string;
  producerId: string;
  /** Defaults to the capabilities given at join / setRtpCapabilities(). */
  rtpCapabilities?: ms.RtpCapabilities;
  preferredLayers?: ms.ConsumerLayers;
  appData?: Record<string, unknown>;
}

export type PeerObserverEvents = {
  newtransport: [ms.Transport];
  newproducer: [ms.Producer];
  newconsumer: [ms.Consumer];
  newdataproducer: [ms.DataProducer];
  newdataconsumer: [ms.DataConsumer];
  close: [];
};

/**
 * What a peer sees of its room. Room implements it; `Peer<Room>` (exported as `Peer` by
 * ./index.ts) types `peer.room` as the Room without this file importing ./room.ts.
 */
export interface PeerRoom {
  readonly id: string;
  /** Peer ids in last-N order (Room.speakerOrder). */
  readonly speakerOrder: readonly string[];
}

/** @internal What a Peer gets from its room (Room.join(), Room.adoptPipedProducer()). */
export interface PeerContext<R extends PeerRoom> {
  pool: WorkerPool;
  webRtcTransport: WebRtcTransportDefaults;
  /** mediasoup's keyFrameRequestDelay for the peer's producers (RoomRouterOptions.keyFrameRequestDelayMs). */
  keyFrameRequestDelayMs: number;
  /** RoomRouterOptions.keyFramesAhead. */
  keyFramesAhead: boolean;
  /** The router the peer's transports live on, and its pooled worker. */
  router: ms.Router;
  worker: PoolWorker;
  /** Adds a producer / data producer of the peer to the room's index. */
  registerProducer: (peer: Peer<R>, producer: ms.Producer) => void;
  registerDataProducer: (peer: Peer<R>, dataProducer: ms.DataProducer) => void;
  /** The peer id owning a producer of the room, if the room has it. */
  producerPeerId: (producerId: string) => string | undefined;
  /** Whether a producer of the room comes over a region pipe (a remote peer's). */
  producerIsPiped: (producerId: string) => boolean;
  /** A producer of the room (its encodings and declared capture describe its consumers' layers). */
  producer: (producerId: string) => ms.Producer | undefined;
  hasDataProducer: (dataProducerId: string) => boolean;
  /** Makes a (data) producer of the room available on this peer's router. */
  ensurePiped: (producerId: string) => Promise<void>;
  ensureDataPiped: (dataProducerId: string) => Promise<void>;
}

export class Peer<R extends PeerRoom> extends TypedEmitter<PeerEvents> {
  readonly id: string;
  readonly room: R;
  readonly observer = new TypedEmitter<PeerObserverEvents>();
  readonly appData: Record<string, unknown>;
  rtpCapabilities: ms.RtpCapabilities | undefined;
  /** Set for a remote peer (a participant of another node whose producers come over a region pipe). */
  readonly origin: PeerOrigin | undefined;
  readonly #ctx: PeerContext<R>;
  readonly #transports = new Map<string, ms.Transport>();
  readonly #producers = new Map<string, ms.Producer>();
  readonly #dataProducers = new Map<string, ms.DataProducer>();
  readonly #consumers = new Map<string, ms.Consumer>();
  /** Each consumer's transport id. */
  readonly #consumerTransports = new Map<string, string>();
  readonly #dataConsumers = new Map<string, ms.DataConsumer>();
  /** Video consumers the remote side asked to receive (resumeConsumer), for last-N. */
  readonly #wantedVideo = new Set<string>();
  #lastN: number;
  #lastNQueue: Promise<void> = Promise.resolve();
  #closed = false;

  /** @internal Created by Room.join() (or, for remote peers, by Room.adoptPipedProducer()). */
  constructor(id: string, room: R, ctx: PeerContext<R>, options: JoinOptions, origin?: PeerOrigin) {
    super();
    this.id = id;
    this.room = room;
    this.#ctx = ctx;
    this.appData = { ...options.appData, ...(origin ? { remote: true, originNodeId: origin.nodeId, originRegion: origin.region } : {}) };
    this.rtpCapabilities = options.rtpCapabilities;
    this.origin = origin ? { ...origin } : undefined;
    this.#lastN = options.lastN ?? 0;
  }

  /** Last-N limit on received video (0 = none); see ./last-n.ts. */
  get lastN(): number {
    return this.#lastN;
  }

  /** Changes the last-N limit (0 = none) and applies it. */
  async setLastN(lastN: number): Promise<void> {
    assertLastN(lastN);
    this.#lastN = lastN;
    await this.applyLastN();
  }

  /**
   * Pauses / resumes this peer's video consumers (server side) so that exactly the resumed ones
   * of the `lastN` first peers of the room's speaker order flow. Serialized per peer. Called by
   * the room on active speaker changes; no-op work when nothing changes.
   */
  applyLastN(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#closed) return;
      const video = [...this.#consumers.values()].filter((c) => c.kind === 'video' && !c.closed);
      const peerOf = (c: ms.Consumer): string | undefined => this.#ctx.producerPeerId(c.producerId);
      const wanted = video.filter((c) => this.#wantedVideo.has(c.id));
      const allowed = lastNPeers(
        this.room.speakerOrder,
        wanted.map(peerOf).filter((id): id is string => id !== undefined),
        this.#lastN,
      );
      await Promise.all(
        video.map(async (c) => {
          const peerId = peerOf(c);
          const flow = this.#wantedVideo.has(c.id) && peerId !== undefined && allowed.has(peerId);
          try {
            if (flow && c.paused) await c.resume();
            else if (!flow && !c.paused) await c.pause();
          } catch (error) {
            if (!c.closed && !this.#closed) throw error;
          }
        }),
      );
    };
    const next = this.#lastNQueue.then(run);
    this.#lastNQueue = next.catch(() => undefined);
    return next;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A participant of another node (its producers arrive over a region pipe). */
  get remote(): boolean {
    return this.origin !== undefined;
  }

  /** The router this peer's transports live on. */
  get router(): ms.Router {
    return this.#ctx.router;
  }

  /** The pooled worker this peer's transports live on. */
  get worker(): PoolWorker {
    return this.#ctx.worker;
  }

  get transports(): ReadonlyMap<string, ms.Transport> {
    return this.#transports;
  }

  get producers(): ReadonlyMap<string, ms.Producer> {
    return this.#producers;
  }

  get consumers(): ReadonlyMap<string, ms.Consumer> {
    return this.#consumers;
  }

  get dataProducers(): ReadonlyMap<string, ms.DataProducer> {
    return this.#dataProducers;
  }

  get dataConsumers(): ReadonlyMap<string, ms.DataConsumer> {
    return this.#dataConsumers;
  }

  /** A DirectTransport (data channels from/to this process: bots, tests). */
  async createDirectTransport(options: { appData?: Record<string, unknown> } = {}): Promise<ms.DirectTransport> {
    this.#assertLocal();
    const transport = await this.router.createDirectTransport({ maxMessageSize: 262_144, appData: { ...options.appData, peerId: this.id } });
    this.#adoptTransport(transport);
    return transport;
  }

  /** A WebRTC transport on the worker's WebRtcServer (shared port). */
  async createWebRtcTransport(options: PeerWebRtcTransportOptions = {}): Promise<ms.WebRtcTransport> {
    this.#assertLocal();
    const o = { ...this.#ctx.webRtcTransport, ...options };
    const transport = await this.router.createWebRtcTransport({
      webRtcServer: this.worker.webRtcServer,
      enableUdp: o.enableUdp ?? true,
      enableTcp: o.enableTcp ?? true,
      preferUdp: o.preferUdp ?? true,
      ...(o.initialAvailableOutgoingBitrate !== undefined
        ? { initialAvailableOutgoingBitrate: o.initialAvailableOutgoingBitrate }
        : {}),
      enableSctp: o.enableSctp ?? false,
      appData: { ...options.appData, peerId: this.id },
    });
    this.#adoptTransport(transport);
    if (this.#ctx.keyFramesAhead) {
      // Once: at the first ICE connection, while DTLS has yet to end (RoomRouterOptions.keyFramesAhead).
      const onIce = (state: ms.IceState) => {
        if (state !== 'connected' && state !== 'completed') return;
        transport.off('icestatechange', onIce);
        if (transport.dtlsState !== 'connected') this.#askKeyFramesAhead(transport.id).catch(() => undefined);
      };
      transport.on('icestatechange', onIce);
    }
    if (o.maxIncomingBitrate !== undefined) {
      try {
        await transport.setMaxIncomingBitrate(o.maxIncomingBitrate);
      } catch {
        // Transport closed meanwhile; #assertOpen below reports it.
      }
    }
    this.#assertAlive(transport);
    return transport;
  }

  /** A plain RTP transport (recording, ingest, tests) listening on an ephemeral port by default. */
  async createPlainTransport(options: PeerPlainTransportOptions = {}): Promise<ms.PlainTransport> {
    this.#assertLocal();
    const poolOptions = this.#ctx.pool.options;
    const announcedAddress = options.announcedAddress ?? poolOptions.announcedAddress;
    const transport = await this.router.createPlainTransport({
      listenInfo: {
        protocol: 'udp',
        ip: options.ip ?? poolOptions.listenIp,
        ...(announcedAddress ? { announcedAddress } : {}),
        ...(options.portRange ? { portRange: options.portRange } : { port: 0 }),
      },
      rtcpMux: options.rtcpMux ?? true,
      comedia: options.comedia ?? false,
      enableSrtp: options.enableSrtp ?? false,
      ...(options.srtpCryptoSuite ? { srtpCryptoSuite: options.srtpCryptoSuite } : {}),
      appData: { ...options.appData, peerId: this.id },
    });
    this.#adoptTransport(transport);
    return transport;
  }

  /** Connects a transport: DTLS parameters (WebRTC) or remote ip/port (plain). */
  async connectTransport(transportId: string, params: TransportConnectParams): Promise<void> {
    await this.#transport(transportId).connect(params);
  }

  async produce(options: ProduceOptions): Promise<ms.Producer> {
    const transport = this.#transport(options.transportId);
    const producer = await transport.produce({
      kind: options.kind,
      rtpParameters: options.rtpParameters,
      paused: options.paused ?? false,
      keyFrameRequestDelay: this.#ctx.keyFrameRequestDelayMs,
      appData: { ...options.appData, peerId: this.id },
    });
    if (this.#closed || producer.closed) {
      producer.close();
      throw new SfuError('CLOSED', `peer ${this.id} closed while producing`);
    }
    this.#producers.set(producer.id, producer);
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      if (!this.#closed) this.safeEmit('producerclose', producer);
    });
    this.observer.safeEmit('newproducer', producer);
    this.#ctx.registerProducer(this, producer);
    return producer;
  }

  /** @internal A producer created on a region pipe for this remote peer (Room.adoptPipedProducer()). */
  adoptProducer(producer: ms.Producer): void {
    if (this.#closed) throw new SfuError('CLOSED', `peer ${this.id} is closed`);
    this.#producers.set(producer.id, producer);
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      if (!this.#closed) this.safeEmit('producerclose', producer);
      this.#closeIfRemoteAndIdle();
    });
    this.observer.safeEmit('newproducer', producer);
  }

  /** @internal A data producer created on a region pipe for this remote peer. */
  adoptDataProducer(dataProducer: ms.DataProducer): void {
    if (this.#closed) throw new SfuError('CLOSED', `peer ${this.id} is closed`);
    this.#dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.observer.once('close', () => {
      this.#dataProducers.delete(dataProducer.id);
      if (!this.#closed) this.safeEmit('dataproducerclose', dataProducer);
      this.#closeIfRemoteAndIdle();
    });
    this.observer.safeEmit('newdataproducer', dataProducer);
  }

  #closeIfRemoteAndIdle(): void {
    if (this.remote && this.#producers.size === 0 && this.#dataProducers.size === 0) this.close();
  }

  /** A data producer on an SCTP-enabled WebRTC transport or a DirectTransport of this peer. */
  async produceData(options: ProduceDataOptions): Promise<ms.DataProducer> {
    const transport = this.#transport(options.transportId);
    const dataProducer = await transport.produceData({
      ...(options.sctpStreamParameters ? { sctpStreamParameters: options.sctpStreamParameters } : {}),
      ...(options.label !== undefined ? { label: options.label } : {}),
      ...(options.protocol !== undefined ? { protocol: options.protocol } : {}),
      appData: { ...options.appData, peerId: this.id },
    });
    if (this.#closed || dataProducer.closed) {
      dataProducer.close();
      throw new SfuError('CLOSED', `peer ${this.id} closed while producing data`);
    }
    this.#dataProducers.set(dataProducer.id, dataProducer);
    dataProducer.observer.once('close', () => {
      this.#dataProducers.delete(dataProducer.id);
      if (!this.#closed) this.safeEmit('dataproducerclose', dataProducer);
    });
    this.observer.safeEmit('newdataproducer', dataProducer);
    this.#ctx.registerDataProducer(this, dataProducer);
    return dataProducer;
  }

  /** Consumes a data producer of the room (piping it from another router if needed). */
  async consumeData(options: ConsumeDataOptions): Promise<ms.DataConsumer> {
    const transport = this.#transport(options.transportId);
    if (!this.#ctx.hasDataProducer(options.dataProducerId)) {
      throw new SfuError('NOT_FOUND', `data producer ${options.dataProducerId} not found in room ${this.room.id}`);
    }
    await this.#ctx.ensureDataPiped(options.dataProducerId);
    this.#assertAlive(transport);
    const dataConsumer = await transport.consumeData({
      dataProducerId: options.dataProducerId,
      ...(options.ordered !== undefined ? { ordered: options.ordered } : {}),
      appData: { ...options.appData, peerId: this.id },
    });
    if (this.#closed || dataConsumer.closed) {
      dataConsumer.close();
      throw new SfuError('CLOSED', `peer ${this.id} closed while consuming data`);
    }
    this.#dataConsumers.set(dataConsumer.id, dataConsumer);
    dataConsumer.observer.once('close', () => this.#dataConsumers.delete(dataConsumer.id));
    this.observer.safeEmit('newdataconsumer', dataConsumer);
    return dataConsumer;
  }

  async pauseProducer(producerId: string): Promise<void> {
    await this.#producer(producerId).pause();
  }

  async resumeProducer(producerId: string): Promise<void> {
    await this.#producer(producerId).resume();
  }

  closeProducer(producerId: string): void {
    this.#producer(producerId).close();
  }

  /**
   * Consumes a producer of the room (piping it from another router if
   * needed). The consumer starts paused: call resumeConsumer() when the
   * remote side is ready.
   */
  async consume(options: ConsumeOptions): Promise<ms.Consumer> {
    const transport = this.#transport(options.transportId);
    const rtpCapabilities = options.rtpCapabilities ?? this.rtpCapabilities;
    if (!rtpCapabilities) {
      throw new SfuError('NO_RTP_CAPABILITIES', `peer ${this.id} has no RTP capabilities (give them at join)`);
    }
    if (this.#ctx.producerPeerId(options.producerId) === undefined) {
      throw new SfuError('NOT_FOUND', `producer ${options.producerId} not found in room ${this.room.id}`);
    }
    await this.#ctx.ensurePiped(options.producerId);
    this.#assertAlive(transport);
    if (!this.router.canConsume({ producerId: options.producerId, rtpCapabilities })) {
      throw new SfuError('CANNOT_CONSUME', `peer ${this.id} cannot consume producer ${options.producerId}`);
    }
    const consumer = await transport.consume({
      producerId: options.producerId,
      rtpCapabilities,
      paused: true,
      ...(options.preferredLayers ? { preferredLayers: options.preferredLayers } : {}),
      appData: { ...options.appData, peerId: this.id },
    });
    if (this.#closed || consumer.closed) {
      consumer.close();
      throw new SfuError('CLOSED', `peer ${this.id} closed while consuming`);
    }
    this.#adoptConsumer(consumer);
    this.#consumerTransports.set(consumer.id, transport.id);
    return consumer;
  }

  /**
   * Asks the origins of this transport's consumers of piped video for a key frame now: a consumer
   * on a DirectTransport (always connected) of each such producer, on this peer's router, makes
   * mediasoup request one up the pipe as it is created, and is closed at once. A key frame that
   * arrives before the client's consumer is active is not forwarded to it; mediasoup's own request
   * when the transport connects still goes.
   */
  async #askKeyFramesAhead(transportId: string): Promise<void> {
    const producerIds = new Set<string>();
    for (const consumer of this.#consumers.values()) {
      if (consumer.kind !== 'video' || consumer.producerPaused || this.#consumerTransports.get(consumer.id) !== transportId) continue;
      if (this.#ctx.producerIsPiped(consumer.producerId)) producerIds.add(consumer.producerId);
    }
    if (producerIds.size === 0 || this.#closed) return;
    const direct = await this.router.createDirectTransport();
    try {
      for (const producerId of producerIds) (await direct.consume({ producerId, rtpCapabilities: this.router.rtpCapabilities })).close();
    } finally {
      direct.close();
    }
  }

  /** Resumes a consumer (a video one stays paused server-side while last-N excludes it). */
  async resumeConsumer(consumerId: string): Promise<void> {
    const consumer = this.#consumer(consumerId);
    if (consumer.kind === 'video') this.#wantedVideo.add(consumer.id);
    if (consumer.kind === 'video' && this.#lastN > 0) await this.applyLastN();
    else await consumer.resume();
  }

  async pauseConsumer(consumerId: string): Promise<void> {
    const consumer = this.#consumer(consumerId);
    this.#wantedVideo.delete(consumer.id);
    if (consumer.kind === 'video' && this.#lastN > 0) await this.applyLastN();
    else await consumer.pause();
  }

  closeConsumer(consumerId: string): void {
    this.#consumer(consumerId).close();
  }

  /** Preferred spatial/temporal layers for a simulcast/SVC consumer. */
  async setPreferredLayers(consumerId: string, layers: ms.ConsumerLayers): Promise<void> {
    await this.#consumer(consumerId).setPreferredLayers(layers);
  }

  async getStats(): Promise<ParticipantQualityStats> {
    const ignoreClosed = <T>(p: Promise<T>): Promise<T | undefined> => p.catch(() => undefined);
    const track = (direction: 'in' | 'out', producer: ms.Producer, paused: boolean, stats: (ms.ProducerStat | ms.ConsumerStat)[], currentLayers?: ms.ConsumerLayers): TrackRawStats => {
      const capture = captureOf(producer.appData);
      return {
        direction,
        kind: producer.kind,
        producerId: producer.id,
        paused,
        clockRate: producer.rtpParameters.codecs[0]?.clockRate ?? 0,
        encodings: producer.rtpParameters.encodings ?? [],
        ...(capture ? { capture } : {}),
        ...(currentLayers ? { currentLayers } : {}),
        stats,
      };
    };
    const [transports, producers, consumers] = await Promise.all([
      Promise.all([...this.#transports.values()].map((t) => ignoreClosed(t.getStats() as Promise<ms.BaseTransportStats[]>))),
      Promise.all(
        [...this.#producers.values()].map(async (p) => {
          const stats = await ignoreClosed(p.getStats());
          return stats ? track('in', p, p.paused, stats) : undefined;
        }),
      ),
      Promise.all(
        [...this.#consumers.values()].map(async (c) => {
          const stats = await ignoreClosed(c.getStats());
          const producer = this.#ctx.producer(c.producerId);
          return stats && producer ? track('out', producer, c.paused || c.producerPaused, stats, c.currentLayers) : undefined;
        }),
      ),
    ]);
    const raw: ParticipantRawStats = {
      peerId: this.id,
      transports: transports.filter((s) => s !== undefined).flat(),
      tracks: [...producers, ...consumers].filter((t) => t !== undefined),
    };
    return computeParticipantStats(raw);
  }

  /**
   * Closes transports (and so producers and consumers). A remote peer closes its piped producers
   * (their pipe consumers at the origin follow). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const transport of [...this.#transports.values()]) transport.close();
    if (this.remote) {
      for (const producer of [...this.#producers.values()]) producer.close();
      for (const dataProducer of [...this.#dataProducers.values()]) dataProducer.close();
    }
    this.#transports.clear();
    this.#producers.clear();
    this.#dataProducers.clear();
    this.#consumers.clear();
    this.#wantedVideo.clear();
    this.#dataConsumers.clear();
    // Before the owner event: the room may close when its last peer goes.
    this.observer.safeEmit('close');
    this.safeEmit('close');
  }

  #adoptTransport(transport: ms.Transport): void {
    if (this.#closed) {
      transport.close();
      throw new SfuError('CLOSED', `peer ${this.id} closed while creating a transport`);
    }
    this.#transports.set(transport.id, transport);
    transport.observer.once('close', () => this.#transports.delete(transport.id));
    this.observer.safeEmit('newtransport', transport);
  }

  #adoptConsumer(consumer: ms.Consumer): void {
    this.#consumers.set(consumer.id, consumer);
    let reason: ConsumerCloseReason = 'closed';
    consumer.on('producerclose', () => (reason = 'producerclose'));
    consumer.on('transportclose', () => (reason = 'transportclose'));
    consumer.on('producerpause', () => this.safeEmit('consumerproducerpause', consumer));
    consumer.on('producerresume', () => this.safeEmit('consumerproducerresume', consumer));
    consumer.on('layerschange', (layers) => this.safeEmit('consumerlayerschange', consumer, layers));
    consumer.on('score', (score) => this.safeEmit('consumerscore', consumer, score));
    consumer.observer.once('close', () => {
      this.#consumers.delete(consumer.id);
      this.#consumerTransports.delete(consumer.id);
      // A video slot may have freed up for another consumed peer.
      if (this.#wantedVideo.delete(consumer.id) && this.#lastN > 0 && !this.#closed) this.applyLastN().catch(() => undefined);
      if (!this.#closed) this.safeEmit('consumerclose', consumer, reason);
    });
    this.observer.safeEmit('newconsumer', consumer);
  }

  #assertOpen(): void {
    if (this.#closed) throw new SfuError('CLOSED', `peer ${this.id} is closed`);
  }

  #assertLocal(): void {
    this.#assertOpen();
    if (this.remote) throw new SfuError('INVALID_ARGUMENT', `peer ${this.id} is a remote peer (node ${this.origin?.nodeId})`);
  }

  #assertAlive(transport: ms.Transport): void {
    this.#assertOpen();
    if (transport.closed) throw new SfuError('CLOSED', `transport ${transport.id} is closed`);
  }

  #transport(id: string): ms.Transport {
    this.#assertOpen();
    const transport = this.#transports.get(id);
    if (!transport) throw new SfuError('NOT_FOUND', `transport ${id} not found for peer ${this.id}`);
    return transport;
  }

  #producer(id: string): ms.Producer {
    this.#assertOpen();
    const producer = this.#producers.get(id);
    if (!producer) throw new SfuError('NOT_FOUND', `producer ${id} not found for peer ${this.id}`);
    return producer;
  }

  #consumer(id: string): ms.Consumer {
    this.#assertOpen();
    const consumer = this.#consumers.get(id);
    if (!consumer) throw new SfuError('NOT_FOUND', `consumer ${id} not found for peer ${this.id}`);
    return consumer;
  }
}

const CAPTURE_MAX = 16_384;

/** The video capture a client declared at produce time (`appData.capture`), when it is plausible. */
function captureOf(appData: Record<string, unknown>): CaptureSettings | undefined {
  const c = appData.capture as Record<string, unknown> | undefined;
  const dim = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 1 && v <= CAPTURE_MAX;
  if (typeof c !== 'object' || c === null || !dim(c.width) || !dim(c.height)) return undefined;
  const frameRate = typeof c.frameRate === 'number' && Number.isFinite(c.frameRate) && c.frameRate > 0 && c.frameRate <= 240 ? c.frameRate : undefined;
  return { width: c.width as number, height: c.height as number, ...(frameRate !== undefined ? { frameRate } : {}) };
}
