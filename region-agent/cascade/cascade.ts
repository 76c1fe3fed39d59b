import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { type CallAnswer, type CallBody, type ControlCall, ControlCallError, controlCall, controlPlane } from '../../shared/control-plane.ts';
import type { CloseRequest, KickRequest, OpenAnswer, OpenRequest, SealedEndpoint, SyncAnswer, SyncRequest } from '../../shared/schemas/cascade.ts';
import type { CascadeLinkMedia, RoomNode, RoomNodeSet } from '../../shared/schemas/index.ts';
import { cascadeLinkJitterMs, RegionPipe, type PipeEndpoint, type PipeExport, type PipeImportResult, type PipedStreamRawStats, type Room, type RoomRouter } from '../../sfu/index.ts';
import { Ticker } from '../../shared/ticker.ts';
import { addConditionerStats, conditionerEnabled, emptyConditionerStats, PipeConditioner, pipedVideoBufferMs, type ConditionerSettings, type ConditionerStats, type FarEnd } from './conditioner.ts';
import { LinkLossMeter, pipedStreamCounters, type LossCounters } from './link-loss.ts';
import { derivePipeKey, seal, unseal } from './seal.ts';

/**
 * Which nodes serve these rooms (RouterClient.roomNodes: the router's signed room-nodes call, or a
 * stub). A Map: room ids are client-chosen (a room may be named `__proto__` or `constructor`).
 */
export type RoomNodesSource = (roomIds: string[]) => Promise<ReadonlyMap<string, RoomNodeSet>>;

/** Rewrites the address a side was told to send to (tests and the launcher put a WAN relay there). */
export type EndpointRewrite = (ctx: {
  roomId: string;
  localNodeId: string;
  remoteNodeId: string;
  ip: string;
  port: number;
}) => { ip: string; port: number } | Promise<{ ip: string; port: number }>;

export interface CascadePipeSettings {
  listenIp: string;
  announcedAddress?: string;
  portRange?: { min: number; max: number };
  enableSrtp: boolean;
  enableRtx: boolean;
  /**
   * The pipe conditioner (./conditioner.ts: FEC and a reordering hold between the pipe transport
   * and the network); runs when its FEC or its hold is on. Both sides must agree. Default: off.
   */
  conditioner?: ConditionerSettings;
  /**
   * The jitter buffer target asked of browsers for video piped in over a lossy link whose repair
   * is too slow for them (pipedVideoBufferMs), ms; needs the conditioner (it measures the link's
   * loss and round trip). Default: 0 (their own choice).
   */
  videoBufferMs?: number;
}

/** The sealed endpoint of an open and its answer, with whether the side runs the conditioner (absent: it does not). */
type LinkOffer = SealedEndpoint & { conditioned?: boolean };

export interface CascadeOptions {
  rooms: RoomRouter;
  nodeId: string;
  region: string;
  clusterSecret: string;
  roomNodes: RoomNodesSource;
  /** Base URL to reach a peer through instead of its registered controlUrl (GEO_SFU_PEER_ROUTES). */
  peerRoutes?: ReadonlyMap<string, string>;
  pipe: CascadePipeSettings;
  /** Cadences (GEO_SFU_CASCADE_*: cascadeTiming() in ./index.ts). */
  timing: CascadeTiming;
  /** Only for tests and the launcher's WAN emulation. */
  rewriteRemoteEndpoint?: EndpointRewrite;
  logger?: FastifyBaseLogger;
  /** Wall clock for signed requests. */
  now?: () => number;
}

/** The cascade's cadences; each is a setting (shared/config/spec.ts, GEO_SFU_CASCADE_*). */
export interface CascadeTiming {
  /** Period of the room-nodes reconcile poll. */
  reconcileMs: number;
  /** Period of each link's state push (its heartbeat). */
  syncIntervalMs: number;
  /** A link whose pushes have failed for this long is torn down. */
  staleAfterMs: number;
  /** Timeout of one agent↔agent call. */
  requestTimeoutMs: number;
  /** Imports without bytes arriving (while the origin sent some) before a link counts as stalled. */
  stallChecks: number;
  /** A failed set-up is tried again after twice this, doubling up to retryMaxMs. */
  retryMs: number;
  retryMaxMs: number;
  /** Delay of the reconcile after a participant leaves a room here. */
  debounceMs: number;
  /**
   * A pushed node set naming this node for a room not open here (a participant was just allocated
   * here) opens the room and links it at once, so the other nodes' streams are piped in before the
   * participant asks for them; such a room still without a participant this long after is closed.
   * 0 = a room opens at its first join.
   */
  prewarmMs: number;
}

export interface CascadeLinkStatus {
  roomId: string;
  remoteNodeId: string;
  remoteRegion: string;
  linkId: string;
  initiator: boolean;
  connected: boolean;
  exported: number;
  imported: number;
  lastOkAgoMs: number;
}

export type CascadeEvents = {
  /** A link is connected (both endpoints known). */
  linkup: [CascadeLinkStatus];
  linkdown: [{ roomId: string; remoteNodeId: string; linkId: string; reason: string }];
};

