import type { types as mc } from 'mediasoup-client';
import type { ProducerInfoMessage, ServerEvents, SessionSnapshot } from '../shared/signaling.ts';
import { EdgeSession, type EdgeSessionOptions, isFatalConnectError, SignalingError, type LocalTrack, type PublishOptions, type RemoteConsumer } from './edge-session.ts';
import { type Listener, TypedEmitter } from './events.ts';
import { type Allocation, GeoSfuClientError } from './router-api.ts';

/** Where the room is connected. */
export interface EdgeInfo {
  nodeId: string;
  region: string;
  homeRegion: string;
  allocationId: string;
}

export interface RemoteTrack {
  peerId: string;
  producerId: string;
  kind: 'audio' | 'video';
  /** Region of the publisher's edge. */
  region: string;
  track: MediaStreamTrack;
  consumer: mc.Consumer;
  paused: boolean;
}

type Msg<K extends keyof ServerEvents> = Parameters<ServerEvents[K]>[0];

export interface RoomEvents {
  participantJoined: { peerId: string; region: string; displayName?: string };
  participantLeft: { peerId: string };
  /**
   * A remote track is being received. After a move or a failover the others' producers are consumed
   * again on the new edge: a `trackAdded` for a producer id already announced replaces that track
   * (no `trackRemoved` in between); producers the new edge does not carry get `trackRemoved`.
   */
  trackAdded: RemoteTrack;
  trackRemoved: { peerId: string; producerId: string; kind: 'audio' | 'video' };
  trackPaused: { peerId: string; producerId: string; paused: boolean };
  activeSpeaker: Msg<'activeSpeaker'>;
  quality: Msg<'quality'>;
  /** The router moved this participant (e.g. its node drains): the SDK is moving it make-before-break. */
  moved: { reason: string; from: EdgeInfo; excludeNodeIds: string[] };
  /** The connection to the edge is lost; the SDK is resuming it or moving to another edge. */
  reconnecting: { reason: string; edge: EdgeInfo };
  /** Back: `resumed` on the same edge (SFU state kept), or rejoined (and republished) on `edge`. `gapMs` since the loss was noticed. */
  reconnected: { edge: EdgeInfo; resumed: boolean; gapMs: number; previous: EdgeInfo };
  /** ICE/DTLS state of the current edge's transports ('connected', 'failed'...). */
  transportState: { direction: 'send' | 'recv'; state: string; nodeId: string };
  /** A failure the SDK could not handle by itself (it keeps trying where that makes sense). */
  error: { error: Error; fatal: boolean };
  closed: { reason: string };
}

/** Listeners attached before joining, so that nothing from the join itself is missed. */
export type RoomListeners = { [K in keyof RoomEvents]?: Listener<RoomEvents[K]> };

export interface RoomOptions {
  participantId: string;
  displayName?: string;
  /** Allocates again for a failover (the client passes its own /allocate with the original credential). */
  reallocate: (excludeNodeIds: string[]) => Promise<Allocation>;
  session: Omit<EdgeSessionOptions, 'allocation' | 'hooks' | 'displayName'>;
  /** Kept across edges. */
  lastN?: number;
  /** How long to try resuming the same edge before allocating another. Default 1 500 ms. */
  resumeBudgetMs?: number;
  /** Give up failing over after this long without success (then `closed`). Default 120 000 ms. */
  failoverGiveUpMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let localIds = 0;
const FAILED_NODE_MEMORY_MS = 60_000;
const UNREACHABLE_GIVE_UP_MS = 500;
const CONSUME_RETRY_CODES = new Set(['NOT_FOUND', 'CANNOT_CONSUME', 'TIMEOUT', 'INTERNAL']);
const CONSUME_RETRIES = 4;

/**
 * A joined room: publishes the application's tracks, consumes everyone else's, and keeps doing
 * so across failures — resume on the same edge while the resume credential works, else allocate
 * again excluding the failed node, rejoin and republish; on `moved`, connect to the new edge and
 * publish there before leaving the old one.
 */
export class GeoSfuRoom extends TypedEmitter<RoomEvents> {
  readonly roomId: string;
  readonly participantId: string;
  readonly #o: RoomOptions;
  #session: EdgeSession;
  readonly #local = new Map<string, LocalTrack>();
  readonly #peers = new Map<string, { region: string; displayName?: string }>();
  /** Producer id → what the app has been told about (trackAdded). */
  readonly #announced = new Map<string, RemoteTrack>();
  /** Nodes this participant failed on recently (node id → when), excluded from reallocations for FAILED_NODE_MEMORY_MS. */
  readonly #failedNodes = new Map<string, number>();
  /** Producers announced closed (no consume retries for them). */
  readonly #closedProducers = new Set<string>();
  /** worker_died `moved`s by node (times). */
  readonly #workerDeaths = new Map<string, number[]>();
  #recovering: Promise<void> | null = null;
  #closed = false;

