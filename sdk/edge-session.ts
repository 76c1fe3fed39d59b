import { Device, type types as mc } from 'mediasoup-client';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import {
  type Ack,
  FATAL_CONNECT_CODES,
  FINAL_REQUEST_CODES,
  type HandshakeRequest,
  type ParticipantPermissions,
  PROTOCOL_VERSION,
  protocolAtLeast,
  type PeerInfoMessage,
  type ProducerInfoMessage,
  type RequestErrorCode,
  type RequestName,
  type RequestPayload,
  type ResponseData,
  type ServerEvents,
  type SessionSnapshot,
  type WelcomeMessage,
} from '../shared/signaling.ts';
import type { SfuAllocation } from './router-api.ts';

/**
 * One signaling connection to one region agent (edge) and the WebRTC state on it: a mediasoup
 * Device loaded with that router's capabilities, a send and a recv transport, this participant's
 * producers and its consumers of the others' producers. `GeoSfuRoom` holds one of these (two
 * during a make-before-break move) and replaces it on failure.
 */

export class SignalingError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'SignalingError';
  }
}

/** A request's answer, or its refusal as a SignalingError. */
function unwrap<T>(name: string, reply: Ack<T>): T {
  if (!reply.ok) throw new SignalingError(reply.error.code, `${name}: ${reply.error.message}`, reply.error.field);
  return reply.data;
}

/** Connect errors after which the same credential will never work on that node (shared/signaling.ts). */
export const isFatalConnectError = (err: unknown): boolean => err instanceof SignalingError && FATAL_CONNECT_CODES.has(err.code);
/** Request refusals every node would repeat (FORBIDDEN, a per-participant cap): not retried, no failover. */
export const isFinalRequestError = (err: unknown): boolean => err instanceof SignalingError && FINAL_REQUEST_CODES.has(err.code as RequestErrorCode);

export interface DeviceOptions {
  /** A built-in mediasoup-client handler name (default: detected from the environment). */
  handlerName?: mc.BuiltinHandlerName;
  /** Or a handler factory (e.g. FakeHandler for tests, a custom one for exotic runtimes). */
  handlerFactory?: mc.HandlerFactory;
}

/** What to publish: a track and how. Video gets simulcast encodings unless `encodings` says otherwise. */
export interface PublishOptions {
  /** Default for video: three simulcast layers (¼, ½, full resolution; 150 k, 500 k, 1.2 Mbit/s). `null`: a single encoding. */
  encodings?: mc.RtpEncodingParameters[] | null;
  codecOptions?: mc.ProducerCodecOptions;
  /** Sent to the SFU with the producer (≤ 16 keys). */
  appData?: Record<string, unknown>;
}

