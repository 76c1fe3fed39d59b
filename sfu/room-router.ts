/**
 * Rooms on top of a WorkerPool: RoomRouter owns the Rooms (./room.ts), each Room its mediasoup
 * Routers and Peers (./peer.ts), each Peer its transports, producers and consumers. Every
 * close() is idempotent and cascades to the children.
 *
 * A room's first Router is created on the least-loaded worker on the first join (concurrent
 * joins share one creation; a failed creation is not cached). The room closes when its last
 * peer leaves. Owner events (`RoomRouterEvents`) are for the region agent's cascade;
 * `observer` (`RoomRouterObserverEvents`) reports new rooms, for monitoring.
 */
import type { types as ms } from 'mediasoup';

import { positiveOption, SfuError } from './errors.ts';
import { DEFAULT_MEDIA_CODECS } from './media-codecs.ts';
import type { JoinOptions, Peer, WebRtcTransportDefaults } from './peer.ts';
import { Room, type PipeOptions, type RoomCloseReason, type RoomContext } from './room.ts';
import { spreadPolicy, type SpreadOptions } from './spread.ts';
import { TypedEmitter } from './typed-emitter.ts';
import type { WorkerPool } from './worker-pool.ts';

export interface RoomRouterOptions {
  pool: WorkerPool;
  mediaCodecs?: readonly ms.RouterRtpCodecCapability[];
  /** ActiveSpeakerObserver interval in ms (default 300). */
  activeSpeakerIntervalMs?: number;
  /** In-node spread settings (./spread.ts), or false to keep every room on one router. */
  spread?: SpreadOptions | false;
  webRtcTransport?: WebRtcTransportDefaults;
  pipe?: PipeOptions;
  /**
   * Least time between two key frame requests to a client's video producer, ms (mediasoup's
   * `keyFrameRequestDelay`; default 0: each request at once). Requests within it are merged and
   * sent when it ends. libwebrtc senders ignore a key frame request that comes within 300 ms of the
   * last one they honoured, and mediasoup then waits a second before asking again: above 300, a
   * new consumer's request is sent when the sender takes it, instead of a second later.
   */
  keyFrameRequestDelayMs?: number;
  /**
   * Ask for the key frames of another region's video ahead (default false). A client's consumers of
   * a producer piped from another node get their first key frame only once mediasoup asks for it,
   * when the client's DTLS handshake has ended: the request and the key frame then cross the
   * inter-region link (a round trip) while the client waits. With this on, the request leaves when
   * the client's transport is ICE-connected, so the key frame travels during the DTLS handshake.
   */
  keyFramesAhead?: boolean;
}

export type RoomRouterEvents = {
  roomcreated: [Room];
  roomclosed: [Room, RoomCloseReason];
  close: [];
};

export type RoomRouterObserverEvents = {
  newroom: [Room];
  close: [];
};

export class RoomRouter extends TypedEmitter<RoomRouterEvents> {
  readonly observer = new TypedEmitter<RoomRouterObserverEvents>();
  readonly #ctx: RoomContext;
  readonly #rooms = new Map<string, Room>();
  readonly #creating = new Map<string, Promise<Room>>();
  #rtpCapabilities: Promise<ms.RtpCapabilities> | undefined;
  #closed = false;

  constructor(options: RoomRouterOptions) {
    super();
    this.#ctx = {
      pool: options.pool,
      mediaCodecs: [...(options.mediaCodecs ?? DEFAULT_MEDIA_CODECS)],
      activeSpeakerIntervalMs: positiveOption(options.activeSpeakerIntervalMs, 300, 'activeSpeakerIntervalMs'),
      spread: spreadPolicy(options.spread, options.pool.size),
      webRtcTransport: { ...options.webRtcTransport },
      keyFrameRequestDelayMs: options.keyFrameRequestDelayMs ?? 0,
      keyFramesAhead: options.keyFramesAhead ?? false,
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

  /**
   * The RTP capabilities of the rooms' routers, for a client that has not joined yet. Every
   * router is created with the same codecs, so mediasoup derives the same capabilities for all of
   * them: those of a probe router, created once (and closed at once); a failure is not cached.
   */
  rtpCapabilities(): Promise<ms.RtpCapabilities> {
    if (this.#closed) return Promise.reject(new SfuError('CLOSED', 'RoomRouter is closed'));
    this.#rtpCapabilities ??= (async () => {
      const router = await this.#ctx.pool.leastLoaded().worker.createRouter({ mediaCodecs: this.#ctx.mediaCodecs });
      const caps = router.rtpCapabilities;
      router.close();
      return caps;
    })().catch((error: unknown) => {
      this.#rtpCapabilities = undefined;
      throw error;
    });
    return this.#rtpCapabilities;
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
          this.observer.safeEmit('newroom', room);
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
  async join(roomId: string, peerId: string, options: JoinOptions = {}): Promise<Peer<Room>> {
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
    this.observer.safeEmit('close');
    this.safeEmit('close');
  }
}