interface Link {
  key: string;
  roomId: string;
  remote: { nodeId: string; region: string };
  linkId: string;
  initiator: boolean;
  pipe: RegionPipe;
  /** Between the pipe transport and the network when the conditioner is on. */
  conditioner: PipeConditioner | undefined;
  /** The jitter buffer target last given for the video piped in over it (pipedVideoBufferMs), ms. */
  videoBufferMs: number;
  /** Last successful exchange (our push answered, or theirs received), performance.now(). */
  lastOkAt: number;
  lastPushAt: number;
  pushing: boolean;
  dirty: boolean;
  closed: boolean;
}

const linkKey = (roomId: string, nodeId: string): string => `${roomId}\n${nodeId}`;

/** A conditioner's count of the wire as a link's loss source: every packet that crossed it first, lost or not. */
const wireCounters = (conditioner: PipeConditioner): { expected: number; lost: number } => {
  const { lost, received } = conditioner.wireLoss;
  return { expected: lost + received, lost };
};

/** What the far end of a link said of its conditioner. */
const farEnd = (offer: LinkOffer): FarEnd => ({ conditioned: offer.conditioned ?? false });

/** The payload types of the room's media codecs of `kinds` (RTX excluded): what the conditioner protects, and of them what it delivers in order. */
const mediaPayloadTypes = (caps: Room['rtpCapabilities'], kinds: ReadonlyArray<'audio' | 'video'>): number[] =>
  (caps.codecs ?? [])
    .filter((c) => kinds.includes(c.kind) && !c.mimeType.toLowerCase().endsWith('/rtx') && c.preferredPayloadType !== undefined)
    .map((c) => c.preferredPayloadType!);

/** Call failed with a status the caller acts on. */
/**
 * The agent's side of the cross-region cascade: for each local room, a RegionPipe to every other
 * node serving it (full mesh), set up by the lower nodeId, kept in sync by state pushes, torn down
 * when the room shrinks, the node dies or the link stalls, and re-established when it is back.
 */
export class Cascade extends EventEmitter<CascadeEvents> {
  readonly nodeId: string;
  readonly region: string;
  readonly #o: CascadeOptions;
  readonly #t: CascadeTiming;
  readonly #key: Buffer;
  readonly #log: FastifyBaseLogger;
  readonly #now: () => number;
  readonly #links = new Map<string, Link>();
  /** Links being opened by us (initiator), by key. */
  readonly #opening = new Map<string, Promise<void>>();
  /** Earliest next open attempt, and its backoff, by key. */
  readonly #backoff = new Map<string, { nextAt: number; delayMs: number }>();
  readonly #lastKickAt = new Map<string, number>();
  /** controlUrl of nodes seen in room-nodes answers. */
  readonly #directory = new Map<string, string>();
  /** The newest node set the router gave for each local room (push, join answer or poll), by room id. */
  readonly #sets = new Map<string, RoomNodeSet>();
  /** Nodes the router reported dead in the last answer: no links with them. */
  readonly #dead = new Set<string>();
  readonly #roomListeners = new Map<Room, () => void>();
  /** Rooms opened ahead of a join (by a push) and still without a participant: their closing timers. */
  readonly #aheadTimers = new Map<string, NodeJS.Timeout>();
  /** Rooms being opened ahead of a join: an open from the other side waits for it. */
  readonly #openingAhead = new Map<string, Promise<Room | undefined>>();
  /** The reconcile poll: never two at once, a poll asked for during one runs right after it. */
  readonly #reconcile: Ticker;
  /** Pushes the links that are due. */
  readonly #sync: Ticker;
  #pollSoon: NodeJS.Timeout | undefined;
  /** The loss of each link, counted between linkMedia() reads. */
  readonly #linkLoss = new LinkLossMeter();
  /** Conditioner counters of the links closed so far (the live ones are added when read). */
  readonly #closedConditioners: ConditionerStats = emptyConditionerStats();
  #started = false;
  #closed = false;
  readonly #onRoomCreated: (room: Room) => void;
  readonly #onRoomClosed: (room: Room) => void;

