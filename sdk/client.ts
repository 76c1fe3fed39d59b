import type { ManagerOptions, SocketOptions } from 'socket.io-client';
import type { RegionsResponse } from '../shared/schemas/views.ts';
import type { DeviceOptions, PublishOptions } from './edge-session.ts';
import { probeRegionsView, type ProbeRegionsOptions, type ProbeResult } from './probe.ts';
import { GeoSfuRoom, type RoomListeners } from './room.ts';
import { type AllocateAuth, type Allocation, RouterApi } from './router-api.ts';
import { installWebRtc, type WebRtcImplementation } from './webrtc.ts';

export interface GeoSfuClientOptions extends DeviceOptions {
  /** The global router, e.g. https://geo.example.com. */
  routerUrl: string;
  /** Default: globalThis.fetch. */
  fetch?: typeof fetch;
  /** Node: a WebRTC implementation (e.g. @roamhq/wrtc) installed as the globals mediasoup-client uses. */
  webrtc?: WebRtcImplementation;
  /** Signaling request timeout, ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** Signaling connect timeout (until `welcome`), ms. Default 5 000. */
  connectTimeoutMs?: number;
  /** After a drop, how long to try resuming the same edge before allocating another, ms. Default 1 500. */
  resumeBudgetMs?: number;
  /** Extra socket.io-client options (transports, path, extraHeaders...). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

export interface AllocateOptions {
  /**
   * A grant from the application's backend (browsers), or the API key (servers). Neither: the router
   * must not require auth. A function is called for every /allocate (also the SDK's own after a
   * failure), so a long call can fetch a fresh grant when the first has expired.
   */
  grant?: string | (() => string | Promise<string>);
  apiKey?: string;
  /** Measured RTTs by region; default: the last probeRegions() result, else none (the router falls back to geo-IP). */
  latencies?: Record<string, number>;
  excludeNodeIds?: string[];
  /**
   * What the participant may do on the SFU (publish, subscribe, publishData). Servers with the API
   * key set them; with a grant they can only narrow the grant's. The edge enforces them; the room
   * opens only the transports they allow.
   */
  permissions?: { publish?: boolean; subscribe?: boolean; publishData?: boolean };
  /**
   * The room's region policy (docs/region-policy.md): servers with the API key state it; a grant
   * carries its own. A refusal for it (`NO_ALLOWED_REGION`) is thrown at once, not waited out.
   */
  policy?: { allowedRegions: string[]; preferredRegions?: string[]; allowP2p?: boolean };
  /** How long to keep retrying on 503/429 (Retry-After), ms. Default 30 000. */
  maxRetryWaitMs?: number;
  signal?: AbortSignal;
}

export interface JoinOptions {
  allocation: Allocation;
  /** Published right after joining (video with simulcast unless options say otherwise). */
  tracks?: Array<MediaStreamTrack | { track: MediaStreamTrack; options?: PublishOptions }>;
  displayName?: string;
  /** Large rooms: receive video from the `lastN` most recent active speakers only (audio is never limited). */
  lastN?: number;
  /**
   * How to allocate again after a failure. Default: this client's allocate() with the credential
   * and latencies of the allocate() call that produced `allocation`. Give your own when your
   * backend calls /allocate for the browser.
   */
  reallocate?: (excludeNodeIds: string[]) => Promise<Allocation>;
  /** Room listeners attached before joining (events of the join itself and of a recovery during it). */
  on?: RoomListeners;
}

/**
 * The geo-sfu client: measures RTTs to the regions, asks the router where to go, joins that edge
 * and stays connected across failures.
 *
 *   const client = new GeoSfuClient({ routerUrl });
 *   await client.probeRegions();
 *   const allocation = await client.allocate('room-1', 'alice', { grant });
 *   const room = await client.join({ allocation, tracks: stream.getTracks() });
 *   room.on('trackAdded', ({ peerId, track }) => show(peerId, track));
 */
export class GeoSfuClient {
  readonly api: RouterApi;
  readonly #o: GeoSfuClientOptions;
  #lastProbe: ProbeResult | null = null;
  readonly #allocateCalls = new WeakMap<Allocation, { roomId: string; participantId: string; o: AllocateOptions }>();

  constructor(o: GeoSfuClientOptions) {
    this.#o = o;
    this.api = new RouterApi({ routerUrl: o.routerUrl, ...(o.fetch ? { fetch: o.fetch } : {}) });
    if (o.webrtc) installWebRtc(o.webrtc);
  }

  /** The last probeRegions() result. */
  get lastProbe(): ProbeResult | null {
    return this.#lastProbe;
  }

  regions(signal?: AbortSignal): Promise<RegionsResponse> {
    return this.api.regions(signal);
  }

  /** GET /regions, then RTT probes to every live node (see probe.ts); remembered for allocate(). */
  async probeRegions(options: ProbeRegionsOptions = {}): Promise<ProbeResult> {
    const view = await this.api.regions();
    this.#lastProbe = await probeRegionsView(view, options, this.api.fetch);
    return this.#lastProbe;
  }

  /** POST /allocate with the measured latencies (Retry-After honoured on 503). */
  async allocate(roomId: string, participantId: string, o: AllocateOptions = {}): Promise<Allocation> {
    const grant = typeof o.grant === 'function' ? await o.grant() : o.grant;
    const auth: AllocateAuth = grant !== undefined ? { grant } : o.apiKey !== undefined ? { apiKey: o.apiKey } : {};
    const latencies = o.latencies ?? this.#lastProbe?.latencies;
    const allocation = await this.api.allocate(roomId, participantId, {
      auth,
      ...(latencies ? { latencies } : {}),
      ...(o.excludeNodeIds ? { excludeNodeIds: o.excludeNodeIds } : {}),
      ...(o.permissions ? { permissions: o.permissions } : {}),
      ...(o.policy ? { policy: o.policy } : {}),
      ...(o.maxRetryWaitMs !== undefined ? { maxRetryWaitMs: o.maxRetryWaitMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    this.#allocateCalls.set(allocation, { roomId, participantId, o });
    return allocation;
  }

  /** Connects to the allocation's edge, joins, publishes `tracks` and consumes everyone else's. */
  async join(o: JoinOptions): Promise<GeoSfuRoom> {
    const { allocation } = o;
    const call = this.#allocateCalls.get(allocation);
    const reallocate =
      o.reallocate ??
      ((excludeNodeIds: string[]) => {
        const base = call?.o ?? {};
        return this.allocate(allocation.roomId, allocation.participantId, { ...base, excludeNodeIds: [...new Set([...(base.excludeNodeIds ?? []), ...excludeNodeIds])] });
      });
    return GeoSfuRoom.join(allocation, o.tracks ?? [], {
      participantId: allocation.participantId,
      routerUrl: this.api.routerUrl,
      ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
      ...(o.lastN !== undefined ? { lastN: o.lastN } : {}),
      reallocate,
      ...(this.#o.resumeBudgetMs !== undefined ? { resumeBudgetMs: this.#o.resumeBudgetMs } : {}),
      session: {
        device: { ...(this.#o.handlerName ? { handlerName: this.#o.handlerName } : {}), ...(this.#o.handlerFactory ? { handlerFactory: this.#o.handlerFactory } : {}) },
        ...(this.#o.requestTimeoutMs !== undefined ? { requestTimeoutMs: this.#o.requestTimeoutMs } : {}),
        ...(this.#o.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.#o.connectTimeoutMs } : {}),
        ...(this.#o.socketOptions ? { socketOptions: this.#o.socketOptions } : {}),
      },
    }, o.on);
  }
}
