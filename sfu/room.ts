/**
 * A Room: the peers of one room id on this node.
 *
 * A Room owns its mediasoup Routers (one per worker it spans), an ActiveSpeakerObserver and its
 * Peers (local ones, and remote ones whose producers arrive over region pipes). close() is
 * idempotent and cascades to the peers, the observer and the routers; maps follow mediasoup's
 * observer 'close' events, so routers closed from outside or by a worker's death are seen too.
 *
 * - In-node spread (./spread.ts): each peer is assigned to one of the room's routers; when the
 *   policy says so, the next peer gets a new router on another worker. A peer consuming a
 *   producer that lives on another router gets it through `router.pipeToRouter()` (one pipe per
 *   producer and router, cached).
 * - Audio producers feed the room's ActiveSpeakerObserver (on the first router; producers on
 *   other routers are piped to it), which orders `speakerOrder` for last-N.
 * - The room closes when its last (local) peer leaves ('empty'), and with 'workerdied' if a
 *   worker hosting one of its routers dies (the WorkerPool reports the room id as lost).
 *
 * Owner events (`RoomEvents`) are for the signaling layer and the cascade; `observer`
 * (`RoomObserverEvents`) reports new peers and the close, for monitoring.
 */
import type { types as ms } from 'mediasoup';

import { SfuError } from './errors.ts';
import { assertLastN } from './last-n.ts';
import { Peer, type JoinOptions, type PeerContext, type PeerOrigin, type PeerRoom, type WebRtcTransportDefaults } from './peer.ts';
import { aggregateRoomStats, type RoomQualityStats } from './quality-stats.ts';
import { placePeer, type SpreadPolicy } from './spread.ts';
import { TypedEmitter } from './typed-emitter.ts';
import type { PoolWorker, WorkerPool } from './worker-pool.ts';

export interface PipeOptions {
  /** IP the pipe transports between a room's routers listen on (default: the pool's listenIp). */
  listenIp?: string;
  enableSrtp?: boolean;
  enableRtx?: boolean;
}

export type RoomCloseReason = 'empty' | 'closed' | 'workerdied' | 'routerclosed';

export type RoomEvents = {
  peerjoined: [Peer<Room>];
  peerleft: [Peer<Room>];
  /** A peer produced: the signaling layer typically lets the other peers consume it. */
  newproducer: [Peer<Room>, ms.Producer];
  producerclose: [Peer<Room>, ms.Producer];
  /** Dominant speaker changed. */
  activespeaker: [{ peerId: string; producerId: string }];
  /** The room spread to another worker. */
  routeradded: [{ router: ms.Router; worker: PoolWorker }];
  /** A peer (local, or remote through a region pipe) added a data producer. */
  newdataproducer: [Peer<Room>, ms.DataProducer];
  dataproducerclose: [Peer<Room>, ms.DataProducer];
  close: [RoomCloseReason];
};

export type RoomObserverEvents = {
  /** A local peer joined, or a remote peer's first producer arrived (`peer.remote`). */
  newpeer: [Peer<Room>];
  close: [];
};

export interface PipedProducerOrigin extends PeerOrigin {
  /** The producing peer's id on its origin node. */
  peerId: string;
}

/** @internal What a Room gets from its RoomRouter (the resolved options). */
export interface RoomContext {
  pool: WorkerPool;
  mediaCodecs: ms.RouterRtpCodecCapability[];
  activeSpeakerIntervalMs: number;
  spread: SpreadPolicy | undefined;
  webRtcTransport: WebRtcTransportDefaults;
  keyFrameRequestDelayMs: number;
  keyFramesAhead: boolean;
  pipe: Required<Pick<PipeOptions, 'listenIp'>> & PipeOptions;
}

/** One of a room's routers and the pooled worker it lives on. */
export interface RoomRouterSlot {
  readonly router: ms.Router;
  readonly worker: PoolWorker;
  /** Peers assigned to this router. */
  readonly peers: ReadonlySet<Peer<Room>>;
  /** Live consumers on this router (peers' consumers and pipe consumers). */
  readonly consumers: number;
}

interface Slot extends RoomRouterSlot {
  peers: Set<Peer<Room>>;
  consumers: number;
}

interface ProducerEntry {
  producer: ms.Producer;
  peer: Peer<Room>;
  slot: Slot;
}

interface DataProducerEntry {
  dataProducer: ms.DataProducer;
  peer: Peer<Room>;
  slot: Slot;
}

export class Room extends TypedEmitter<RoomEvents> implements PeerRoom {
  readonly id: string;
  readonly observer = new TypedEmitter<RoomObserverEvents>();
  readonly #ctx: RoomContext;
  readonly #slots: Slot[] = [];
  readonly #peers = new Map<string, Peer<Room>>();
  readonly #producers = new Map<string, ProducerEntry>();
  readonly #dataProducers = new Map<string, DataProducerEntry>();
  /** Peers of other nodes whose producers arrived over region pipes. */
  readonly #remotePeers = new Map<string, Peer<Room>>();
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