  constructor(options: CascadeOptions) {
    super();
    this.#o = options;
    this.#t = options.timing;
    this.nodeId = options.nodeId;
    this.region = options.region;
    this.#key = derivePipeKey(options.clusterSecret);
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'cascade' });
    this.#now = options.now ?? Date.now;
    this.#onRoomCreated = (room) => this.#watchRoom(room);
    this.#onRoomClosed = (room) => this.#unwatchRoom(room);
    this.#reconcile = new Ticker(this.#t.reconcileMs, () => this.#pollOnce(), (err) => this.#log.error({ err }, 'cascade poll failed'));
    this.#sync = new Ticker(Math.max(50, Math.floor(this.#t.syncIntervalMs / 4)), async () => this.#pushDue(), (err) => this.#log.error({ err }, 'cascade sync failed'));
  }

  /** Starts polling and pushing (idempotent). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const rooms = this.#o.rooms;
    rooms.on('roomcreated', this.#onRoomCreated);
    rooms.on('roomclosed', this.#onRoomClosed);
    for (const room of rooms.rooms.values()) this.#watchRoom(room);
    this.#reconcile.start();
    this.#sync.start();
  }

  get closed(): boolean {
    return this.#closed;
  }

  links(): CascadeLinkStatus[] {
    return [...this.#links.values()].map((l) => this.#status(l));
  }

  /**
   * What the links carry now, per other node (summed over its rooms' pipe transports), and how
   * what arrives from it fares over all its rooms' links: bounded by the number of nodes, whatever
   * the number of rooms. Loss (LinkLossMeter): the piped-in streams' as mediasoup counts them, or
   * behind a conditioner the conditioner's count of the wire (mediasoup sees what it left);
   * jitter (cascadeLinkJitterMs): the piped-in streams', only audio's behind a conditioner (video
   * is held in order there). Each read counts the losses since the one before (the heartbeat's,
   * each second), reported over 5 s.
   */
  async linkMedia(): Promise<CascadeLinkMedia[]> {
    const byPeer = new Map<string, { media: CascadeLinkMedia; streams: PipedStreamRawStats[]; losses: LossCounters[] }>();
    await Promise.all(
      [...this.#links.values()].map(async (link) => {
        const [stats, streams] = await Promise.all([link.pipe.transport.getStats().catch(() => []), link.pipe.importedStreamStats()]);
        let entry = byPeer.get(link.remote.nodeId);
        if (!entry) byPeer.set(link.remote.nodeId, (entry = { media: { peerNodeId: link.remote.nodeId, peerRegion: link.remote.region, rooms: 0, inBps: 0, outBps: 0 }, streams: [], losses: [] }));
        entry.media.rooms++;
        for (const s of stats) {
          entry.media.inBps += Math.max(0, Math.round(s.recvBitrate ?? 0));
          entry.media.outBps += Math.max(0, Math.round(s.sendBitrate ?? 0));
        }
        // Behind the conditioner, media arrives rebuilt and video held in order: mediasoup's loss
        // is what the conditioner left, and video's jitter its holds, not the path's.
        entry.streams.push(...(link.conditioner ? streams.filter((st) => st.kind === 'audio') : streams));
        entry.losses.push(...(link.conditioner ? [{ key: `conditioner ${link.linkId}`, ...wireCounters(link.conditioner) }] : pipedStreamCounters(streams)));
      }),
    );
    const losses = this.#linkLoss.read(performance.now(), new Map([...byPeer].map(([peer, entry]) => [peer, entry.losses])));
    return [...byPeer]
      .map(([peer, { media, streams }]) => {
        const loss = losses.get(peer);
        const jitterMs = cascadeLinkJitterMs(streams);
        return { ...media, ...(loss !== undefined ? { loss } : {}), ...(jitterMs !== undefined ? { jitterMs } : {}) };
      })
      .sort((a, b) => a.peerNodeId.localeCompare(b.peerNodeId));
  }

  link(roomId: string, remoteNodeId: string): RegionPipe | undefined {
    return this.#links.get(linkKey(roomId, remoteNodeId))?.pipe;
  }

  /** The conditioner of a link (undefined when the conditioner is off or there is no such link). */
  conditioner(roomId: string, remoteNodeId: string): PipeConditioner | undefined {
    return this.#links.get(linkKey(roomId, remoteNodeId))?.conditioner;
  }

  /** The jitter buffer target for browsers here of the video piped in from `remoteNodeId` for the room, ms (0: their own choice). */
  videoBufferMs(roomId: string, remoteNodeId: string): number {
    const link = this.#links.get(linkKey(roomId, remoteNodeId));
    const conditioner = link?.conditioner;
    const settings = this.#o.pipe.conditioner;
    if (!link || !conditioner || !settings) return 0;
    link.videoBufferMs = pipedVideoBufferMs({ lossy: conditioner.inboundLossy, rttMs: conditioner.rttMs }, { videoBufferMs: this.#o.pipe.videoBufferMs ?? 0, fecMinRttMs: settings.fecMinRttMs }, link.videoBufferMs);
    return link.videoBufferMs;
  }

  /** Whether this node runs the pipe conditioner on its links. */
  get conditioned(): boolean {
    return this.#o.pipe.conditioner !== undefined && conditionerEnabled(this.#o.pipe.conditioner);
  }

  /** What an open or its answer says of this side's conditioner. */
  #conditioning(): Pick<LinkOffer, 'conditioned'> {
    return { conditioned: this.conditioned };
  }

  /** The conditioner counters of every link so far, open and closed (for /metrics). */
  conditionerStats(): ConditionerStats {
    const total = emptyConditionerStats();
    addConditionerStats(total, this.#closedConditioners);
    for (const link of this.#links.values()) if (link.conditioner) addConditionerStats(total, link.conditioner.stats);
    return total;
  }

  /**
   * Asks the router which nodes serve the local rooms and reconciles the links (coalesced: a call
   * during a poll runs one more poll after it). Resolves when done (at once before start() and
   * after close()); never rejects: a failed poll is logged and the next one tries again.
   */
  poll(): Promise<void> {
    return this.#reconcile.runNow();
  }

  /**
   * A room's node set from the router: its signed push (POST /v1/cascade/room-nodes) or its answer
   * to a local join. Ignored when a newer version is held (another router replica's, sent later) or
   * the room is not here; else the room's links are reconciled with it. Returns whether it was applied.
   */
  applyNodeSet(roomId: string, set: RoomNodeSet, from: 'push' | 'join'): boolean {
    if (this.#closed) return false;
    if (from === 'push' && this.#openAhead(roomId, set)) return true;
    if (!this.#accept(roomId, set, from)) return false;
    this.#relink(roomId);
    return true;
  }

  /**
   * The router answered a local join: with the room's node set (applied as a push is), or without
   * one (a router that does not send it): then the links are reconciled by a poll soon.
   */
  joinAnswered(roomId: string, set: RoomNodeSet | undefined): void {
    if (set) this.applyNodeSet(roomId, set, 'join');
    else this.#schedulePoll(this.#t.debounceMs);
  }

  /** The newest node set held for a room. */
  nodeSet(roomId: string): RoomNodeSet | undefined {
    return this.#sets.get(roomId);
  }

  /**
   * Stops, closing every link. With `notify` (default) the other sides hear it at once; without,
   * they find out by themselves (a crash).
   */
  async close(opts: { notify?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#pollSoon);
    // Not awaited: a poll or push in flight may wait on a call to a node that is closing too.
    void this.#reconcile.stop();
    void this.#sync.stop();
    const rooms = this.#o.rooms;
    rooms.off('roomcreated', this.#onRoomCreated);
    rooms.off('roomclosed', this.#onRoomClosed);
    for (const [room, detach] of this.#roomListeners) {
      detach();
      this.#roomListeners.delete(room);
    }
    for (const timer of this.#aheadTimers.values()) clearTimeout(timer);
    this.#aheadTimers.clear();
    const notices = [...this.#links.values()].map((link) => this.#teardown(link, 'node closing', opts.notify ?? true));
    await Promise.allSettled(notices);
  }

  // --- handlers of the routes (region-agent/cascade/routes.ts) ---

  /** POST /v1/cascade/open: we are the higher nodeId; set up our side and answer our endpoint. */
  async handleOpen(req: OpenRequest): Promise<{ status: 200; body: OpenAnswer } | { status: 409; code: string; message: string }> {
    if (req.toNodeId !== this.nodeId) return { status: 409, code: 'WRONG_NODE', message: `this is ${this.nodeId}, not ${req.toNodeId}` };
    if (!(req.fromNodeId < this.nodeId)) return { status: 409, code: 'NOT_INITIATOR', message: 'the lower nodeId opens links' };
    if (this.#dead.has(req.fromNodeId)) return { status: 409, code: 'NODE_DEAD', message: `the router reports ${req.fromNodeId} dead` };
    // The router's push reached both sides at once: this side may still be opening the room.
    const room = this.#o.rooms.getRoom(req.roomId) ?? (await this.#openingAhead.get(req.roomId));
    if (this.#closed || !room || room.closed) return { status: 409, code: 'ROOM_NOT_HERE', message: `room ${req.roomId} has no participants here` };
    const aad = (kind: string) => `${kind}|${req.roomId}|${req.fromNodeId}|${req.toNodeId}|${req.linkId}`;
    let offer: LinkOffer;
    try {
      offer = unseal<LinkOffer>(this.#key, req.sealed, aad('open'));
    } catch {
      return { status: 409, code: 'BAD_SEAL', message: 'sealed endpoint does not open with the cluster key' };
    }
    const key = linkKey(req.roomId, req.fromNodeId);
    const existing = this.#links.get(key);
    if (existing) await this.#teardown(existing, 'replaced', false);
    const remote = { nodeId: req.fromNodeId, region: req.fromRegion };
    const { pipe, conditioner } = await this.#createPipe(room, remote);
    conditioner?.setFar(farEnd(offer));
    const link = this.#addLink(req.roomId, remote, req.linkId, false, pipe, conditioner);
    try {
      await this.#connect(link, await this.#rewrite(req.roomId, req.fromNodeId, offer.endpoint as PipeEndpoint));
    } catch (err) {
      await this.#teardown(link, 'connect failed', false);
      throw err;
    }
    const answer: LinkOffer = { endpoint: this.#advertised(link), enableSrtp: this.#o.pipe.enableSrtp, enableRtx: this.#o.pipe.enableRtx, ...this.#conditioning() };
    this.#linkUp(link);
    return { status: 200, body: { linkId: req.linkId, sealed: seal(this.#key, answer, aad('answer')) } };
  }

  /** POST /v1/cascade/sync: the other side's export; import it and answer what we hold. */
  async handleSync(req: SyncRequest): Promise<{ status: 200; body: SyncAnswer } | { status: 404; code: string; message: string }> {
    const link = this.#links.get(linkKey(req.roomId, req.fromNodeId));
    if (this.#closed || req.toNodeId !== this.nodeId || !link || link.closed || link.linkId !== req.linkId) {
      return { status: 404, code: 'LINK_UNKNOWN', message: `no link ${req.linkId} for room ${req.roomId} with ${req.fromNodeId}` };
    }
    link.lastOkAt = performance.now();
    const state = { ...(req.state as PipeExport), origin: { ...link.remote } };
    const result = await link.pipe.importState(state);
    return { status: 200, body: { linkId: link.linkId, result } };
  }

  /** POST /v1/cascade/close */
  async handleClose(req: CloseRequest): Promise<void> {
    const link = this.#links.get(linkKey(req.roomId, req.fromNodeId));
    if (link && link.linkId === req.linkId) await this.#teardown(link, `closed by peer: ${req.reason}`, false);
  }

  /** POST /v1/cascade/kick: the higher node has no link with us for this room. */
  handleKick(req: KickRequest): void {
    if (this.#closed || !(this.nodeId < req.fromNodeId)) return;
    const key = linkKey(req.roomId, req.fromNodeId);
    // Our open is on its way: the kick crossed it.
    if (this.#opening.has(key)) return;
    this.#backoff.delete(key);
    const link = this.#links.get(key);
    // It has no link: ours is stale.
    if (link) void this.#teardown(link, 'peer has no link', false).then(() => this.#relink(req.roomId));
    else this.#relink(req.roomId);
  }

  // --- internals ---

  /**
   * A local join needs no poll: the router's answer to its `joined` report carries the room's node
   * set (applyNodeSet). A leave is reconciled soon (the room may be empty here now).
   */
  #watchRoom(room: Room): void {
    if (this.#roomListeners.has(room)) return;
    const onLeave = () => this.#schedulePoll(this.#t.debounceMs);
    // A room opened ahead is an ordinary room from its first join on (closed when it empties).
    const onJoin = () => this.#clearAhead(room.id);
    room.on('peerleft', onLeave);
    room.on('peerjoined', onJoin);
    this.#roomListeners.set(room, () => {
      room.off('peerleft', onLeave);
      room.off('peerjoined', onJoin);
    });
  }

  #unwatchRoom(room: Room): void {
    this.#roomListeners.get(room)?.();
    this.#roomListeners.delete(room);
    this.#clearAhead(room.id);
    this.#sets.delete(room.id);
    // The pipes closed with the room (RegionPipe 'close'); the poll also updates the router's view.
    this.#schedulePoll(this.#t.debounceMs);
  }

  #schedulePoll(delayMs: number): void {
    if (this.#closed || !this.#started) return;
    if (this.#pollSoon) return;
    this.#pollSoon = setTimeout(() => {
      this.#pollSoon = undefined;
      void this.poll();
    }, delayMs);
  }

  async #pollOnce(): Promise<void> {
    const roomIds = [...this.#o.rooms.rooms.values()].filter((r) => !r.closed && (r.peers.size > 0 || this.#aheadTimers.has(r.id))).map((r) => r.id);
    // Links of rooms that are gone here.
    for (const link of [...this.#links.values()]) {
      if (!roomIds.includes(link.roomId)) await this.#teardown(link, 'room empty here', true);
    }
    if (roomIds.length === 0) return;
    let answer: ReadonlyMap<string, RoomNodeSet>;
    try {
      answer = await this.#o.roomNodes(roomIds);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'room-nodes query failed; keeping the links as they are');
      return;
    }
    for (const roomId of roomIds) {
      const set = answer.get(roomId);
      // The router does not know the room (yet): leave it to liveness.
      if (set && this.#accept(roomId, set, 'poll')) await this.#reconcileRoom(roomId, set.nodes);
    }
  }

  /**
   * A pushed set for a room with no participant here yet (see CascadeTiming.prewarmMs): when it
   * names this node and another live one, the room is opened and linked now and held open for
   * prewarmMs; when it no longer names this node (the allocation expired or went elsewhere), a room
   * opened so is closed. Returns whether the set was handled here (else: as any set).
   */
  #openAhead(roomId: string, set: RoomNodeSet): boolean {
    if (this.#t.prewarmMs <= 0) return false;
    const held = this.#sets.get(roomId);
    if (held && held.version > set.version) return false;
    const named = set.nodes.some((n) => n.nodeId === this.nodeId && n.state !== 'dead');
    const room = this.#o.rooms.getRoom(roomId);
    if (room && !room.closed) {
      if (!this.#aheadTimers.has(roomId) || room.peers.size > 0) return false;
      if (named) {
        this.#holdAhead(room);
        return false;
      }
      this.#sets.set(roomId, set);
      room.close('empty');
      return true;
    }
    const opening = this.#openingAhead.get(roomId);
    if (opening) {
      // Taken when the room is open (below), the newest set wins.
      this.#sets.set(roomId, set);
      return true;
    }
    if (!named || !set.nodes.some((n) => n.nodeId !== this.nodeId && n.state !== 'dead')) return false;
    this.#sets.set(roomId, set);
    const open = this.#o.rooms.getOrCreateRoom(roomId).then(
      (opened) => {
        if (this.#closed || opened.closed) return undefined;
        // A newer set that came while it opened may no longer name this node.
        if (opened.peers.size === 0 && !this.#sets.get(roomId)?.nodes.some((n) => n.nodeId === this.nodeId && n.state !== 'dead')) {
          opened.close('empty');
          return undefined;
        }
        if (opened.peers.size === 0) this.#holdAhead(opened);
        this.#log.debug({ roomId, version: this.#sets.get(roomId)?.version }, 'room opened ahead of a join');
        this.#relink(roomId);
        return opened;
      },
      (err: unknown) => {
        if (!this.#o.rooms.getRoom(roomId)) this.#sets.delete(roomId);
        this.#log.warn({ roomId, err: (err as Error).message }, 'room not opened ahead of a join');
        return undefined;
      },
    );
    const tracked = open.finally(() => this.#openingAhead.delete(roomId));
    this.#openingAhead.set(roomId, tracked);
    return true;
  }

  /** (Re)starts the timer that closes a room opened ahead of a join if nobody has joined it by then. */
  #holdAhead(room: Room): void {
    clearTimeout(this.#aheadTimers.get(room.id));
    const timer = setTimeout(() => {
      this.#aheadTimers.delete(room.id);
      if (!room.closed && room.peers.size === 0) {
        this.#log.debug({ roomId: room.id }, 'room opened ahead closed: nobody joined');
        room.close('empty');
      }
    }, this.#t.prewarmMs);
    timer.unref();
    this.#aheadTimers.set(room.id, timer);
  }

  #clearAhead(roomId: string): void {
    clearTimeout(this.#aheadTimers.get(roomId));
    this.#aheadTimers.delete(roomId);
  }

  /** Holds the set as the room's newest unless a newer version is held; false when it is stale (or the room is not here). */
  #accept(roomId: string, set: RoomNodeSet, from: 'push' | 'join' | 'poll'): boolean {
    const held = this.#sets.get(roomId);
    if (held && held.version > set.version) {
      this.#log.debug({ roomId, from, version: set.version, held: held.version }, 'stale room node set ignored');
      return false;
    }
    const room = this.#o.rooms.getRoom(roomId);
    if (!room || room.closed) return false;
    this.#sets.set(roomId, set);
    return true;
  }

  /** Reconciles a room's links from the node set held for it; asks the router when none is held. */
  #relink(roomId: string): void {
    const held = this.#sets.get(roomId);
    if (!held) {
      this.#schedulePoll(0);
      return;
    }
    this.#reconcileRoom(roomId, held.nodes).catch((err: unknown) => this.#log.error({ roomId, err }, 'cascade reconcile failed'));
  }

  /** Links to every other live node of the room (opened by the lower nodeId, kicked by the higher), none to the others. */
  async #reconcileRoom(roomId: string, nodes: RoomNode[]): Promise<void> {
    if (this.#closed) return;
    const now = performance.now();
    const others = nodes.filter((n) => n.nodeId !== this.nodeId);
    for (const n of others) {
      this.#directory.set(n.nodeId, n.controlUrl);
      if (n.state === 'dead') this.#dead.add(n.nodeId);
      else this.#dead.delete(n.nodeId);
    }
    const alive = new Map(others.filter((n) => n.state !== 'dead').map((n) => [n.nodeId, n]));
    for (const link of [...this.#links.values()]) {
      if (link.roomId !== roomId || alive.has(link.remote.nodeId)) continue;
      const dead = others.some((n) => n.nodeId === link.remote.nodeId);
      await this.#teardown(link, dead ? 'node dead' : 'node left the room', !dead);
    }
    for (const node of alive.values()) {
      const key = linkKey(roomId, node.nodeId);
      if (this.#links.has(key) || this.#opening.has(key)) continue;
      if (this.nodeId < node.nodeId) {
        const backoff = this.#backoff.get(key);
        if (backoff && backoff.nextAt > now) continue;
        this.#startOpen(roomId, node);
      } else {
        const last = this.#lastKickAt.get(key);
        if (last === undefined) {
          // The lower node heard of this set too and opens: kicked only if no link is up a sync interval later.
          this.#lastKickAt.set(key, now);
          setTimeout(() => this.#relink(roomId), this.#t.syncIntervalMs + 1).unref();
          continue;
        }
        if (now - last < this.#t.syncIntervalMs) continue;
        this.#lastKickAt.set(key, now);
        void this.#call(node.nodeId, controlPlane.cascadeKick, { roomId, fromNodeId: this.nodeId, toNodeId: node.nodeId } satisfies KickRequest).catch(
          (err: unknown) => this.#log.debug({ roomId, remote: node.nodeId, err: (err as Error).message }, 'kick failed'),
        );
      }
    }
  }

  #startOpen(roomId: string, node: RoomNode): void {
    const key = linkKey(roomId, node.nodeId);
    const opening = this.#open(roomId, node)
      .then(
        () => {
          this.#backoff.delete(key);
        },
        (err: unknown) => {
          const delayMs = Math.min(this.#t.retryMaxMs, (this.#backoff.get(key)?.delayMs ?? this.#t.retryMs) * 2);
          this.#backoff.set(key, { nextAt: performance.now() + delayMs, delayMs });
          // Tried again once the backoff is over, from the room's node set (the reconcile poll is slow).
          setTimeout(() => this.#relink(roomId), delayMs + 1).unref();
          this.#log.info({ roomId, remote: node.nodeId, retryInMs: delayMs, err: (err as Error).message }, 'cascade link set-up failed');
        },
      )
      .finally(() => this.#opening.delete(key));
    this.#opening.set(key, opening);
  }

  async #open(roomId: string, node: RoomNode): Promise<void> {
    const room = this.#o.rooms.getRoom(roomId);
    if (!room || room.closed) return;
    const linkId = randomUUID();
    const remote = { nodeId: node.nodeId, region: node.region };
    const aad = (kind: string) => `${kind}|${roomId}|${this.nodeId}|${node.nodeId}|${linkId}`;
    const { pipe, conditioner } = await this.#createPipe(room, remote);
    if (this.#closed) {
      pipe.close();
      conditioner?.close();
      return;
    }
    // Registered before the call: the other side may push its state before we have its answer.
    const link = this.#addLink(roomId, remote, linkId, true, pipe, conditioner);
    const offer: LinkOffer = { endpoint: this.#advertised(link), enableSrtp: this.#o.pipe.enableSrtp, enableRtx: this.#o.pipe.enableRtx, ...this.#conditioning() };
    const body: OpenRequest = { roomId, fromNodeId: this.nodeId, toNodeId: node.nodeId, fromRegion: this.region, linkId, sealed: seal(this.#key, offer, aad('open')) };
    try {
      const { body: res } = await this.#call(node.nodeId, controlPlane.cascadeOpen, body);
      if (res.linkId !== linkId) throw new Error('open: unexpected answer');
      const answer = unseal<LinkOffer>(this.#key, res.sealed, aad('answer'));
      if (answer.enableSrtp !== this.#o.pipe.enableSrtp || answer.enableRtx !== this.#o.pipe.enableRtx) {
        throw new Error(`open: pipe settings differ (srtp ${answer.enableSrtp}, rtx ${answer.enableRtx} there)`);
      }
      if (link.closed) return;
      link.conditioner?.setFar(farEnd(answer));
      await this.#connect(link, await this.#rewrite(roomId, node.nodeId, answer.endpoint as PipeEndpoint));
    } catch (err) {
      await this.#teardown(link, 'set-up failed', false);
      throw err;
    }
    this.#linkUp(link);
  }

  /** The room's pipe transport towards `remote`, and its conditioner when it runs. */
  async #createPipe(room: Room, remote: { nodeId: string; region: string }): Promise<{ pipe: RegionPipe; conditioner: PipeConditioner | undefined }> {
    const p = this.#o.pipe;
    const conditioner =
      p.conditioner && this.conditioned
        ? await PipeConditioner.open({
            ...p.conditioner,
            protectedPayloadTypes: mediaPayloadTypes(room.rtpCapabilities, ['audio', 'video']),
            orderedPayloadTypes: mediaPayloadTypes(room.rtpCapabilities, ['video']),
            wireIp: p.listenIp,
            ...(p.announcedAddress ? { announcedAddress: p.announcedAddress } : {}),
            ...(p.portRange ? { portRange: p.portRange } : {}),
          })
        : undefined;
    try {
      const pipe = await this.#newPipe(room, remote);
      // Where the pipe transport listens (0.0.0.0 is reached on loopback); its datagrams also say.
      conditioner?.setPipe({ ip: p.listenIp === '0.0.0.0' ? '127.0.0.1' : p.listenIp, port: pipe.transport.tuple.localPort });
      return { pipe, conditioner };
    } catch (err) {
      conditioner?.close();
      throw err;
    }
  }

  /** The endpoint the other side is told to send to: the conditioner's wire socket, or the pipe transport itself. */
  #advertised(link: Link): SealedEndpoint['endpoint'] {
    const own = link.pipe.localEndpoint as SealedEndpoint['endpoint'];
    return link.conditioner ? { ...own, ...link.conditioner.wireEndpoint } : own;
  }

  /** Connects the link to the other side's (rewritten) endpoint, through the conditioner when it runs. */
  async #connect(link: Link, remote: PipeEndpoint): Promise<void> {
    const c = link.conditioner;
    if (!c) {
      await link.pipe.connect(remote);
      return;
    }
    c.connect({ ip: remote.ip, port: remote.port });
    await link.pipe.connect({ ...remote, ...c.localEndpoint });
  }

  #newPipe(room: Room, remote: { nodeId: string; region: string }): Promise<RegionPipe> {
    const p = this.#o.pipe;
    return RegionPipe.create(room, {
      local: { nodeId: this.nodeId, region: this.region },
      remote,
      listenIp: p.listenIp,
      ...(p.announcedAddress ? { announcedAddress: p.announcedAddress } : {}),
      ...(p.portRange ? { portRange: p.portRange } : {}),
      enableSrtp: p.enableSrtp,
      enableRtx: p.enableRtx,
      stallChecks: this.#t.stallChecks,
    });
  }

  async #rewrite(roomId: string, remoteNodeId: string, endpoint: PipeEndpoint): Promise<PipeEndpoint> {
    const hook = this.#o.rewriteRemoteEndpoint;
    if (!hook) return endpoint;
    const { ip, port } = await hook({ roomId, localNodeId: this.nodeId, remoteNodeId, ip: endpoint.ip, port: endpoint.port });
    return { ...endpoint, ip, port };
  }

  #addLink(roomId: string, remote: { nodeId: string; region: string }, linkId: string, initiator: boolean, pipe: RegionPipe, conditioner: PipeConditioner | undefined): Link {
    const key = linkKey(roomId, remote.nodeId);
    const link: Link = { key, roomId, remote, linkId, initiator, pipe, conditioner, videoBufferMs: 0, lastOkAt: performance.now(), lastPushAt: 0, pushing: false, dirty: true, closed: false };
    this.#links.set(key, link);
    pipe.on('change', () => {
      link.dirty = true;
      void this.#push(link);
    });
    pipe.once('close', (reason) => {
      this.#closeConditioner(link);
      // Closed under us (room emptied, router closed): tell the other side.
      if (!link.closed) void this.#teardown(link, `pipe ${reason}`, true);
    });
    return link;
  }

  #linkUp(link: Link): void {
    this.#lastKickAt.delete(link.key);
    this.#log.info({ roomId: link.roomId, remote: link.remote.nodeId, linkId: link.linkId, initiator: link.initiator }, 'cascade link up');
    this.emit('linkup', this.#status(link));
    void this.#push(link);
  }

  /** Removes a link, closes its pipe, and optionally tells the other side. Never throws. */
  async #teardown(link: Link, reason: string, notify: boolean): Promise<void> {
    if (link.closed) return;
    link.closed = true;
    if (this.#links.get(link.key) === link) this.#links.delete(link.key);
    link.pipe.close();
    this.#closeConditioner(link);
    this.#log.info({ roomId: link.roomId, remote: link.remote.nodeId, linkId: link.linkId, reason }, 'cascade link down');
    this.emit('linkdown', { roomId: link.roomId, remoteNodeId: link.remote.nodeId, linkId: link.linkId, reason });
    if (notify) {
      const body: CloseRequest = { roomId: link.roomId, fromNodeId: this.nodeId, toNodeId: link.remote.nodeId, linkId: link.linkId, reason: reason.slice(0, 64) };
      await this.#call(link.remote.nodeId, controlPlane.cascadeClose, body).catch(() => undefined);
    }
  }

  /** Closes the link's conditioner (sockets and timers) once, keeping its counters. */
  #closeConditioner(link: Link): void {
    const c = link.conditioner;
    if (!c || c.closed) return;
    c.close();
    addConditionerStats(this.#closedConditioners, c.stats);
  }

  /** Tear down and set up again (stall, the other side lost the link). */
  async #reset(link: Link, reason: string, notify: boolean): Promise<void> {
    await this.#teardown(link, reason, notify);
    this.#backoff.delete(link.key);
    if (this.#closed) return;
    if (link.initiator || this.nodeId < link.remote.nodeId) {
      this.#relink(link.roomId);
    } else {
      this.#lastKickAt.set(link.key, performance.now());
      await this.#call(link.remote.nodeId, controlPlane.cascadeKick, { roomId: link.roomId, fromNodeId: this.nodeId, toNodeId: link.remote.nodeId } satisfies KickRequest).catch(
        () => undefined,
      );
    }
  }

  #pushDue(): void {
    const now = performance.now();
    for (const link of this.#links.values()) {
      if (link.pipe.connected && (link.dirty || now - link.lastPushAt >= this.#t.syncIntervalMs)) void this.#push(link);
    }
  }

  /** Pushes our export on the link (coalesced), acting on the answer. Never rejects: its callers do not wait. */
  async #push(link: Link): Promise<void> {
    if (link.closed || !link.pipe.connected) return;
    if (link.pushing) {
      link.dirty = true;
      return;
    }
    link.pushing = true;
    link.dirty = false;
    link.lastPushAt = performance.now();
    try {
      const state = await link.pipe.exportState();
      if (link.closed) return;
      const body: SyncRequest = { roomId: link.roomId, fromNodeId: this.nodeId, toNodeId: link.remote.nodeId, linkId: link.linkId, state };
      let result: PipeImportResult;
      try {
        result = (await this.#call(link.remote.nodeId, controlPlane.cascadeSync, body)).body.result;
      } catch (err) {
        if (link.closed) return;
        if (err instanceof ControlCallError && err.statusCode === 404 && err.code === 'LINK_UNKNOWN') {
          await this.#reset(link, 'peer does not know the link', false);
          return;
        }
        const silentMs = performance.now() - link.lastOkAt;
        if (silentMs > this.#t.staleAfterMs) await this.#reset(link, `no answer for ${Math.round(silentMs)} ms`, true);
        return;
      }
      if (link.closed) return;
      link.lastOkAt = performance.now();
      link.pipe.applyImportResult(result);
      if (result.stalled.length > 0) await this.#reset(link, `stalled (${result.stalled.length} producers)`, true);
    } catch (err) {
      this.#log.error({ roomId: link.roomId, remote: link.remote.nodeId, linkId: link.linkId, err }, 'cascade push failed');
    } finally {
      link.pushing = false;
      if (link.dirty && !link.closed) setImmediate(() => void this.#push(link));
    }
  }

  #urlOf(nodeId: string): string | undefined {
    return this.#o.peerRoutes?.get(nodeId) ?? this.#directory.get(nodeId);
  }

  async #call<C extends ControlCall>(nodeId: string, call: C, body: CallBody<C>): Promise<CallAnswer<C>> {
    const baseUrl = this.#urlOf(nodeId);
    if (!baseUrl) {
      this.#schedulePoll(0);
      throw new Error(`no URL known for node ${nodeId}`);
    }
    return controlCall(call, { secret: this.#o.clusterSecret, baseUrl, timeoutMs: this.#t.requestTimeoutMs, nowMs: this.#now() }, body);
  }

  #status(link: Link): CascadeLinkStatus {
    return {
      roomId: link.roomId,
      remoteNodeId: link.remote.nodeId,
      remoteRegion: link.remote.region,
      linkId: link.linkId,
      initiator: link.initiator,
      connected: link.pipe.connected,
      exported: link.pipe.exportedProducerIds.length,
      imported: link.pipe.importedProducers.size,
      lastOkAgoMs: Math.round(performance.now() - link.lastOkAt),
    };
  }
}
