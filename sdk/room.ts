import type { types as mc } from 'mediasoup-client';
import type { ParticipantPermissions, ProducerInfoMessage, ServerEvents, SessionSnapshot } from '../shared/signaling.ts';
import {
  EdgeSession,
  type EdgeSessionOptions,
  isFatalConnectError,
  isFinalRequestError,
  SignalingError,
  type LocalTrack,
  type PublishOptions,
  type RemoteConsumer,
} from './edge-session.ts';
import { type Listener, TypedEmitter } from './events.ts';
import { P2pMesh, type P2pMeshHooks, type P2pRemoteTrack } from './p2p-mesh.ts';
import { type Allocation, GeoSfuClientError, NO_ALLOWED_REGION, type P2pAllocation } from './router-api.ts';

/** Where the room is connected: an SFU edge, or (P2P fallback) directly to the others, with `nodeId`, `region` and `homeRegion` all "p2p". */
export interface EdgeInfo {
  mode: 'sfu' | 'p2p';
  nodeId: string;
  region: string;
  homeRegion: string;
  allocationId: string;
}

export interface RemoteTrack {
  peerId: string;
  producerId: string;
  kind: 'audio' | 'video';
  /** Region of the publisher's edge ("p2p" for a track received directly from the publisher). */
  region: string;
  track: MediaStreamTrack;
  /** The SFU consumer; null for a track received directly (P2P fallback). */
  consumer: mc.Consumer | null;
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
  /**
   * The router moved this participant (e.g. its node drains; or `p2p_to_sfu`: a region can take the
   * P2P room again): the SDK is moving it make-before-break.
   */
  moved: { reason: string; from: EdgeInfo; excludeNodeIds: string[] };
  /** The connection to the edge is lost; the SDK is resuming it or moving to another edge. */
  reconnecting: { reason: string; edge: EdgeInfo };
  /** Back: `resumed` on the same edge (SFU state kept), or rejoined (and republished) on `edge`. `gapMs` since the loss was noticed. */
  reconnected: { edge: EdgeInfo; resumed: boolean; gapMs: number; previous: EdgeInfo };
  /** ICE/DTLS state of the current edge's transports ('connected', 'failed'...). */
  transportState: { direction: 'send' | 'recv'; state: string; nodeId: string };
  /**
   * A failure the SDK could not handle by itself (it keeps trying where that makes sense). A
   * GeoSfuClientError with code `NO_ALLOWED_REGION`: no region the room's region policy allows can
   * take this participant now (the router never places it elsewhere); the SDK tries again after
   * the router's Retry-After until `failoverGiveUpMs`.
   */
  error: { error: Error; fatal: boolean };
  /**
   * The room is closed for good: `left`, `failover failed: …`, or (final, nothing is retried)
   * `removed` (an admin removed this participant) / `replaced` (a newer session of this participant,
   * e.g. on another device, carries its media now).
   */
  closed: { reason: string };
}

/** Listeners attached before joining, so that nothing from the join itself is missed. */
export type RoomListeners = { [K in keyof RoomEvents]?: Listener<RoomEvents[K]> };

export interface RoomOptions {
  participantId: string;
  /** The router: the P2P fallback's relay is on it. */
  routerUrl: string;
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
/** After moving from P2P to the SFU, a direct link is kept until its peer is received through the SFU, at most this long. */
const P2P_OVERLAP_MS = 10_000;

/**
 * A joined room: publishes the application's tracks, consumes everyone else's, and keeps doing
 * so across failures — resume on the same edge while the resume credential works, else allocate
 * again excluding the failed node, rejoin and republish; on `moved`, connect to the new edge and
 * publish there before leaving the old one.
 *
 * P2P fallback: on a `mode: "p2p"` allocation (no region can take the room) the room connects to
 * the others directly (P2pMesh) with the same API and events; when the relay says a region can
 * take the room, it allocates again, joins the SFU and closes each direct link once that peer is
 * received through the SFU.
 */
export class GeoSfuRoom extends TypedEmitter<RoomEvents> {
  readonly roomId: string;
  readonly participantId: string;
  readonly #o: RoomOptions;
  /** The SFU edge; null while the room is P2P only. */
  #session: EdgeSession | null;
  /** The direct mesh (P2P fallback); null on an SFU, both while moving from P2P to the SFU. */
  #mesh: P2pMesh | null = null;
  #meshCloseTimer: ReturnType<typeof setTimeout> | null = null;
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

