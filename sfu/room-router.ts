/**
 * Rooms on top of a WorkerPool.
 *
 * RoomRouter owns Rooms; a Room owns its mediasoup Routers (one per worker it
 * spans), an ActiveSpeakerObserver and its Peers; a Peer owns its transports,
 * producers and consumers. Every close() is idempotent and cascades to the
 * children; maps are kept in sync through mediasoup's observer 'close'
 * events, so objects closed by mediasoup itself (transport closed, producer
 * closed upstream, worker died) are removed too.
 *
 * - A room's first Router is created on the least-loaded worker on the first
 *   join (concurrent joins share one creation; a failed creation is not
 *   cached). The room closes when its last peer leaves.
 * - In-node spread: each peer is assigned to one of the room's routers. When
 *   the room's consumers on every router reach `threshold` x
 *   `consumersPerWorker`, the next peer gets a new router on another worker.
 *   A peer consuming a producer that lives on another router gets it through
 *   `router.pipeToRouter()` (one pipe per producer and router, cached).
 * - Audio producers feed the room's ActiveSpeakerObserver (on the first
 *   router; producers on other routers are piped to it).
 * - Consumers are created paused: the signaling layer resumes them with
 *   Peer.resumeConsumer() once the remote side is ready.
 * - Last-N (./last-n.ts): a peer joined with `lastN > 0` gets video only from
 *   the `lastN` first peers of Room.speakerOrder among those it consumes; its
 *   other video consumers are paused server-side until they rank again.
 * - If a worker hosting one of the room's routers dies, the room closes with
 *   reason 'workerdied' (the WorkerPool reports the room id as lost).
 */
import type { types as ms } from 'mediasoup';

import { SfuError } from './errors.ts';
import { assertLastN, lastNPeers } from './last-n.ts';
import { DEFAULT_MEDIA_CODECS } from './media-codecs.ts';
import {
  aggregateRoomStats,
  computeParticipantStats,
  type ParticipantQualityStats,
  type ParticipantRawStats,
  type RoomQualityStats,
} from './quality-stats.ts';
import { TypedEmitter } from './typed-emitter.ts';
import type { PoolWorker, WorkerPool } from './worker-pool.ts';

export interface SpreadOptions {
  /** Consumers one worker is expected to carry (capacity). Default 500. */
  consumersPerWorker?: number;
  /** Share (0..1] of that capacity a room may use on one router before spreading. Default 0.8. */
  threshold?: number;
  /** Maximum routers (= workers) per room. Default: the pool size. */
  maxRoutersPerRoom?: number;
}

export interface WebRtcTransportDefaults {
  enableUdp?: boolean;
  enableTcp?: boolean;
  preferUdp?: boolean;
  initialAvailableOutgoingBitrate?: number;
  /** Applied with setMaxIncomingBitrate() after creation. */
  maxIncomingBitrate?: number;
  enableSctp?: boolean;
}

export interface PipeOptions {
  /** IP the pipe transports between a room's routers listen on (default: the pool's listenIp). */
  listenIp?: string;
  enableSrtp?: boolean;
  enableRtx?: boolean;
}

export interface RoomRouterOptions {
  pool: WorkerPool;
  mediaCodecs?: readonly ms.RouterRtpCodecCapability[];
  /** ActiveSpeakerObserver interval in ms (default 300). */
  activeSpeakerIntervalMs?: number;
  /** In-node spread settings, or false to keep every room on one router. */
  spread?: SpreadOptions | false;
  webRtcTransport?: WebRtcTransportDefaults;
  pipe?: PipeOptions;
}

export type RoomCloseReason = 'empty' | 'closed' | 'workerdied' | 'routerclosed';

export type RoomRouterEvents = {
  roomcreated: [Room];
  roomclosed: [Room, RoomCloseReason];
  close: [];
};