  private constructor(session: EdgeSession, o: RoomOptions) {
    super();
    this.#session = session;
    this.roomId = session.allocation.roomId;
    this.participantId = o.participantId;
    this.#o = o;
  }

  /** Joins on `allocation`'s edge and publishes `tracks`. */
  static async join(
    allocation: Allocation,
    tracks: Array<MediaStreamTrack | { track: MediaStreamTrack; options?: PublishOptions }>,
    o: RoomOptions,
    listeners: RoomListeners = {},
  ): Promise<GeoSfuRoom> {
    const session = new EdgeSession({ ...o.session, allocation, displayName: o.displayName, lastN: o.lastN });
    const room = new GeoSfuRoom(session, o);
    for (const [event, listener] of Object.entries(listeners)) room.on(event as keyof RoomEvents, listener as Listener<unknown> as never);
    room.#wire(session);
    for (const t of tracks) {
      const spec = 'kind' in t ? { track: t, options: {} } : { track: t.track, options: t.options ?? {} };
      room.#local.set(`local-${++localIds}`, { localId: `local-${localIds}`, track: spec.track, options: spec.options, paused: false });
    }
    try {
      await session.open({ send: room.#local.size > 0 });
      await room.#populate(session, session.joined!.producers);
    } catch (err) {
      // A failure that started a recovery (e.g. `moved: worker_died` while publishing): the room
      // is joined once the recovery succeeds.
      const recovering = room.#recovering;
      if (recovering) {
        await recovering;
        if (!room.#closed) return room;
      }
      await session.close({ leave: true }).catch(() => undefined);
      throw err;
    }
    return room;
  }

  get edge(): EdgeInfo {
    return edgeOf(this.#session);
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Remote participants currently known. */
  get participants(): Array<{ peerId: string; region: string; displayName?: string }> {
    return [...this.#peers].map(([peerId, p]) => ({ peerId, ...p }));
  }
  get remoteTracks(): RemoteTrack[] {
    return [...this.#announced.values()];
  }
  /** This participant's producers on the current edge, by local id. */
  get localProducers(): Array<{ localId: string; kind: string; producerId: string | null }> {
    return [...this.#local.values()].map((l) => ({ localId: l.localId, kind: l.track.kind, producerId: this.#session.producers.get(l.localId)?.id ?? null }));
  }
  /** Consumers of the current edge (for stats). */
  get consumers(): mc.Consumer[] {
    return [...this.#session.consumers.values()].map((c) => c.consumer);
  }
  get producers(): mc.Producer[] {
    return [...this.#session.producers.values()];
  }

  /** WebRTC stats of the current edge's send and recv transports (inbound-rtp for what this participant receives). */
  getStats(): Promise<{ send: RTCStatsReport | null; recv: RTCStatsReport | null }> {
    return this.#session.getStats();
  }

  /** Publishes a track (simulcast for video by default); returns its local id (stable across edges). */
  async publish(track: MediaStreamTrack, options: PublishOptions = {}): Promise<string> {
    const local: LocalTrack = { localId: `local-${++localIds}`, track, options, paused: false };
    this.#local.set(local.localId, local);
    await this.#session.produce(local);
    return local.localId;
  }

  async unpublish(localId: string): Promise<void> {
    this.#local.delete(localId);
    await this.#session.unpublish(localId);
  }

  async setPaused(localId: string, paused: boolean): Promise<void> {
    const local = this.#local.get(localId);
    if (!local) return;
    local.paused = paused;
    await this.#session.setPaused(localId, paused);
  }

  /** Simulcast: which layer to receive of a remote video producer. */
  setPreferredLayers(producerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    return this.#session.setPreferredLayers(producerId, spatialLayer, temporalLayer);
  }

  async leave(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#session.close({ leave: true });
    this.emit('closed', { reason: 'left' });
  }

  // --- wiring of one edge session ---

  #wire(session: EdgeSession): EdgeSession {
    const hooks: EdgeSessionOptions['hooks'] = {
      onEvent: (event, msg) => this.#onEvent(session, event, msg),
      onLost: (reason) => this.#onLost(session, reason),
      onTransportState: (direction, state) => {
        if (session === this.#session) this.emit('transportState', { direction, state, nodeId: session.nodeId });
        if (state === 'failed' && session === this.#session && !this.#recovering) {
          this.#session.restartIce().catch((err: Error) => this.emit('error', { error: err, fatal: false }));
        }
      },
    };
    session.setHooks(hooks);
    return session;
  }

  #isSelf(peerId: string): boolean {
    return peerId === this.participantId;
  }

  #onEvent<K extends keyof ServerEvents>(session: EdgeSession, event: K, raw: Msg<K>): void {
    if (this.#closed) return;
    const current = session === this.#session;
    switch (event) {
      case 'moved': {
        const msg = raw as Msg<'moved'>;
        if (!current) return;
        this.emit('moved', { reason: msg.reason, from: edgeOf(session), excludeNodeIds: msg.excludeNodeIds });
        // worker_died: the SFU state is gone and the server disconnects us; anything else: make-before-break.
        // The node replaces a dead worker, so it is excluded only when that keeps happening there.
        const deaths = (this.#workerDeaths.get(session.nodeId) ?? []).filter((at) => performance.now() - at < FAILED_NODE_MEMORY_MS);
        if (msg.reason === 'worker_died') this.#workerDeaths.set(session.nodeId, [...deaths, performance.now()]);
        const exclude = msg.excludeNodeIds.length > 0 ? msg.excludeNodeIds : msg.reason === 'worker_died' && deaths.length >= 1 ? [session.nodeId] : [];
        this.#recover(session, `moved: ${msg.reason}`, { exclude, makeBeforeBreak: msg.reason !== 'worker_died', tryResume: false });
        return;
      }
      case 'peerJoined': {
        const msg = raw as Msg<'peerJoined'>;
        if (!current || this.#isSelf(msg.peerId)) return;
        this.#addPeer(msg.peerId, msg.region, msg.displayName);
        return;
      }
      case 'peerLeft': {
        const msg = raw as Msg<'peerLeft'>;
        if (!current || this.#isSelf(msg.peerId)) return;
        this.#removePeer(msg.peerId);
        return;
      }
      case 'newProducer': {
        const msg = raw as Msg<'newProducer'>;
        if (!current || this.#isSelf(msg.peerId)) return;
        void this.#consume(session, msg);
        return;
      }
      case 'producerClosed':
      case 'consumerClosed': {
        const { producerId } = raw as { producerId: string };
        if (!current) return;
        if (event === 'producerClosed') this.#closedProducers.add(producerId);
        session.dropConsumer(producerId);
        this.#unannounce(producerId);
        return;
      }
      case 'producerPaused':
      case 'producerResumed': {
        const { producerId } = raw as { producerId: string };
        const track = this.#announced.get(producerId);
        if (!current || !track) return;
        track.paused = event === 'producerPaused';
        this.emit('trackPaused', { peerId: track.peerId, producerId, paused: track.paused });
        return;
      }
      case 'activeSpeaker':
        if (current) this.emit('activeSpeaker', raw as Msg<'activeSpeaker'>);
        return;
      case 'quality':
        if (current) this.emit('quality', raw as Msg<'quality'>);
        return;
    }
  }

  #addPeer(peerId: string, region: string, displayName?: string): void {
    const known = this.#peers.get(peerId);
    this.#peers.set(peerId, { region, ...(displayName !== undefined ? { displayName } : {}) });
    if (!known) this.emit('participantJoined', { peerId, region, ...(displayName !== undefined ? { displayName } : {}) });
  }

  #removePeer(peerId: string): void {
    if (!this.#peers.delete(peerId)) return;
    for (const t of [...this.#announced.values()]) if (t.peerId === peerId) this.#unannounce(t.producerId);
    this.emit('participantLeft', { peerId });
  }

  async #consume(session: EdgeSession, info: ProducerInfoMessage): Promise<void> {
    // A producer announced by the cascade can reach this edge a moment after it is listed: retry
    // the refusals that can be transient, unless the producer closes meanwhile.
    for (let attempt = 0; ; attempt++) {
      try {
        const remote = await session.consume(info);
        if (!remote || session !== this.#session || this.#closed) return;
        this.#announce(remote);
        return;
      } catch (err) {
        const transient = err instanceof SignalingError && CONSUME_RETRY_CODES.has(err.code);
        const gone = session.closed || session !== this.#session || this.#closed || this.#closedProducers.has(info.producerId);
        if (gone) return;
        if (!transient || attempt >= CONSUME_RETRIES) {
          this.emit('error', { error: err as Error, fatal: false });
          return;
        }
        await sleep(200 * 2 ** attempt);
      }
    }
  }

  #announce(remote: RemoteConsumer): void {
    const previous = this.#announced.get(remote.info.producerId);
    if (previous?.consumer === remote.consumer) return;
    if (!this.#peers.has(remote.info.peerId)) this.#addPeer(remote.info.peerId, remote.info.region);
    const track: RemoteTrack = {
      peerId: remote.info.peerId,
      producerId: remote.info.producerId,
      kind: remote.info.kind,
      region: remote.info.region,
      track: remote.consumer.track,
      consumer: remote.consumer,
      paused: remote.info.paused,
    };
    this.#announced.set(track.producerId, track);
    this.emit('trackAdded', track);
  }

  #unannounce(producerId: string): void {
    const t = this.#announced.get(producerId);
    if (!t) return;
    this.#announced.delete(producerId);
    this.emit('trackRemoved', { peerId: t.peerId, producerId, kind: t.kind });
  }

  /** After join (or rejoin) on `session`: peers, own tracks, everyone else's producers. */
  async #populate(session: EdgeSession, producers: ProducerInfoMessage[]): Promise<void> {
    const peers = session.peers().filter((p) => !this.#isSelf(p.peerId));
    for (const p of peers) this.#addPeer(p.peerId, p.region, p.displayName);
    for (const local of this.#local.values()) if (!session.producers.has(local.localId)) await session.produce(local);
    await Promise.all(producers.filter((p) => !this.#isSelf(p.peerId)).map((p) => this.#consume(session, p)));
  }

  // --- failures ---

  #onLost(session: EdgeSession, reason: string): void {
    if (this.#closed || session !== this.#session) return;
    this.#recover(session, `disconnected: ${reason}`, { exclude: [session.nodeId], makeBeforeBreak: false, tryResume: true });
  }

  #recover(session: EdgeSession, reason: string, how: { exclude: string[]; makeBeforeBreak: boolean; tryResume: boolean }): void {
    if (this.#recovering || this.#closed) return;
    const started = performance.now();
    const previous = edgeOf(session);
    this.emit('reconnecting', { reason, edge: previous });
    this.#recovering = (async () => {
      if (how.tryResume && session.welcome && session.welcome.resumeGraceMs > 0) {
        const resumed = await this.#tryResume(session);
        if (resumed) {
          this.emit('reconnected', { edge: edgeOf(session), resumed: true, gapMs: Math.round(performance.now() - started), previous });
          return;
        }
      }
      for (const id of how.exclude) this.#failedNodes.set(id, performance.now());
      await this.#failover(session, how.makeBeforeBreak, started, previous);
    })()
      .catch((err: Error) => {
        this.emit('error', { error: err, fatal: true });
        void this.#session.close({ leave: false });
        this.#closed = true;
        this.emit('closed', { reason: `failover failed: ${err.message}` });
      })
      .finally(() => (this.#recovering = null));
  }

  async #tryResume(session: EdgeSession): Promise<boolean> {
    const deadline = performance.now() + (this.#o.resumeBudgetMs ?? 1_500);
    let delay = 100;
    // The node itself unreachable (connection refused or closed before any answer) several times
    // over UNREACHABLE_GIVE_UP_MS: it is gone, do not wait for the whole budget.
    let unreachableSince: number | null = null;
    let unreachable = 0;
    while (performance.now() < deadline && !this.#closed) {
      try {
        const snapshot = await session.resume();
        await this.#reconcile(session, snapshot);
        return true;
      } catch (err) {
        if (isFatalConnectError(err)) return false;
        if (err instanceof SignalingError && err.code === 'CONNECT_FAILED') {
          unreachableSince ??= performance.now();
          if (++unreachable >= 3 && performance.now() - unreachableSince >= UNREACHABLE_GIVE_UP_MS) return false;
        } else {
          unreachableSince = null;
          unreachable = 0;
        }
        await sleep(Math.min(delay, Math.max(0, deadline - performance.now())));
        delay = Math.min(delay * 2, 500);
      }
    }
    return false;
  }

  /** After a resume: events sent while disconnected are not replayed; the snapshot says what is there. */
  async #reconcile(session: EdgeSession, snapshot: SessionSnapshot | undefined): Promise<void> {
    if (!snapshot) return;
    const peers = new Set(snapshot.peers.filter((p) => !this.#isSelf(p.peerId)).map((p) => p.peerId));
    for (const peerId of [...this.#peers.keys()]) if (!peers.has(peerId)) this.#removePeer(peerId);
    for (const p of snapshot.peers) if (!this.#isSelf(p.peerId)) this.#addPeer(p.peerId, p.region, p.displayName);
    const live = new Set(snapshot.producers.map((p) => p.producerId));
    const serverConsumers = new Set(snapshot.consumers.map((c) => c.consumerId));
    for (const [producerId, remote] of [...session.consumers]) {
      if (!live.has(producerId) || !serverConsumers.has(remote.consumer.id)) {
        session.dropConsumer(producerId);
        this.#unannounce(producerId);
      }
    }
    const ownOnServer = new Set(snapshot.producerIds);
    for (const local of this.#local.values()) {
      const producer = session.producers.get(local.localId);
      if (producer && !ownOnServer.has(producer.id)) {
        producer.close();
        session.producers.delete(local.localId);
      }
      if (!session.producers.has(local.localId)) await session.produce(local);
    }
    await Promise.all(snapshot.producers.filter((p) => !this.#isSelf(p.peerId)).map((p) => this.#consume(session, p)));
  }

  async #failover(old: EdgeSession, makeBeforeBreak: boolean, started: number, previous: EdgeInfo): Promise<void> {
    if (!makeBeforeBreak) await old.close({ leave: false });
    const giveUpAt = performance.now() + (this.#o.failoverGiveUpMs ?? 120_000);
    let delay = 250;
    for (;;) {
      if (this.#closed) return;
      let next: EdgeSession | null = null;
      try {
        for (const [id, at] of this.#failedNodes) if (performance.now() - at > FAILED_NODE_MEMORY_MS) this.#failedNodes.delete(id);
        const allocation = await this.#o.reallocate([...this.#failedNodes.keys()]);
        next = this.#wire(new EdgeSession({ ...this.#o.session, allocation, displayName: this.#o.displayName, lastN: this.#o.lastN }));
        await next.open({ send: this.#local.size > 0 });
        // Switch: from now on events come from the new edge. Own tracks first, then the others'.
        const oldAnnounced = new Map(this.#announced);
        this.#session = next;
        this.#announced.clear();
        await this.#populate(next, next.joined!.producers);
        // Tracks the new edge does not carry (any more) are gone; the others were re-announced.
        for (const [producerId, t] of oldAnnounced) if (!this.#announced.has(producerId)) this.emit('trackRemoved', { peerId: t.peerId, producerId, kind: t.kind });
        const nowPeers = new Set(next.peers().map((p) => p.peerId));
        for (const t of this.#announced.values()) nowPeers.add(t.peerId);
        for (const peerId of [...this.#peers.keys()]) if (!nowPeers.has(peerId)) this.#removePeer(peerId);
        if (makeBeforeBreak) await old.close({ leave: true });
        this.emit('reconnected', { edge: edgeOf(next), resumed: false, gapMs: Math.round(performance.now() - started), previous });
        return;
      } catch (err) {
        if (next) {
          if (this.#session === next) this.#session = old;
          this.#failedNodes.set(next.nodeId, performance.now());
          await next.close({ leave: false }).catch(() => undefined);
        }
        // Refused (bad or expired grant, bad request): trying again will not help.
        if (err instanceof GeoSfuClientError && (err.status === 400 || err.status === 401 || err.status === 403)) throw err;
        if (performance.now() > giveUpAt) throw err;
        this.emit('error', { error: err as Error, fatal: false });
        await sleep(delay);
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}

function edgeOf(session: EdgeSession): EdgeInfo {
  return { nodeId: session.nodeId, region: session.region, homeRegion: session.allocation.homeRegion, allocationId: session.allocation.allocationId };
}