  get peers(): ReadonlyMap<string, Peer<Room>> {
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
  get remotePeers(): ReadonlyMap<string, Peer<Room>> {
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
  adoptPipedProducer(producer: ms.Producer, router: ms.Router, origin: PipedProducerOrigin): Peer<Room> {
    const { peer, slot } = this.#remoteSlot(router, origin);
    peer.adoptProducer(producer);
    this.#registerProducer(peer, slot, producer);
    return peer;
  }

  /** Same as adoptPipedProducer() for a data producer. */
  adoptPipedDataProducer(dataProducer: ms.DataProducer, router: ms.Router, origin: PipedProducerOrigin): Peer<Room> {
    const { peer, slot } = this.#remoteSlot(router, origin);
    peer.adoptDataProducer(dataProducer);
    this.#registerDataProducer(peer, slot, dataProducer);
    return peer;
  }

  #remoteSlot(router: ms.Router, origin: PipedProducerOrigin): { peer: Peer<Room>; slot: Slot } {
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
      const created = new Peer(origin.peerId, this, this.#peerContext(slot), {}, { nodeId: origin.nodeId, region: origin.region });
      this.#remotePeers.set(origin.peerId, created);
      this.#addToOrder(created.id);
      created.once('close', () => {
        if (this.#remotePeers.get(created.id) === created) this.#remotePeers.delete(created.id);
        this.#removeFromOrder(created.id);
      });
      this.observer.safeEmit('newpeer', created);
      peer = created;
    }
    return { peer, slot };
  }

  /**
   * What a peer on `slot` gets from the room. (A remote peer has no transports, so it produces
   * nothing itself: adoptPipedProducer() registers its producers.)
   */
  #peerContext(slot: Slot): PeerContext<Room> {
    return {
      pool: this.#ctx.pool,
      webRtcTransport: this.#ctx.webRtcTransport,
      keyFrameRequestDelayMs: this.#ctx.keyFrameRequestDelayMs,
      keyFramesAhead: this.#ctx.keyFramesAhead,
      router: slot.router,
      worker: slot.worker,
      registerProducer: (peer, producer) => this.#registerProducer(peer, slot, producer),
      registerDataProducer: (peer, dataProducer) => this.#registerDataProducer(peer, slot, dataProducer),
      producerPeerId: (producerId) => this.#producers.get(producerId)?.peer.id,
      producerIsPiped: (producerId) => this.#producers.get(producerId)?.peer.remote ?? false,
      producer: (producerId) => this.#producers.get(producerId)?.producer,
      hasDataProducer: (dataProducerId) => this.#dataProducers.has(dataProducerId),
      ensurePiped: (producerId) => this.#ensurePiped(producerId, slot),
      ensureDataPiped: (dataProducerId) => this.#ensureDataPiped(dataProducerId, slot),
    };
  }

  getPeer(peerId: string): Peer<Room> | undefined {
    return this.#peers.get(peerId);
  }

  /** Adds a peer, assigning it a router (spreading to another worker if needed). */
  async join(peerId: string, options: JoinOptions = {}): Promise<Peer<Room>> {
    if (this.#closed) throw new SfuError('CLOSED', `room ${this.id} is closed`);
    if (this.#peers.has(peerId)) throw new SfuError('PEER_EXISTS', `peer ${peerId} already in room ${this.id}`);
    if (options.lastN !== undefined) assertLastN(options.lastN);
    this.#pendingJoins++;
    let joined = false;
    try {
      const slot = await this.#slotForNewPeer();
      if (this.#closed) throw new SfuError('CLOSED', `room ${this.id} is closed`);
      if (this.#peers.has(peerId)) throw new SfuError('PEER_EXISTS', `peer ${peerId} already in room ${this.id}`);
      const peer = new Peer(peerId, this, this.#peerContext(slot), options);
      this.#peers.set(peerId, peer);
      this.#addToOrder(peerId);
      slot.peers.add(peer);
      peer.once('close', () => this.#onPeerClosed(peer, slot));
      joined = true;
      this.observer.safeEmit('newpeer', peer);
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
    this.observer.safeEmit('close');
    this.safeEmit('close', reason);
  }

  #closeIfEmpty(): void {
    if (!this.#closed && this.#peers.size === 0 && this.#pendingJoins === 0) this.close('empty');
  }

  #onPeerClosed(peer: Peer<Room>, slot: Slot): void {
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
    const used = new Set(this.#slots.map((s) => s.worker));
    const place = (unusedWorkers: number): { spread: boolean; slot: Slot } => {
      const decision = placePeer(this.#slots.map((s) => s.consumers), this.#ctx.spread, unusedWorkers);
      const slot = this.#slots[decision.router];
      if (!slot) throw new SfuError('CLOSED', `room ${this.id} is closed`);
      return { spread: decision.spread, slot };
    };
    const placed = place(this.#ctx.pool.workers.filter((w) => !used.has(w)).length);
    if (!placed.spread) return placed.slot;
    this.#addingRouter ??= this.#addRouter(this.#ctx.pool.leastLoaded({ exclude: used })).finally(() => {
      this.#addingRouter = undefined;
    });
    try {
      return await this.#addingRouter;
    } catch {
      // Could not spread: the existing router with the fewest consumers.
      return place(0).slot;
    }
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

  #registerProducer(peer: Peer<Room>, slot: Slot, producer: ms.Producer): void {
    this.#producers.set(producer.id, { producer, peer, slot });
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      for (const key of [...this.#pipes.keys()]) if (key.startsWith(`${producer.id} `)) this.#pipes.delete(key);
      if (!this.#closed) this.safeEmit('producerclose', peer, producer);
    });
    if (producer.kind === 'audio') void this.#observeSpeaker(producer, slot);
    this.safeEmit('newproducer', peer, producer);
  }

  #registerDataProducer(peer: Peer<Room>, slot: Slot, dataProducer: ms.DataProducer): void {
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