export type RoomEvents = {
  peerjoined: [Peer];
  peerleft: [Peer];
  /** A peer produced: the signaling layer typically lets the other peers consume it. */
  newproducer: [Peer, ms.Producer];
  producerclose: [Peer, ms.Producer];
  /** Dominant speaker changed. */
  activespeaker: [{ peerId: string; producerId: string }];
  /** The room spread to another worker. */
  routeradded: [{ router: ms.Router; worker: PoolWorker }];
  /** A peer (local, or remote through a region pipe) added a data producer. */
  newdataproducer: [Peer, ms.DataProducer];
  dataproducerclose: [Peer, ms.DataProducer];
  close: [RoomCloseReason];
};

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

export interface PipedProducerOrigin extends PeerOrigin {
  /** The producing peer's id on its origin node. */
  peerId: string;
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

interface ResolvedSpread {
  consumersPerWorker: number;
  threshold: number;
  maxRoutersPerRoom: number;
}

/** What a Room needs from its RoomRouter. */
interface RoomContext {
  pool: WorkerPool;
  mediaCodecs: ms.RouterRtpCodecCapability[];
  activeSpeakerIntervalMs: number;
  spread: ResolvedSpread | undefined;
  webRtcTransport: WebRtcTransportDefaults;
  pipe: Required<Pick<PipeOptions, 'listenIp'>> & PipeOptions;
}

/** One of a room's routers and the pooled worker it lives on. */
export interface RoomRouterSlot {
  readonly router: ms.Router;
  readonly worker: PoolWorker;
  /** Peers assigned to this router. */
  readonly peers: ReadonlySet<Peer>;
  /** Live consumers on this router (peers' consumers and pipe consumers). */
  readonly consumers: number;
}

interface Slot extends RoomRouterSlot {
  peers: Set<Peer>;
  consumers: number;
}

interface ProducerEntry {
  producer: ms.Producer;
  peer: Peer;
  slot: Slot;
}

interface DataProducerEntry {
  dataProducer: ms.DataProducer;
  peer: Peer;
  slot: Slot;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new SfuError('INVALID_ARGUMENT', `${name} must be > 0 (got ${v})`);
  return v;
}

export class RoomRouter extends TypedEmitter<RoomRouterEvents> {
  readonly #ctx: RoomContext;
  readonly #rooms = new Map<string, Room>();
  readonly #creating = new Map<string, Promise<Room>>();
  #closed = false;

  constructor(options: RoomRouterOptions) {
    super();
    const spread = options.spread === false ? undefined : (options.spread ?? {});
    const threshold = spread?.threshold ?? 0.8;
    if (spread && !(threshold > 0 && threshold <= 1)) {
      throw new SfuError('INVALID_ARGUMENT', `spread.threshold must be in (0, 1] (got ${threshold})`);
    }
    this.#ctx = {
      pool: options.pool,
      mediaCodecs: [...(options.mediaCodecs ?? DEFAULT_MEDIA_CODECS)],
      activeSpeakerIntervalMs: positiveInt(options.activeSpeakerIntervalMs, 300, 'activeSpeakerIntervalMs'),
      spread: spread
        ? {
            consumersPerWorker: positiveInt(spread.consumersPerWorker, 500, 'spread.consumersPerWorker'),
            threshold,
            maxRoutersPerRoom: positiveInt(spread.maxRoutersPerRoom, options.pool.size, 'spread.maxRoutersPerRoom'),
          }
        : undefined,
      webRtcTransport: { ...options.webRtcTransport },
      pipe: { ...options.pipe, listenIp: options.pipe?.listenIp ?? options.pool.options.listenIp },
    };
  }

  get pool(): WorkerPool {
    return this.#ctx.pool;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get rooms(): ReadonlyMap<string, Room> {
    return this.#rooms;
  }

  getRoom(roomId: string): Room | undefined {
    return this.#rooms.get(roomId);
  }