export const DEFAULT_SIMULCAST: mc.RtpEncodingParameters[] = [
  { rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

export interface LocalTrack {
  /** Stable across edges (the producer id changes when the SDK republishes elsewhere). */
  localId: string;
  track: MediaStreamTrack;
  options: PublishOptions;
  paused: boolean;
}

export interface RemoteConsumer {
  consumer: mc.Consumer;
  info: ProducerInfoMessage;
}

export interface EdgeSessionHooks {
  /** A server event (peerJoined, newProducer, moved, ...). */
  onEvent<K extends keyof ServerEvents>(event: K, msg: Parameters<ServerEvents[K]>[0]): void;
  /** The signaling connection dropped without `close()` (reason from socket.io). */
  onLost(reason: string): void;
  /** A WebRTC transport reached `failed` (ICE). */
  onTransportState(direction: 'send' | 'recv', state: string): void;
}

export interface EdgeSessionOptions {
  allocation: SfuAllocation;
  device: DeviceOptions;
  /** Set here or later with setHooks() (before open()). */
  hooks?: EdgeSessionHooks;
  displayName?: string;
  /** Receive video from the `lastN` most recent active speakers only (0/absent: no limit). */
  lastN?: number;
  /** Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Default 5 000 ms. */
  connectTimeoutMs?: number;
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

type SignalingSocket = Socket;

export class EdgeSession {
  readonly allocation: SfuAllocation;
  readonly #o: EdgeSessionOptions;
  #hooks: EdgeSessionHooks | null;
  #socket: SignalingSocket | null = null;
  #device: Device | null = null;
  #send: mc.Transport | null = null;
  #sendCreating: Promise<mc.Transport> | null = null;
  #recv: mc.Transport | null = null;
  #recvReady: Promise<mc.Transport> | null = null;
  #closed = false;
  welcome: WelcomeMessage | null = null;
  joined: ResponseData['join'] | null = null;
  /** Local track id → producer on this edge. */
  readonly producers = new Map<string, mc.Producer>();
  /** Remote producer id → consumer on this edge. */
  readonly consumers = new Map<string, RemoteConsumer>();
  readonly #consuming = new Map<string, Promise<RemoteConsumer | null>>();
  /**
   * The room's other producers as this session heard of them: the join answer's, then `newProducer`
   * and `producerClosed`, whether or not the room has made this session its current one yet (a
   * session opened for a failover or a move is not current until it has joined, and producers piped
   * in meanwhile are announced only by events).
   */
  readonly #roomProducers = new Map<string, ProducerInfoMessage>();
  /** The room's other peers, heard of the same way. */
  readonly #roomPeers = new Map<string, PeerInfoMessage>();
  /**
   * The agent's jitter buffer target for the consumer of each producer (protocol 1.4: the consume
   * answer's, then `consumerJitterBuffer`), by producer id: kept from the answer on, so a change
   * that comes while the local consumer is being made is applied once it is.
   */
  readonly #jitterBufferTargets = new Map<string, number>();
  /** Consumers the agent made with the recv transport (`consumeAll`), by producer id, until consumed here. */
  readonly #madeWithTransport = new Map<string, ResponseData['consume']>();

  constructor(o: EdgeSessionOptions) {
    this.allocation = o.allocation;
    this.#o = o;
    this.#hooks = o.hooks ?? null;
  }

  setHooks(hooks: EdgeSessionHooks): void {
    this.#hooks = hooks;
  }

  get nodeId(): string {
    return this.allocation.node.id;
  }
  get region(): string {
    return this.allocation.region;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get connected(): boolean {
    return this.#socket?.connected ?? false;
  }

  /**
   * What this participant may do here (the join answer's, or the welcome's before it; everything
   * before either, or from an agent that does not say).
   */
  get permissions(): ParticipantPermissions {
    return this.joined?.permissions ?? this.welcome?.permissions ?? { publish: true, subscribe: true, publishData: true };
  }

  /**
   * Connects with the join token, loads the Device, joins the room and opens the recv transport
   * (when the participant may subscribe) and, with `send`, the send transport (when it may publish).
   */
  async open(opts: { send?: boolean } = {}): Promise<ResponseData['join']> {
    // Protocol 1.3: with the agent's capabilities from /allocate, the Device loads while the
    // connection opens, and the join and transports ride in its handshake, answered right after
    // the welcome: no round trip of their own.
    const known = this.allocation.node.rtpCapabilities;
    if (known) {
      const requests = this.#loadDevice(known).then((device): HandshakeRequest[] => {
        this.#device = device;
        return [
          { name: 'join', payload: this.#joinPayload(device) },
          { name: 'createWebRtcTransport', payload: { direction: 'recv', consumeAll: true } },
          ...(opts.send ? [{ name: 'createWebRtcTransport', payload: { direction: 'send' } }] : []),
        ];
      });
      const { welcome, answers } = await this.#connect({ token: this.allocation.token }, { count: opts.send ? 3 : 2, requests });
      this.welcome = welcome;
      return this.#joinedInHandshake(answers);
    }
    const { welcome } = await this.#connect({ token: this.allocation.token });
    this.welcome = welcome;
    // An agent before protocol 1.1 does not put the capabilities and permissions in its welcome.
    const rtpCapabilities = welcome.rtpCapabilities ?? (await this.request('getRouterRtpCapabilities', {})).rtpCapabilities;
    const device = (this.#device = await this.#loadDevice(rtpCapabilities));
    const joining = this.request('join', this.#joinPayload(device));
    // Requests of one connection run in order on the agent: the transports asked for right behind
    // the join are made once it has joined, a round trip sooner. (Without the welcome's
    // permissions, after the join answer.) Producers announced from now on wait for #recvReady.
    // Since protocol 1.2 the recv transport comes with consumers of the room's producers, so the
    // first remote media needs no `consume` round trip either.
    const consumeAll = protocolAtLeast(welcome.protocolVersion, 2);
    const transports = () => {
      const { publish, subscribe } = this.permissions;
      if (subscribe) this.#recvReady = this.#createTransport('recv', consumeAll).then((t) => (this.#recv = t));
      return Promise.all([this.#recvReady, opts.send && publish ? this.#sendTransport() : undefined]);
    };
    const pipelined = welcome.permissions ? transports() : null;
    // A refused join fails the transports behind it too: the join's error is the one to report.
    pipelined?.catch(() => undefined);
    this.joined = await joining;
    // Room events reach a peer only once it has joined: the join answer comes before them.
    for (const p of this.joined.producers) this.#roomProducers.set(p.producerId, p);
    for (const p of this.joined.peers) this.#roomPeers.set(p.peerId, p);
    await (pipelined ?? transports());
    return this.joined;
  }

  async #loadDevice(routerRtpCapabilities: Record<string, unknown>): Promise<Device> {
    const device = this.#o.device.handlerFactory ? new Device({ handlerFactory: this.#o.device.handlerFactory }) : new Device(this.#o.device.handlerName ? { handlerName: this.#o.device.handlerName } : {});
    await device.load({ routerRtpCapabilities: routerRtpCapabilities as unknown as mc.RtpCapabilities });
    return device;
  }

  #joinPayload(device: Device): RequestPayload<'join'> {
    return {
      rtpCapabilities: device.recvRtpCapabilities as unknown as Record<string, unknown>,
      ...(this.#o.displayName !== undefined ? { displayName: this.#o.displayName } : {}),
      ...(this.#o.lastN !== undefined ? { lastN: this.#o.lastN } : {}),
    };
  }

  /**
   * The handshake's answers: [join, recv transport (with the room's consumers), send transport if
   * asked]. A transport the welcome's permissions do not allow was refused and is not opened.
   */
  async #joinedInHandshake(answers: Promise<Ack<unknown>>[]): Promise<ResponseData['join']> {
    const [join, recv, send] = answers as [Promise<Ack<ResponseData['join']>>, ...Promise<Ack<ResponseData['createWebRtcTransport']>>[]];
    const { publish, subscribe } = this.permissions;
    // Set before the join answer, as in the pipelined path: producers announced after it wait for these.
    if (subscribe && recv) this.#recvReady = recv.then((r) => (this.#recv = this.#transportFrom('recv', unwrap('createWebRtcTransport', r))));
    if (publish && send) this.#sendCreating = send.then((r) => (this.#send = this.#transportFrom('send', unwrap('createWebRtcTransport', r))));
    const transports = Promise.all([this.#recvReady, this.#sendCreating]);
    // A refused join fails the transports behind it too: the join's error is the one to report.
    transports.catch(() => undefined);
    this.joined = unwrap('join', await join);
    for (const p of this.joined.producers) this.#roomProducers.set(p.producerId, p);
    for (const p of this.joined.peers) this.#roomPeers.set(p.peerId, p);
    await transports;
    return this.joined;
  }

  /** Reconnects with the resume credential; resolves with what survived on the SFU. */
  async resume(): Promise<SessionSnapshot | undefined> {
    if (!this.welcome) throw new Error('nothing to resume');
    const { welcome } = await this.#connect({ resume: this.welcome.resume });
    this.welcome = welcome;
    return welcome.session;
  }

  /**
   * Connects; resolves at the welcome, with a promise of each handshake request's answer (settled
   * with CLOSED if the connection drops first, TIMEOUT after the request timeout). `handshake`:
   * `count` requests, sent when the socket.io handshake goes out (so they may still be in the
   * making while the connection opens); failing to make them fails the connection.
   */
  #connect(
    auth: { token: string } | { resume: string },
    handshake?: { count: number; requests: Promise<HandshakeRequest[]> },
  ): Promise<{ welcome: WelcomeMessage; answers: Promise<Ack<unknown>>[] }> {
    this.#socket?.removeAllListeners();
    this.#socket?.close();
    const timeoutMs = this.#o.connectTimeoutMs ?? 5_000;
    const socket: SignalingSocket = io(this.allocation.node.signalingUrl, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      ...this.#o.socketOptions,
      // socket.io asks for the auth when it sends its handshake, once the connection is open.
      auth: handshake
        ? (send: (data: object) => void) => void handshake.requests.then((requests) => send({ protocolVersion: PROTOCOL_VERSION, ...auth, requests }), () => undefined)
        : { protocolVersion: PROTOCOL_VERSION, ...auth },
    });
    this.#socket = socket;
    const answers = Array.from({ length: handshake?.count ?? 0 }, (_, index) => {
      let settle!: (reply: Ack<unknown>) => void;
      const answer = new Promise<Ack<unknown>>((resolve) => (settle = resolve));
      const timer = setTimeout(() => settle({ ok: false, error: { code: 'TIMEOUT', message: `handshake request ${index}: no answer from ${this.nodeId}` } }), this.#o.requestTimeoutMs ?? 10_000);
      void answer.then(() => clearTimeout(timer));
      return { answer, settle };
    });
    if (answers.length > 0) {
      socket.on('handshakeAnswer', ({ index, reply }: Parameters<ServerEvents['handshakeAnswer']>[0]) => {
        if (Number.isInteger(index)) answers[index]?.settle(reply);
      });
      socket.on('disconnect', () => {
        for (const a of answers) a.settle({ ok: false, error: { code: 'CLOSED', message: `${this.nodeId}: disconnected before answering` } });
      });
    }
    const events: Array<keyof ServerEvents> = ['peerJoined', 'peerLeft', 'newProducer', 'producerClosed', 'producerPaused', 'producerResumed', 'consumerClosed', 'consumerJitterBuffer', 'activeSpeaker', 'quality', 'moved', 'removed'];
    for (const event of events) {
      socket.on(event, (msg: Parameters<ServerEvents[typeof event]>[0]) => {
        if (this.#socket !== socket || this.#closed) return;
        if (event === 'newProducer') this.#roomProducers.set((msg as ProducerInfoMessage).producerId, msg as ProducerInfoMessage);
        if (event === 'producerClosed') {
          this.#roomProducers.delete((msg as { producerId: string }).producerId);
          this.#jitterBufferTargets.delete((msg as { producerId: string }).producerId);
        }
        if (event === 'consumerJitterBuffer') {
          this.#setJitterBufferTarget(msg as Parameters<ServerEvents['consumerJitterBuffer']>[0]);
          return;
        }
        if (event === 'peerJoined') this.#roomPeers.set((msg as PeerInfoMessage).peerId, msg as PeerInfoMessage);
        if (event === 'peerLeft') this.#roomPeers.delete((msg as { peerId: string }).peerId);
        this.#hooks?.onEvent(event, msg);
      });
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => fail(new SignalingError('CONNECT_TIMEOUT', `no welcome from ${this.nodeId} within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeAllListeners();
        socket.close();
        reject(err);
      };
      socket.once('welcome', (welcome: WelcomeMessage) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.on('disconnect', (reason) => {
          if (this.#socket === socket && !this.#closed) this.#hooks?.onLost(reason);
        });
        resolve({ welcome, answers: answers.map((a) => a.answer) });
      });
      socket.once('connect_error', (err: Error & { data?: { code?: string; message?: string } }) =>
        fail(err.data?.code ? new SignalingError(err.data.code, `${this.nodeId}: ${err.data.message ?? err.data.code}`) : new SignalingError('CONNECT_FAILED', `${this.nodeId}: ${err.message}`)),
      );
      socket.once('disconnect', (reason) => fail(new SignalingError('CONNECT_FAILED', `${this.nodeId}: disconnected before welcome (${reason})`)));
      handshake?.requests.catch((err: unknown) => fail(err as Error));
    });
  }

  /** One request with its ack; throws SignalingError with the agent's code. */
  async request<N extends RequestName>(name: N, payload: RequestPayload<N>): Promise<ResponseData[N]> {
    const socket = this.#socket;
    if (!socket || this.#closed) throw new SignalingError('CLOSED', `${name}: session closed`);
    let reply: Ack<ResponseData[N]>;
    try {
      reply = (await socket.timeout(this.#o.requestTimeoutMs ?? 10_000).emitWithAck(name, payload)) as Ack<ResponseData[N]>;
    } catch {
      throw new SignalingError('TIMEOUT', `${name}: no answer from ${this.nodeId}`);
    }
    return unwrap(name, reply);
  }

  async #createTransport(direction: 'send' | 'recv', consumeAll = false): Promise<mc.Transport> {
    return this.#transportFrom(direction, await this.request('createWebRtcTransport', { direction, ...(consumeAll ? { consumeAll } : {}) }));
  }

  /** The local side of a transport the agent created (`createWebRtcTransport`'s answer). */
  #transportFrom(direction: 'send' | 'recv', t: ResponseData['createWebRtcTransport']): mc.Transport {
    const device = this.#device!;
    for (const c of t.consumers ?? []) {
      this.#madeWithTransport.set(c.producerId, c);
      this.#jitterBufferTargets.set(c.producerId, c.jitterBufferTargetMs ?? 0);
    }
    const options: mc.TransportOptions = {
      id: t.transportId,
      iceParameters: t.iceParameters as unknown as mc.IceParameters,
      iceCandidates: t.iceCandidates as unknown as mc.IceCandidate[],
      dtlsParameters: t.dtlsParameters as unknown as mc.DtlsParameters,
      iceServers: this.allocation.iceServers as RTCIceServer[],
    };
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.request('connectTransport', { transportId: transport.id, dtlsParameters: dtlsParameters as unknown as Record<string, unknown> }).then(() => callback(), errback);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        this.request('produce', { transportId: transport.id, kind, rtpParameters: rtpParameters as unknown as Record<string, unknown>, appData })
          .then(({ producerId }) => callback({ id: producerId }), errback);
      });
    }
    transport.on('connectionstatechange', (state) => {
      if (!this.#closed) this.#hooks?.onTransportState(direction, state);
    });
    return transport;
  }

  /** New ICE credentials on both transports (after an ICE failure while signaling is up). */
  async restartIce(): Promise<void> {
    for (const transport of [this.#send, this.#recv]) {
      if (!transport || transport.closed) continue;
      const { iceParameters } = await this.request('restartIce', { transportId: transport.id });
      await transport.restartIce({ iceParameters: iceParameters as unknown as mc.IceParameters });
    }
  }

  async #sendTransport(): Promise<mc.Transport> {
    if (this.#send) return this.#send;
    this.#sendCreating ??= this.#createTransport('send').then((t) => (this.#send = t));
    return this.#sendCreating;
  }

  async produce(local: LocalTrack): Promise<mc.Producer> {
    if (!this.permissions.publish) throw new SignalingError('FORBIDDEN', `produce: participant ${this.allocation.participantId} may not publish`);
    const transport = await this.#sendTransport();
    const video = local.track.kind === 'video';
    const encodings = local.options.encodings === null ? undefined : (local.options.encodings ?? (video ? DEFAULT_SIMULCAST : undefined));
    const producer = await transport.produce({
      track: local.track,
      stopTracks: false, // the application owns its tracks; they are republished on another edge after a failure
      ...(encodings ? { encodings } : {}),
      ...(local.options.codecOptions ? { codecOptions: local.options.codecOptions } : {}),
      appData: { ...local.options.appData, localId: local.localId, ...captureOf(local.track) },
    });
    this.producers.set(local.localId, producer);
    if (local.paused) await this.setPaused(local.localId, true);
    return producer;
  }

  async unpublish(localId: string): Promise<void> {
    const producer = this.producers.get(localId);
    if (!producer) return;
    this.producers.delete(localId);
    producer.close();
    await this.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
  }

  async setPaused(localId: string, paused: boolean): Promise<void> {
    const producer = this.producers.get(localId);
    if (!producer) return;
    if (paused) producer.pause();
    else producer.resume();
    await this.request(paused ? 'pauseProducer' : 'resumeProducer', { producerId: producer.id });
  }

  /** Consumes a remote producer (consume → local consumer → resumeConsumer); null when it is gone or not consumable. */
  consume(info: ProducerInfoMessage): Promise<RemoteConsumer | null> {
    const existing = this.consumers.get(info.producerId);
    if (existing) return Promise.resolve(existing);
    let pending = this.#consuming.get(info.producerId);
    if (!pending) {
      pending = this.#consume(info).finally(() => this.#consuming.delete(info.producerId));
      this.#consuming.set(info.producerId, pending);
    }
    return pending;
  }

  async #consume(info: ProducerInfoMessage): Promise<RemoteConsumer | null> {
    const recv = this.#recv ?? (await this.#recvReady?.catch(() => null));
    if (!recv || this.#closed) return null;
    const made = this.#madeWithTransport.get(info.producerId);
    this.#madeWithTransport.delete(info.producerId);
    const c = made ?? (await this.request('consume', { transportId: recv.id, producerId: info.producerId }));
    // A consumer made with the transport: its target was kept from that answer on (a change since is in it).
    if (!made) this.#jitterBufferTargets.set(c.producerId, c.jitterBufferTargetMs ?? 0);
    const consumer = await recv.consume({ id: c.consumerId, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters as unknown as mc.RtpParameters });
    applyJitterBufferTarget(consumer, this.#jitterBufferTargets.get(c.producerId) ?? 0);
    const remote: RemoteConsumer = { consumer, info: { ...info, paused: c.producerPaused } };
    this.consumers.set(info.producerId, remote);
    await this.request('resumeConsumer', { consumerId: c.consumerId });
    return remote;
  }

  /** A `consumerJitterBuffer` of a consumer this session asked for: kept, and applied when the local consumer is made. */
  #setJitterBufferTarget({ consumerId, producerId, jitterBufferTargetMs }: Parameters<ServerEvents['consumerJitterBuffer']>[0]): void {
    if (!this.#jitterBufferTargets.has(producerId) || !Number.isFinite(jitterBufferTargetMs)) return;
    this.#jitterBufferTargets.set(producerId, jitterBufferTargetMs);
    const remote = this.consumers.get(producerId);
    if (remote?.consumer.id === consumerId) applyJitterBufferTarget(remote.consumer, jitterBufferTargetMs);
  }

  /** Drops the local consumer of a remote producer; returns it if there was one. */
  dropConsumer(producerId: string): RemoteConsumer | undefined {
    this.#madeWithTransport.delete(producerId);
    this.#jitterBufferTargets.delete(producerId);
    const remote = this.consumers.get(producerId);
    if (!remote) return undefined;
    this.consumers.delete(producerId);
    remote.consumer.close();
    return remote;
  }

  async setPreferredLayers(producerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const remote = this.consumers.get(producerId);
    if (!remote) throw new SignalingError('NOT_FOUND', `not consuming ${producerId}`);
    await this.request('setPreferredLayers', { consumerId: remote.consumer.id, spatialLayer, ...(temporalLayer !== undefined ? { temporalLayer } : {}) });
  }

  /** Ends the session: `leave` (when asked and still connected), then closes transports and the socket. */
  async close(opts: { leave: boolean }): Promise<void> {
    if (this.#closed) return;
    if (opts.leave && this.#socket?.connected) {
      await Promise.race([this.request('leave', {}).catch(() => undefined), new Promise((r) => setTimeout(r, 2_000))]);
    }
    this.#closed = true;
    for (const p of this.producers.values()) p.close();
    for (const c of this.consumers.values()) c.consumer.close();
    this.#send?.close();
    this.#recv?.close();
    const socket = this.#socket;
    socket?.removeAllListeners();
    socket?.close();
  }

  /** The room's other producers as this session knows them now (see #roomProducers). */
  roomProducers(): ProducerInfoMessage[] {
    return [...this.#roomProducers.values()];
  }

  /** WebRTC stats of the transports (the peer connections'; works where RTCRtpReceiver.getStats() does not, e.g. wrtc). */
  async getStats(): Promise<{ send: RTCStatsReport | null; recv: RTCStatsReport | null }> {
    const [send, recv] = await Promise.all([this.#send?.getStats().catch(() => null) ?? null, this.#recv?.getStats().catch(() => null) ?? null]);
    return { send, recv };
  }

  /** The room's other peers as this session knows them now (see #roomProducers). */
  peers(): PeerInfoMessage[] {
    return [...this.#roomPeers.values()];
  }
}

/**
 * A video track's capture size and rate, declared at produce time: the SFU measures bitrates and
 * layers but does not decode video, so the dashboard derives each layer's resolution from this.
 */
function captureOf(track: MediaStreamTrack): { capture?: { width: number; height: number; frameRate?: number } } {
  if (track.kind !== 'video' || typeof track.getSettings !== 'function') return {};
  const { width, height, frameRate } = track.getSettings();
  if (!width || !height) return {};
  return { capture: { width, height, ...(frameRate ? { frameRate } : {}) } };
}

/**
 * How long the browser holds the consumer's media before it plays (`RTCRtpReceiver.jitterBufferTarget`,
 * ms; 0: its own choice). Browsers without it (or a receiver already gone) keep their own.
 */
function applyJitterBufferTarget(consumer: mc.Consumer, targetMs: number): void {
  const receiver = consumer.rtpReceiver as (RTCRtpReceiver & { jitterBufferTarget?: number | null }) | undefined;
  if (!receiver || consumer.closed || !('jitterBufferTarget' in receiver)) return;
  try {
    receiver.jitterBufferTarget = targetMs > 0 ? Math.min(targetMs, 4_000) : null;
  } catch {
    // Out of the browser's range: it keeps its own.
  }
}