  private constructor(session: EdgeSession | null, allocation: Allocation, o: RoomOptions) {
    super();
    this.#session = session;
    this.roomId = allocation.roomId;
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
    const session = allocation.mode === 'sfu' ? new EdgeSession({ ...o.session, allocation, displayName: o.displayName, lastN: o.lastN }) : null;
    const room = new GeoSfuRoom(session, allocation, o);
    for (const [event, listener] of Object.entries(listeners)) room.on(event as keyof RoomEvents, listener as Listener<unknown> as never);
    for (const t of tracks) {
      const spec = 'kind' in t ? { track: t, options: {} } : { track: t.track, options: t.options ?? {} };
      room.#local.set(`local-${++localIds}`, { localId: `local-${localIds}`, track: spec.track, options: spec.options, paused: false });
    }
    if (!session) {
      await room.#openMesh(allocation as P2pAllocation);
      return room;
    }
    room.#wire(session);
    try {
      await session.open({ send: room.#local.size > 0 });
      await room.#populate(session);
    } catch (err) {
      // A failure that started a recovery (e.g. `moved: worker_died` while publishing): the room
      // is joined once the recovery succeeds.
      const recovering = room.#recovering;
      if (recovering) {
        await recovering;
        if (!room.#closed) return room;
      }
      // Failed to join (e.g. FORBIDDEN: tracks to publish without the permission): the room is
      // over, so the server's disconnect after `leave` is not a connection loss to recover from.
      room.#closed = true;
      await session.close({ leave: true }).catch(() => undefined);
      throw err;
    }
    return room;
  }

  get edge(): EdgeInfo {
    return this.#session ? edgeOf(this.#session) : p2pEdgeOf(this.#mesh!);
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
    return [...this.#local.values()].map((l) => ({ localId: l.localId, kind: l.track.kind, producerId: this.#session?.producers.get(l.localId)?.id ?? null }));
  }
  /** Consumers of the current edge (for stats); none in P2P. */
  get consumers(): mc.Consumer[] {
    return [...(this.#session?.consumers.values() ?? [])].map((c) => c.consumer);
  }
  get producers(): mc.Producer[] {
    return [...(this.#session?.producers.values() ?? [])];
  }
  /**
   * What this participant may do, as its edge enforces it (the join token's permissions, from the
   * join answer): without `publish` there is no send transport and publish() fails with FORBIDDEN;
   * without `subscribe` no recv transport and nothing is consumed. A P2P room has no edge to ask:
   * everything.
   */
  get permissions(): ParticipantPermissions {
    return this.#session?.permissions ?? { publish: true, subscribe: true, publishData: true };
  }

  /**
   * WebRTC stats of the current edge's send and recv transports (inbound-rtp for what this
   * participant receives); in P2P, `recv` has every direct link's stats (ids prefixed with the peer id).
   */
  async getStats(): Promise<{ send: RTCStatsReport | null; recv: RTCStatsReport | null }> {
    if (this.#session) return this.#session.getStats();
    return { send: null, recv: this.#mesh ? await this.#mesh.getStats() : null };
  }

  /** Publishes a track (simulcast for video by default); returns its local id (stable across edges). */
  async publish(track: MediaStreamTrack, options: PublishOptions = {}): Promise<string> {
    if (!this.permissions.publish) throw new SignalingError('FORBIDDEN', `publish: participant ${this.participantId} may not publish in room ${this.roomId}`);
    const local: LocalTrack = { localId: `local-${++localIds}`, track, options, paused: false };
    this.#local.set(local.localId, local);
    this.#mesh?.publish(local);
    await this.#session?.produce(local);
    return local.localId;
  }

  async unpublish(localId: string): Promise<void> {
    this.#local.delete(localId);
    this.#mesh?.unpublish(localId);
    await this.#session?.unpublish(localId);
  }

  async setPaused(localId: string, paused: boolean): Promise<void> {
    const local = this.#local.get(localId);
    if (!local) return;
    local.paused = paused;
    await this.#mesh?.setPaused(local, paused);
    await this.#session?.setPaused(localId, paused);
  }

  /** Simulcast: which layer to receive of a remote video producer (P2P tracks have a single layer: no-op). */
  async setPreferredLayers(producerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    if (this.#session?.consumers.has(producerId)) await this.#session.setPreferredLayers(producerId, spatialLayer, temporalLayer);
  }

  async leave(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeMesh();
    await this.#session?.close({ leave: true });
    this.emit('closed', { reason: 'left' });
  }

  // --- P2P fallback ---

  /** Connects to the relay of a P2P allocation; the mesh replaces any earlier one. */
  async #openMesh(allocation: P2pAllocation): Promise<void> {
    this.#closeMesh();
    const mesh: P2pMesh = new P2pMesh({
      allocation,
      routerUrl: this.#o.routerUrl,
      hooks: this.#meshHooks(() => mesh),
      localTracks: () => [...this.#local.values()],
      ...(this.#o.session.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.#o.session.connectTimeoutMs } : {}),
      ...(this.#o.session.socketOptions ? { socketOptions: this.#o.session.socketOptions } : {}),
    });
    this.#mesh = mesh;
    await mesh.open();
  }

  #meshHooks(mesh: () => P2pMesh): P2pMeshHooks {
    const current = () => !this.#closed && this.#mesh === mesh();
    return {
      onPeerJoined: (peerId) => {
        if (current() && !this.#isSelf(peerId)) this.#addPeer(peerId, 'p2p');
      },
      // While moving to the SFU the peer may be there already: the mesh's close reconciles.
      onPeerLeft: (peerId) => {
        if (current() && !this.#session) this.#removePeer(peerId);
      },
      onTrack: (t) => {
        if (current()) this.#announceDirect(t);
      },
      onLinkClosed: (_peerId, trackIds) => {
        for (const id of trackIds) this.#unannounce(id);
      },
      onLinkState: (peerId, state) => {
        if (current() && state === 'failed') this.emit('error', { error: new Error(`the direct link to ${peerId} failed`), fatal: false });
      },
      onMigrate: (reason) => {
        if (current()) this.#moveToSfu(reason);
      },
      onError: (error) => {
        if (current()) this.emit('error', { error, fatal: false });
      },
    };
  }

  #announceDirect(t: P2pRemoteTrack): void {
    if (!this.#peers.has(t.peerId)) this.#addPeer(t.peerId, 'p2p');
    const track: RemoteTrack = { peerId: t.peerId, producerId: t.id, kind: t.kind, region: 'p2p', track: t.track, consumer: null, paused: false };
    this.#announced.set(track.producerId, track);
    this.emit('trackAdded', track);
  }

  /** Ends the mesh: its links' tracks are removed; peers neither in the SFU room nor sending through it are gone. */
  #closeMesh(): void {
    if (this.#meshCloseTimer) clearTimeout(this.#meshCloseTimer);
    this.#meshCloseTimer = null;
    const mesh = this.#mesh;
    if (!mesh) return;
    this.#mesh = null;
    mesh.close();
    if (!this.#session || this.#closed) return;
    const present = new Set(this.#session.peers().map((p) => p.peerId));
    for (const t of this.#announced.values()) present.add(t.peerId);
    for (const peerId of [...this.#peers.keys()]) if (!present.has(peerId)) this.#removePeer(peerId);
  }

  /** Make-before-break from P2P: a peer's direct link closes once as many of its tracks come through the SFU. */
  #retireDirectLink(peerId: string): void {
    const mesh = this.#mesh;
    if (!mesh || !this.#session || !mesh.linkedPeers.includes(peerId)) return;
    const tracks = [...this.#announced.values()].filter((t) => t.peerId === peerId);
    const viaSfu = tracks.filter((t) => t.consumer !== null).length;
    if (viaSfu >= tracks.length - viaSfu) mesh.dropPeer(peerId);
    if (mesh.linkedPeers.length === 0) this.#closeMesh();
  }

  /** The relay says a region can take the room: allocate (SFU), join, then retire the direct links. */
  #moveToSfu(reason: string): void {
    const mesh = this.#mesh;
    if (this.#recovering || this.#closed || !mesh) return;
    const started = performance.now();
    const previous = p2pEdgeOf(mesh);
    this.emit('moved', { reason: `p2p_to_sfu: ${reason}`, from: previous, excludeNodeIds: [] });
    this.#recovering = this.#reallocateUntil(null, async (allocation, opened) => {
      if (allocation.mode === 'p2p') {
        // No region could take the room after all (lost again meanwhile): stay direct, on the new allocation.
        await this.#openMesh(allocation);
        this.emit('reconnected', { edge: this.edge, resumed: false, gapMs: Math.round(performance.now() - started), previous });
        return;
      }
      const next = opened(this.#wire(new EdgeSession({ ...this.#o.session, allocation, displayName: this.#o.displayName, lastN: this.#o.lastN })));
      await next.open({ send: this.#local.size > 0 });
      this.#session = next;
      await this.#populate(next);
      this.#meshCloseTimer = setTimeout(() => this.#closeMesh(), P2P_OVERLAP_MS);
      for (const peerId of mesh.linkedPeers) this.#retireDirectLink(peerId);
      if (mesh.linkedPeers.length === 0) this.#closeMesh();
      this.emit('reconnected', { edge: edgeOf(next), resumed: false, gapMs: Math.round(performance.now() - started), previous });
    })
      .catch((err: Error) => this.#fail(err))
      .finally(() => (this.#recovering = null));
  }

  /** Recovery gave up: everything closes. */
  #fail(err: Error): void {
    this.emit('error', { error: err, fatal: true });
    this.#closeMesh();
    void this.#session?.close({ leave: false });
    this.#closed = true;
    this.emit('closed', { reason: `failover failed: ${err.message}` });
  }

  // --- wiring of one edge session ---

  #wire(session: EdgeSession): EdgeSession {
    const hooks: EdgeSessionOptions['hooks'] = {
      onEvent: (event, msg) => this.#onEvent(session, event, msg),
      onLost: (reason) => this.#onLost(session, reason),
      onTransportState: (direction, state) => {
        if (session === this.#session) this.emit('transportState', { direction, state, nodeId: session.nodeId });
        if (state === 'failed' && session === this.#session && !this.#recovering) {
          session.restartIce().catch((err: Error) => this.emit('error', { error: err, fatal: false }));
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
      case 'removed': {
        const msg = raw as Msg<'removed'>;
        // A session replaced while the SDK itself is moving to a newer one is just the old edge.
        if (!current || (msg.reason === 'replaced' && this.#recovering)) return;
        this.#closed = true;
        this.#closeMesh();
        void session.close({ leave: false });
        this.emit('closed', { reason: msg.reason });
        return;
      }
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
        if (!current || this.#isSelf(msg.peerId) || !session.permissions.subscribe) return;
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
    // A peer known from elsewhere (the direct links before a move onto the SFU, or an edge whose
    // peerJoined came while the new session was still opening) is where its producer says.
    const known = this.#peers.get(remote.info.peerId);
    if (known?.region !== remote.info.region) this.#addPeer(remote.info.peerId, remote.info.region, known?.displayName);
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
    this.#retireDirectLink(track.peerId);
  }

  #unannounce(producerId: string): void {
    const t = this.#announced.get(producerId);
    if (!t) return;
    this.#announced.delete(producerId);
    this.emit('trackRemoved', { peerId: t.peerId, producerId, kind: t.kind });
  }

  /**
   * After join (or rejoin) on `session`: peers, everyone else's producers and own tracks. The
   * producers are those the session knows now, not only its join answer's: one piped in while a
   * failover's session was joining is announced by an event that came before the session was
   * current. They are consumed while ours are published, not after: publishing takes its own
   * round trips (the send transport's connect, one `produce` per track) that would otherwise hold
   * up the first remote frame. (#consume reports its failures itself and never rejects.)
   */
  async #populate(session: EdgeSession): Promise<void> {
    const peers = session.peers().filter((p) => !this.#isSelf(p.peerId));
    for (const p of peers) this.#addPeer(p.peerId, p.region, p.displayName);
    const producers = session.roomProducers();
    const consuming = session.permissions.subscribe ? Promise.all(producers.filter((p) => !this.#isSelf(p.peerId)).map((p) => this.#consume(session, p))) : undefined;
    try {
      for (const local of this.#local.values()) if (!session.producers.has(local.localId)) await session.produce(local);
    } finally {
      await consuming;
    }
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
      .catch((err: Error) => this.#fail(err))
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
    if (!session.permissions.subscribe) return;
    await Promise.all(snapshot.producers.filter((p) => !this.#isSelf(p.peerId)).map((p) => this.#consume(session, p)));
  }

  async #failover(old: EdgeSession, makeBeforeBreak: boolean, started: number, previous: EdgeInfo): Promise<void> {
    if (!makeBeforeBreak) await old.close({ leave: false });
    await this.#reallocateUntil(old, async (allocation, opened) => {
      if (allocation.mode === 'p2p') {
        // No region can take the room: the others are reached directly.
        await this.#openMesh(allocation);
        if (makeBeforeBreak) await old.close({ leave: true });
        this.#session = null;
        for (const t of [...this.#announced.values()]) if (t.consumer) this.#unannounce(t.producerId);
        for (const peerId of [...this.#peers.keys()]) if (!this.#mesh?.peers.has(peerId)) this.#removePeer(peerId);
        this.emit('reconnected', { edge: this.edge, resumed: false, gapMs: Math.round(performance.now() - started), previous });
        return;
      }
      const next = opened(this.#wire(new EdgeSession({ ...this.#o.session, allocation, displayName: this.#o.displayName, lastN: this.#o.lastN })));
      await next.open({ send: this.#local.size > 0 });
      // Switch: from now on events come from the new edge. Own tracks first, then the others'.
      const oldAnnounced = new Map(this.#announced);
      this.#session = next;
      this.#announced.clear();
      await this.#populate(next);
      // Tracks the new edge does not carry (any more) are gone; the others were re-announced.
      for (const [producerId, t] of oldAnnounced) if (!this.#announced.has(producerId)) this.emit('trackRemoved', { peerId: t.peerId, producerId, kind: t.kind });
      const nowPeers = new Set(next.peers().map((p) => p.peerId));
      for (const t of this.#announced.values()) nowPeers.add(t.peerId);
      for (const peerId of [...this.#peers.keys()]) if (!nowPeers.has(peerId)) this.#removePeer(peerId);
      if (makeBeforeBreak) await old.close({ leave: true });
      this.emit('reconnected', { edge: edgeOf(next), resumed: false, gapMs: Math.round(performance.now() - started), previous });
    });
  }

  /**
   * Allocates again (excluding the nodes failed on recently) and hands the allocation to `move`,
   * until one `move` succeeds; retries with backoff, ends on a refused credential or after
   * `failoverGiveUpMs`. An edge session `move` opened (passed through `opened`) is closed when
   * that attempt fails, its node excluded, and `fallback` is the current session again.
   */
  async #reallocateUntil(
    fallback: EdgeSession | null,
    move: (allocation: Allocation, opened: (session: EdgeSession) => EdgeSession) => Promise<void>,
  ): Promise<void> {
    const giveUpAt = performance.now() + (this.#o.failoverGiveUpMs ?? 120_000);
    let delay = 250;
    for (;;) {
      if (this.#closed) return;
      const attempt: { session: EdgeSession | null } = { session: null };
      try {
        for (const [id, at] of this.#failedNodes) if (performance.now() - at > FAILED_NODE_MEMORY_MS) this.#failedNodes.delete(id);
        const allocation = await this.#o.reallocate([...this.#failedNodes.keys()]);
        await move(allocation, (session) => (attempt.session = session));
        return;
      } catch (err) {
        const next = attempt.session;
        if (next) {
          if (this.#session === next) this.#session = fallback;
          this.#failedNodes.set(next.nodeId, performance.now());
          await next.close({ leave: false }).catch(() => undefined);
        }
        // Refused (bad or expired grant, bad request, a full room; or by the edge: not permitted,
        // over a per-participant cap): trying again will not help.
        if (err instanceof GeoSfuClientError && (err.status === 400 || err.status === 401 || err.status === 403 || err.status === 409)) throw err;
        if (isFinalRequestError(err)) throw err;
        if (performance.now() > giveUpAt) throw err;
        this.emit('error', { error: err as Error, fatal: false });
        await sleep(err instanceof GeoSfuClientError && err.code === NO_ALLOWED_REGION && err.retryAfterMs !== undefined ? err.retryAfterMs : delay);
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}

function edgeOf(session: EdgeSession): EdgeInfo {
  return { mode: 'sfu', nodeId: session.nodeId, region: session.region, homeRegion: session.allocation.homeRegion, allocationId: session.allocation.allocationId };
}

function p2pEdgeOf(mesh: P2pMesh): EdgeInfo {
  return { mode: 'p2p', nodeId: 'p2p', region: 'p2p', homeRegion: 'p2p', allocationId: mesh.allocation.allocationId };
}