  /** Peers in all rooms. */
  get participantCount(): number {
    let n = 0;
    for (const room of this.#rooms.values()) n += room.peers.size;
    return n;
  }

  /**
   * The room, creating it (and its first router) if needed. Concurrent calls
   * share one creation; a failed creation is retried by the next call.
   * A room created here without a join stays open until close() or until
   * a peer joins and the room empties again.
   */
  getOrCreateRoom(roomId: string): Promise<Room> {
    if (this.#closed) return Promise.reject(new SfuError('CLOSED', 'RoomRouter is closed'));
    const existing = this.#rooms.get(roomId);
    if (existing && !existing.closed) return Promise.resolve(existing);
    let creating = this.#creating.get(roomId);
    if (!creating) {
      creating = Room.create(roomId, this.#ctx).then(
        (room) => {
          this.#creating.delete(roomId);
          if (this.#closed) {
            room.close('closed');
            throw new SfuError('CLOSED', 'RoomRouter is closed');
          }
          this.#rooms.set(roomId, room);
          room.once('close', (reason) => {
            if (this.#rooms.get(roomId) === room) this.#rooms.delete(roomId);
            this.safeEmit('roomclosed', room, reason);
          });
          this.safeEmit('roomcreated', room);
          return room;
        },
        (error: unknown) => {
          this.#creating.delete(roomId);
          throw error;
        },
      );
      this.#creating.set(roomId, creating);
    }
    return creating;
  }

  /** Joins a peer to a room, creating the room on first join. */
  async join(roomId: string, peerId: string, options: JoinOptions = {}): Promise<Peer> {
    // A room may close (last peer left) between its creation and our join:
    // then a fresh room is created.
    for (let attempt = 0; ; attempt++) {
      const room = await this.getOrCreateRoom(roomId);
      try {
        return await room.join(peerId, options);
      } catch (error) {
        if (!(error instanceof SfuError && error.code === 'CLOSED' && room.closed && !this.#closed && attempt < 3)) {
          throw error;
        }
      }
    }
  }

  /** Removes a peer (closing its transports); returns whether it was there. */
  leave(roomId: string, peerId: string): boolean {
    const peer = this.#rooms.get(roomId)?.getPeer(peerId);
    if (!peer) return false;
    peer.close();
    return true;
  }

  /** Closes every room. The pool is not closed (it is not owned). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const room of [...this.#rooms.values()]) room.close('closed');
    this.#rooms.clear();
    this.safeEmit('close');
  }
}

export class Room extends TypedEmitter<RoomEvents> {
  readonly id: string;
  readonly #ctx: RoomContext;
  readonly #slots: Slot[] = [];
  readonly #peers = new Map<string, Peer>();
  readonly #producers = new Map<string, ProducerEntry>();
  readonly #dataProducers = new Map<string, DataProducerEntry>();
  /** Peers of other nodes whose producers arrived over region pipes. */
  readonly #remotePeers = new Map<string, Peer>();
  /** `${producerId} ${routerId}` -> pipe in progress / done (data producers too: ids are UUIDs). */
  readonly #pipes = new Map<string, Promise<void>>();
  #activeSpeakerObserver: ms.ActiveSpeakerObserver | undefined;
  /** Peer ids: dominant speakers, most recent first, then the others in join order. */
  readonly #speakerOrder: string[] = [];
  #addingRouter: Promise<Slot> | undefined;
  #pendingJoins = 0;
  #closed = false;

  private constructor(id: string, ctx: RoomContext) {
    super();
    this.id = id;
    this.#ctx = ctx;
  }

  /** @internal Use RoomRouter.getOrCreateRoom() / join(). */
  static async create(id: string, ctx: RoomContext): Promise<Room> {
    const room = new Room(id, ctx);
    const slot = await room.#addRouter(ctx.pool.leastLoaded());
    try {
      const observer = await slot.router.createActiveSpeakerObserver({ interval: ctx.activeSpeakerIntervalMs });
      room.#activeSpeakerObserver = observer;
      observer.on('dominantspeaker', ({ producer }) => {
        const entry = room.#producers.get(producer.id);
        if (!entry) return;
        room.#moveToFront(entry.peer.id);
        room.safeEmit('activespeaker', { peerId: entry.peer.id, producerId: producer.id });
        room.#applyLastN();
      });
    } catch (error) {
      room.close('closed');
      throw error;
    }
    if (room.#closed) throw new SfuError('CLOSED', `room ${id} closed while being created`);
    return room;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get peers(): ReadonlyMap<string, Peer> {
    return this.#peers;
  }

  /** The room's routers; the first one hosts the ActiveSpeakerObserver. */
  get routers(): readonly RoomRouterSlot[] {
    return this.#slots;
  }

  /** RTP capabilities to hand to clients (same codecs on every router of the room). */
  get rtpCapabilities(): ms.RtpCapabilities {
    const primary = this.#slots[0];
    if (!primary) throw new SfuError('CLOSED', `room ${this.id} is closed`);
    return primary.router.rtpCapabilities;
  }

  get activeSpeakerObserver(): ms.ActiveSpeakerObserver | undefined {
    return this.#activeSpeakerObserver;
  }

  /**
   * Peer ids (local and remote) for last-N: the dominant speakers, most recent first, then the
   * peers that never were dominant, in join order.
   */
  get speakerOrder(): readonly string[] {
    return this.#speakerOrder;
  }

  #moveToFront(peerId: string): void {
    const i = this.#speakerOrder.indexOf(peerId);
    if (i >= 0) this.#speakerOrder.splice(i, 1);
    this.#speakerOrder.unshift(peerId);
  }

  #addToOrder(peerId: string): void {
    if (!this.#speakerOrder.includes(peerId)) this.#speakerOrder.push(peerId);
  }

  #removeFromOrder(peerId: string): void {
    if (this.#peers.has(peerId) || this.#remotePeers.has(peerId)) return;
    const i = this.#speakerOrder.indexOf(peerId);
    if (i >= 0) this.#speakerOrder.splice(i, 1);
  }

  /** Re-applies last-N for every local peer that has a limit. */
  #applyLastN(): void {
    for (const peer of this.#peers.values()) {
      if (peer.lastN > 0) peer.applyLastN().catch(() => undefined);
    }
  }

  /** Producers of all peers (remote peers' included, with `remote: true`), by id. */
  get producers(): ReadonlyMap<string, { producer: ms.Producer; peerId: string; remote: boolean }> {
    return new Map([...this.#producers].map(([id, e]) => [id, { producer: e.producer, peerId: e.peer.id, remote: e.peer.remote }]));
  }

  /** Data producers of all peers (remote peers' included), by id. */
  get dataProducers(): ReadonlyMap<string, { dataProducer: ms.DataProducer; peerId: string; remote: boolean }> {
    return new Map([...this.#dataProducers].map(([id, e]) => [id, { dataProducer: e.dataProducer, peerId: e.peer.id, remote: e.peer.remote }]));
  }

  /** Peers of other nodes (through region pipes), by peer id. Not participants of this node. */
  get remotePeers(): ReadonlyMap<string, Peer> {
    return this.#remotePeers;
  }

  /**
   * Makes a producer (or data producer) of the room available on `router`, one of the room's
   * routers, piping it from the router it lives on if needed (in-node spread).
   */
  async ensureOnRouter(router: ms.Router, target: { producerId: string } | { dataProducerId: string }): Promise<void> {
    const slot = this.#slots.find((s) => s.router === router);
    if (!slot) throw new SfuError('NOT_FOUND', `router ${router.id} is not a router of room ${this.id}`);
    await ('producerId' in target ? this.#ensurePiped(target.producerId, slot) : this.#ensureDataPiped(target.dataProducerId, slot));
  }

  /**
   * Adopts a producer created on a pipe transport of one of the room's routers (a region pipe)
   * as a producer of the remote peer `origin.peerId`: the room emits `newproducer` for it and
   * local peers consume it like any other. The remote peer is created on its first producer and
   * goes away with its last one. Returns the remote peer.
   */
  adoptPipedProducer(producer: ms.Producer, router: ms.Router, origin: PipedProducerOrigin): Peer {
    const { peer, slot } = this.#remoteSlot(router, origin);
    peer.adoptProducer(producer);
    this.#registerProducer(peer, slot, producer);
    return peer;
  }

  /** Same as adoptPipedProducer() for a data producer. */
  adoptPipedDataProducer(dataProducer: ms.DataProducer, router: ms.Router, origin: PipedProducerOrigin): Peer {
    const { peer, slot } = this.#remoteSlot(router, origin);
    peer.adoptDataProducer(dataProducer);
    this.#registerDataProducer(peer, slot, dataProducer);
    return peer;
  }

  #remoteSlot(router: ms.Router, origin: PipedProducerOrigin): { peer: Peer; slot: Slot } {
    if (this.#closed) throw new SfuError('CLOSED', `room ${this.id} is closed`);
    const slot = this.#slots.find((s) => s.router === router);
    if (!slot) throw new SfuError('NOT_FOUND', `router ${router.id} is not a router of room ${this.id}`);
    let peer = this.#remotePeers.get(origin.peerId);
    if (peer && (peer.origin?.nodeId !== origin.nodeId || peer.closed)) {
      // The participant moved to another node: its old remote peer goes.
      peer.close();
      peer = undefined;
    }
    if (!peer) {
      const created = new Peer(origin.peerId, this, slot, {}, {
        ctx: this.#ctx,
        registerProducer: () => undefined,
        registerDataProducer: () => undefined,
        producerEntry: (producerId) => this.#producers.get(producerId),
        dataProducerEntry: (dataProducerId) => this.#dataProducers.get(dataProducerId),
        ensurePiped: (producerId, target) => this.#ensurePiped(producerId, target),
        ensureDataPiped: (dataProducerId, target) => this.#ensureDataPiped(dataProducerId, target),
      }, { nodeId: origin.nodeId, region: origin.region });
      this.#remotePeers.set(origin.peerId, created);
      this.#addToOrder(created.id);
      created.once('close', () => {
        if (this.#remotePeers.get(created.id) === created) this.#remotePeers.delete(created.id);
        this.#removeFromOrder(created.id);
      });
      peer = created;
    }
    return { peer, slot };
  }

  getPeer(peerId: string): Peer | undefined {
    return this.#peers.get(peerId);
  }

  /** Adds a peer, assigning it a router (spreading to another worker if needed). */
  async join(peerId: string, options: JoinOptions = {}): Promise<Peer> {
    if (this.#closed) throw new SfuError('CLOSED', `room ${this.id} is closed`);
    if (this.#peers.has(peerId)) throw new SfuError('PEER_EXISTS', `peer ${peerId} already in room ${this.id}`);
    if (options.lastN !== undefined) assertLastN(options.lastN);
    this.#pendingJoins++;
    let joined = false;
    try {
      const slot = await this.#slotForNewPeer();
      if (this.#closed) throw new SfuError('CLOSED', `room ${this.id} is closed`);
      if (this.#peers.has(peerId)) throw new SfuError('PEER_EXISTS', `peer ${peerId} already in room ${this.id}`);
      const peer = new Peer(peerId, this, slot, options, {
        ctx: this.#ctx,
        registerProducer: (p, producer) => this.#registerProducer(p, slot, producer),
        registerDataProducer: (p, dataProducer) => this.#registerDataProducer(p, slot, dataProducer),
        producerEntry: (producerId) => this.#producers.get(producerId),
        dataProducerEntry: (dataProducerId) => this.#dataProducers.get(dataProducerId),
        ensurePiped: (producerId, target) => this.#ensurePiped(producerId, target),
        ensureDataPiped: (dataProducerId, target) => this.#ensureDataPiped(dataProducerId, target),
      });
      this.#peers.set(peerId, peer);
      this.#addToOrder(peerId);
      slot.peers.add(peer);
      peer.once('close', () => this.#onPeerClosed(peer, slot));
      joined = true;
      this.safeEmit('peerjoined', peer);
      return peer;
    } finally {
      this.#pendingJoins--;
      if (!joined) this.#closeIfEmpty();
    }
  }

  /** Removes a peer; returns whether it was in the room. */
  leave(peerId: string): boolean {
    const peer = this.#peers.get(peerId);
    if (!peer) return false;
    peer.close();
    return true;
  }

  /** Quality stats of every participant and the room aggregate. */
  async getStats(): Promise<RoomQualityStats> {
    const participants = await Promise.all([...this.#peers.values()].map((p) => p.getStats()));
    return aggregateRoomStats(this.id, participants);
  }

  /** Closes peers, the observer and the routers. Idempotent. */
  close(reason: RoomCloseReason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of [...this.#peers.values()]) peer.close();
    this.#peers.clear();
    for (const peer of [...this.#remotePeers.values()]) peer.close();
    this.#remotePeers.clear();
    this.#activeSpeakerObserver?.close();
    for (const slot of this.#slots) slot.router.close();
    this.#slots.length = 0;
    this.#producers.clear();
    this.#dataProducers.clear();
    this.#pipes.clear();
    this.safeEmit('close', reason);
  }

  #closeIfEmpty(): void {
    if (!this.#closed && this.#peers.size === 0 && this.#pendingJoins === 0) this.close('empty');
  }

  #onPeerClosed(peer: Peer, slot: Slot): void {
    if (this.#peers.get(peer.id) === peer) this.#peers.delete(peer.id);
    this.#removeFromOrder(peer.id);
    slot.peers.delete(peer);
    if (this.#closed) return;
    this.safeEmit('peerleft', peer);
    // A secondary router without peers only carries pipes for nobody: close it.
    if (slot !== this.#slots[0] && slot.peers.size === 0 && this.#slots.includes(slot)) {
      this.#removeSlot(slot);
      slot.router.close();
    }
    this.#closeIfEmpty();
  }

  async #slotForNewPeer(): Promise<Slot> {
    const spread = this.#ctx.spread;
    const primary = this.#slots[0];
    if (!primary) throw new SfuError('CLOSED', `room ${this.id} is closed`);
    if (!spread) return primary;

    const fewestConsumers = (slots: Slot[]): Slot =>
      slots.reduce((best, s) => (s.consumers < best.consumers ? s : best));
    const limit = spread.consumersPerWorker * spread.threshold;
    const open = this.#slots.filter((s) => s.consumers < limit);
    if (open.length > 0) return fewestConsumers(open);

    if (this.#slots.length < spread.maxRoutersPerRoom) {
      const used = new Set(this.#slots.map((s) => s.worker));
      if (this.#ctx.pool.workers.some((w) => !used.has(w))) {
        this.#addingRouter ??= this.#addRouter(this.#ctx.pool.leastLoaded({ exclude: used })).finally(() => {
          this.#addingRouter = undefined;
        });
        try {
          return await this.#addingRouter;
        } catch {
          // Could not spread: fall back to the existing routers.
          if (this.#closed) throw new SfuError('CLOSED', `room ${this.id} is closed`);
        }
      }
    }
    return fewestConsumers(this.#slots);
  }

  async #addRouter(worker: PoolWorker): Promise<Slot> {
    const router = await worker.worker.createRouter({
      mediaCodecs: this.#ctx.mediaCodecs,
      appData: { roomId: this.id },
    });
    if (this.#closed) {
      router.close();
      throw new SfuError('CLOSED', `room ${this.id} is closed`);
    }
    const slot: Slot = { router, worker, peers: new Set(), consumers: 0 };
    this.#slots.push(slot);

    router.observer.on('newtransport', (transport) => {
      transport.observer.on('newconsumer', (consumer) => {
        slot.consumers++;
        consumer.observer.once('close', () => slot.consumers--);
      });
    });
    router.once('workerclose', () => this.close('workerdied'));
    router.observer.once('close', () => {
      // Closed by us (room close / empty secondary) or from outside.
      for (const key of [...this.#pipes.keys()]) if (key.endsWith(` ${router.id}`)) this.#pipes.delete(key);
      if (!this.#closed && this.#slots.includes(slot)) {
        if (slot === this.#slots[0]) this.close('routerclosed');
        else this.#removeSlot(slot);
      }
    });

    if (this.#slots.length > 1) this.safeEmit('routeradded', { router, worker });
    return slot;
  }

  #removeSlot(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    for (const peer of [...slot.peers]) peer.close();
  }

  #registerProducer(peer: Peer, slot: Slot, producer: ms.Producer): void {
    this.#producers.set(producer.id, { producer, peer, slot });
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      for (const key of [...this.#pipes.keys()]) if (key.startsWith(`${producer.id} `)) this.#pipes.delete(key);
      if (!this.#closed) this.safeEmit('producerclose', peer, producer);
    });
    if (producer.kind === 'audio') void this.#observeSpeaker(producer, slot);
    this.safeEmit('newproducer', peer, producer);
  }

  #registerDataProducer(peer: Peer, slot: Slot, dataProducer: ms.DataProducer): void {
    this.#dataProducers.set(dataProducer.id, { dataProducer, peer, slot });
    dataProducer.observer.once('close', () => {
      this.#dataProducers.delete(dataProducer.id);
      for (const key of [...this.#pipes.keys()]) if (key.startsWith(`${dataProducer.id} `)) this.#pipes.delete(key);
      if (!this.#closed) this.safeEmit('dataproducerclose', peer, dataProducer);
    });
    this.safeEmit('newdataproducer', peer, dataProducer);
  }

  /** Makes `dataProducerId` available on `target`'s router (no-op if it lives there). */
  #ensureDataPiped(dataProducerId: string, target: Slot): Promise<void> {
    return this.#pipeOnce({ dataProducerId }, this.#dataProducers.get(dataProducerId)?.slot, target);
  }

  async #observeSpeaker(producer: ms.Producer, slot: Slot): Promise<void> {
    const observer = this.#activeSpeakerObserver;
    const primary = this.#slots[0];
    if (!observer || !primary || observer.closed) return;
    try {
      if (slot !== primary) await this.#ensurePiped(producer.id, primary);
      if (!producer.closed && !observer.closed) await observer.addProducer({ producerId: producer.id });
    } catch {
      // Producer or room closed meanwhile: nothing to observe.
    }
  }

  /** Makes `producerId` available on `target`'s router (no-op if it lives there). */
  #ensurePiped(producerId: string, target: Slot): Promise<void> {
    return this.#pipeOnce({ producerId }, this.#producers.get(producerId)?.slot, target);
  }

  /**
   * Pipes a (data) producer from the router it lives on to `target`'s, once: concurrent callers
   * share the promise, and a failure is forgotten so that the next call tries again.
   */
  #pipeOnce(what: { producerId: string } | { dataProducerId: string }, from: Slot | undefined, target: Slot): Promise<void> {
    const id = 'producerId' in what ? what.producerId : what.dataProducerId;
    if (!from) return Promise.reject(new SfuError('NOT_FOUND', `${'producerId' in what ? 'producer' : 'data producer'} ${id} not found in room ${this.id}`));
    if (from === target) return Promise.resolve();
    const key = `${id} ${target.router.id}`;
    let piping = this.#pipes.get(key);
    if (!piping) {
      const pipe = this.#ctx.pipe;
      piping = from.router
        .pipeToRouter({
          ...what,
          router: target.router,
          listenInfo: { protocol: 'udp', ip: pipe.listenIp, port: 0 },
          enableSrtp: pipe.enableSrtp ?? false,
          enableRtx: pipe.enableRtx ?? false,
        })
        .then(
          () => undefined,
          (error: unknown) => {
            if (this.#pipes.get(key) === piping) this.#pipes.delete(key);
            throw error;
          },
        );
      this.#pipes.set(key, piping);
    }
    return piping;
  }
}

interface PeerInternals {
  ctx: RoomContext;
  registerProducer: (peer: Peer, producer: ms.Producer) => void;
  registerDataProducer: (peer: Peer, dataProducer: ms.DataProducer) => void;
  producerEntry: (producerId: string) => ProducerEntry | undefined;
  dataProducerEntry: (dataProducerId: string) => DataProducerEntry | undefined;
  ensurePiped: (producerId: string, target: Slot) => Promise<void>;
  ensureDataPiped: (dataProducerId: string, target: Slot) => Promise<void>;
}

export class Peer extends TypedEmitter<PeerEvents> {
  readonly id: string;
  readonly room: Room;
  readonly appData: Record<string, unknown>;
  rtpCapabilities: ms.RtpCapabilities | undefined;
  /** Set for a remote peer (a participant of another node whose producers come over a region pipe). */
  readonly origin: PeerOrigin | undefined;
  readonly #slot: Slot;
  readonly #internals: PeerInternals;
  readonly #transports = new Map<string, ms.Transport>();
  readonly #producers = new Map<string, ms.Producer>();
  readonly #dataProducers = new Map<string, ms.DataProducer>();
  readonly #consumers = new Map<string, ms.Consumer>();
  readonly #dataConsumers = new Map<string, ms.DataConsumer>();
  /** Video consumers the remote side asked to receive (resumeConsumer), for last-N. */
  readonly #wantedVideo = new Set<string>();
  #lastN: number;
  #lastNQueue: Promise<void> = Promise.resolve();
  #closed = false;

  /** @internal Created by Room.join() (or, for remote peers, by Room.adoptPipedProducer()). */
  constructor(id: string, room: Room, slot: Slot, options: JoinOptions, internals: PeerInternals, origin?: PeerOrigin) {
    super();
    this.id = id;
    this.room = room;
    this.#slot = slot;
    this.#internals = internals;
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
      const peerOf = (c: ms.Consumer): string | undefined => this.#internals.producerEntry(c.producerId)?.peer.id;
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
    return this.#slot.router;
  }

  /** The pooled worker this peer's transports live on. */
  get worker(): PoolWorker {
    return this.#slot.worker;
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
    const o = { ...this.#internals.ctx.webRtcTransport, ...options };
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
    const poolOptions = this.#internals.ctx.pool.options;
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
    this.#internals.registerProducer(this, producer);
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
    this.#internals.registerDataProducer(this, dataProducer);
    return dataProducer;
  }

  /** Consumes a data producer of the room (piping it from another router if needed). */
  async consumeData(options: ConsumeDataOptions): Promise<ms.DataConsumer> {
    const transport = this.#transport(options.transportId);
    if (!this.#internals.dataProducerEntry(options.dataProducerId)) {
      throw new SfuError('NOT_FOUND', `data producer ${options.dataProducerId} not found in room ${this.room.id}`);
    }
    await this.#internals.ensureDataPiped(options.dataProducerId, this.#slot);
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
    if (!this.#internals.producerEntry(options.producerId)) {
      throw new SfuError('NOT_FOUND', `producer ${options.producerId} not found in room ${this.room.id}`);
    }
    await this.#internals.ensurePiped(options.producerId, this.#slot);
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
    return consumer;
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
    const [transports, producers, consumers] = await Promise.all([
      Promise.all([...this.#transports.values()].map((t) => ignoreClosed(t.getStats() as Promise<ms.BaseTransportStats[]>))),
      Promise.all(
        [...this.#producers.values()].map(async (p) => {
          const stats = await ignoreClosed(p.getStats());
          return stats ? { clockRate: p.rtpParameters.codecs[0]?.clockRate ?? 0, stats } : undefined;
        }),
      ),
      Promise.all([...this.#consumers.values()].map((c) => ignoreClosed(c.getStats()))),
    ]);
    const raw: ParticipantRawStats = {
      peerId: this.id,
      transports: transports.filter((s) => s !== undefined).flat(),
      producers: producers.filter((s) => s !== undefined),
      consumers: consumers.filter((s) => s !== undefined),
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
    this.safeEmit('close');
  }

  #adoptTransport(transport: ms.Transport): void {
    if (this.#closed) {
      transport.close();
      throw new SfuError('CLOSED', `peer ${this.id} closed while creating a transport`);
    }
    this.#transports.set(transport.id, transport);
    transport.observer.once('close', () => this.#transports.delete(transport.id));
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
      // A video slot may have freed up for another consumed peer.
      if (this.#wantedVideo.delete(consumer.id) && this.#lastN > 0 && !this.#closed) this.applyLastN().catch(() => undefined);
      if (!this.#closed) this.safeEmit('consumerclose', consumer, reason);
    });
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
