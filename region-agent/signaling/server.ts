import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { types as ms } from 'mediasoup';
import { Server, type Socket } from 'socket.io';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Refusal } from '../../shared/errors.ts';
import type { CloseSessionRequest, Heartbeat, HeartbeatAck, ParticipantEventAnswer, ParticipantQuality } from '../../shared/schemas/index.ts';
import {
  type Ack,
  type PeerInfoMessage,
  type ParticipantPermissions,
  type ProducerInfoMessage,
  PROTOCOL_VERSION,
  protocolCompatible,
  type RequestName,
  type RequestPayload,
  type ResponseData,
  type ServerEvents,
  type SessionSnapshot,
  type SignalingError,
} from '../../shared/signaling.ts';
import { resolvePermissions, TokenError, verifyJoinToken, type JoinClaims } from '../../shared/tokens.ts';
import { SfuError, type Peer, type PeerOrigin, type Room, type RoomCloseReason } from '../../sfu/index.ts';
import type { AgentController } from '../controller.ts';
import { RouterClient } from '../router-client.ts';
import type { AgentSfu } from '../sfu.ts';
import { AdmittedAllocations } from './admitted-allocations.ts';
import { PeerCaps, RequestLimiter, requestBurst } from './client-limits.ts';
import { ConnectionLimiter } from './connection-limiter.ts';
import { ResumeCredentials } from './credentials.ts';
import { assertPermissionsClaim, assertPermitted } from './permissions.ts';
import { isRequestName, validateAuth, validateRequest } from './validate.ts';

type Direction = 'send' | 'recv';

interface Session {
  readonly key: string;
  readonly roomId: string;
  readonly peerId: string;
  readonly allocationId: string;
  readonly sid: string;
  readonly resume: string;
  /** From the join token's `perm` (absent: everything). */
  readonly permissions: ParticipantPermissions;
  socket: Socket | null;
  peer: Peer | null;
  graceTimer: NodeJS.Timeout | null;
  /** Requests run one after another, in arrival order. */
  queue: Promise<void>;
  /** Router reports run in order (joined before left). */
  reports: Promise<void>;
  joinedReported: boolean;
  /** Set while the router could not say whether the allocation is current: when to ask again. */
  recheckTimer: NodeJS.Timeout | null;
  ended: boolean;
  /** Quality alerts already told to the client (`kind since`). */
  alerts: Set<string>;
}

interface DataProducerEntry {
  dataProducer: ms.DataProducer;
  roomId: string;
  router: ms.Router;
}

export interface SignalingOptions {
  httpServer: HttpServer;
  sfu: AgentSfu;
  config: GeoSfuConfig;
  controller: AgentController;
  logger: FastifyBaseLogger;
  now: () => number;
}

/** After `moved` is sent, how long the client has to flush it before the server disconnects. */
const MOVED_FLUSH_MS = 50;
/** How long close() waits for the `left` reports of the sessions it ends. */
const CLOSE_REPORT_WAIT_MS = 1_000;
/** A session admitted while the router could not answer its `joined` report is asked about again after this many heartbeat intervals. */
const JOIN_RECHECK_HEARTBEATS = 5;

/**
 * The agent's socket.io signaling (see ./README.md): authenticates connections (join token or
 * resume credential), maps requests to the SFU's rooms and peers, forwards room events to the
 * clients, reports joins and leaves to the router, and moves clients away when their worker dies
 * or the agent drains.
 */
export class SignalingServer {
  readonly io: Server;
  readonly #sfu: AgentSfu;
  readonly #config: GeoSfuConfig;
  readonly #controller: AgentController;
  readonly #log: FastifyBaseLogger;
  readonly #now: () => number;
  readonly #credentials = new ResumeCredentials();
  readonly #admitted = new AdmittedAllocations();
  readonly #limiter: ConnectionLimiter;
  readonly #requestLimiter: RequestLimiter<Socket>;
  readonly #caps: PeerCaps;
  readonly #router: RouterClient;
  /** `${roomId}\n${peerId}` → session (connected, or disconnected within the grace period). */
  readonly #sessions = new Map<string, Session>();
  readonly #dataProducers = new Map<string, DataProducerEntry>();
  readonly #wiredRooms = new WeakSet<Room>();
  /** Remote peers (participants of other nodes, seen through region pipes) whose leaving is announced. */
  readonly #wiredRemotePeers = new WeakSet<Peer>();
  readonly #roomCloseReasons = new WeakMap<Room, RoomCloseReason>();
  /** Latest per-participant quality sent in a heartbeat. */
  #quality = new Map<string, ParticipantQuality>();
  #drainTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;

  constructor(opts: SignalingOptions) {
    this.#sfu = opts.sfu;
    this.#config = opts.config;
    this.#controller = opts.controller;
    this.#log = opts.logger.child({ component: 'signaling' });
    this.#now = opts.now;
    this.#router = new RouterClient({
      routerUrl: opts.config.routerUrl,
      clusterSecret: opts.config.clusterSecret,
      timeoutMs: Math.max(1_000, 2 * opts.config.heartbeatIntervalMs),
      now: opts.now,
    });
    this.io = new Server(opts.httpServer, {
      serveClient: false,
      cors: { origin: true },
      pingInterval: 10_000,
      pingTimeout: 5_000,
      maxHttpBufferSize: 256 * 1024,
    });
    this.#limiter = new ConnectionLimiter(opts.config.signalingConnectionsPerMinute, opts.now);
    this.#requestLimiter = new RequestLimiter(opts.config.signalingRequestsPerSecond, requestBurst(opts.config), opts.now);
    this.#caps = new PeerCaps(opts.config);
    this.io.use((socket, next) => {
      try {
        if (!this.#limiter.admit(socket.handshake.address)) {
          throw new Refusal('RATE_LIMITED', `more than ${opts.config.signalingConnectionsPerMinute} signaling connections per minute from this address; try again later`);
        }
        this.#authenticate(socket);
        next();
      } catch (err) {
        const refusal = err instanceof Refusal ? err : new Refusal('INTERNAL', (err as Error).message);
        const error = Object.assign(new Error(refusal.message), { data: { code: refusal.code, message: refusal.message } });
        this.#log.debug({ code: refusal.code }, 'signaling connection refused');
        next(error);
      }
    });
    this.io.on('connection', (socket) => this.#connected(socket));

    opts.sfu.pool.on('workerdied', ({ index, roomIds }) => {
      this.#log.warn({ index, roomIds }, 'SFU worker died: moving its rooms’ participants');
      const lost = new Set(roomIds);
      for (const s of [...this.#sessions.values()]) if (lost.has(s.roomId) && s.peer) this.#move(s, 'worker_died', []);
    });
    opts.controller.on('heartbeat', (heartbeat, ack) => this.#onHeartbeat(heartbeat, ack));
    opts.controller.on('draining', () => this.#onDraining());
  }

  /** Sessions open now (connected or within their grace period). */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Live rebalancing (the router's signed call): tells the participant to move, keeping its session
   * until it leaves from the new edge. False when no connected session holds that allocation.
   */
  requestMove(roomId: string, participantId: string, allocationId: string): boolean {
    const session = this.#sessions.get(sessionKey(roomId, participantId));
    if (!session || session.ended || session.allocationId !== allocationId || !session.socket || !session.peer) return false;
    this.#log.info({ roomId, participantId }, 'rebalancing: participant told to move');
    this.#move(session, 'rebalance', []);
    return true;
  }

  /**
   * The router's signed call (see CloseSessionRequest): closes the session, with `removed` (admin
   * removal, or a newer session of the participant joined elsewhere) or `moved` (its replacement
   * expired: allocate again). With `keepAllocationId`, a session holding that allocation stays.
   * False when no such session is open here.
   */
  closeSession(roomId: string, participantId: string, reason: CloseSessionRequest['reason'], keepAllocationId?: string): boolean {
    const session = this.#sessions.get(sessionKey(roomId, participantId));
    if (!session || session.ended || session.allocationId === keepAllocationId) return false;
    this.#log.info({ roomId, participantId, reason }, 'session closed by the router');
    if (reason === 'expired') this.#move(session, 'allocation_not_current', []);
    else this.#remove(session, reason);
    return true;
  }

  /** Ends every session (reporting `left`), disconnects every client and stops the engine. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#drainTimer) clearTimeout(this.#drainTimer);
      const reports = [...this.#sessions.values()].map((s) => this.#end(s, 'agent closing'));
      this.io.disconnectSockets(true);
      this.io.engine.close();
      await Promise.race([Promise.allSettled(reports), new Promise((r) => setTimeout(r, CLOSE_REPORT_WAIT_MS).unref())]);
    })();
    return this.#closing;
  }

  // --- connection ---

  #authenticate(socket: Socket): void {
    if (this.#closing) throw new Refusal('DRAINING', 'the agent is closing');
    const auth: unknown = socket.handshake.auth;
    const bad = validateAuth(auth);
    if (bad) throw new Refusal('BAD_AUTH', `auth ${bad.message}`, bad.field);
    const { protocolVersion, token, resume } = auth as { protocolVersion: string; token?: string; resume?: string };
    if (!protocolCompatible(protocolVersion)) {
      throw new Refusal('PROTOCOL_VERSION', `protocol ${JSON.stringify(protocolVersion)} is not compatible with ${PROTOCOL_VERSION}`);
    }
    if (resume !== undefined) {
      const claims = this.#credentials.verify(resume);
      if (!claims || claims.node !== this.#controller.nodeId) throw new Refusal('RESUME_INVALID', 'resume credential does not verify on this node');
      const session = this.#sessions.get(sessionKey(claims.room, claims.peer));
      if (!session || session.sid !== claims.sid || session.ended) throw new Refusal('RESUME_EXPIRED', 'the session to resume has ended (grace period over, left, or replaced)');
      socket.data = { resume: session };
      return;
    }
    if (token === undefined) throw new Refusal('AUTH_REQUIRED', 'auth.token (join token) or auth.resume is required');
    if (this.#controller.draining) throw new Refusal('DRAINING', 'this node is draining: allocate again');
    let claims: JoinClaims;
    try {
      claims = verifyJoinToken(this.#config.tokenKeys, token, this.#now(), { region: this.#controller.region, node: this.#controller.nodeId });
    } catch (err) {
      if (err instanceof TokenError) throw new Refusal(`TOKEN_${err.reason}`, err.message);
      throw err;
    }
    for (const field of ['aid', 'room', 'sub'] as const) {
      const v = claims[field];
      if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new Refusal('TOKEN_MALFORMED', `token claim ${field} is not an id`);
    }
    assertPermissionsClaim(claims.perm);
    if (!this.#admitted.admit(claims.aid, claims.exp * 1000, this.#now())) {
      throw new Refusal('TOKEN_USED', 'this join token opened a session already: a dropped session resumes with its resume credential, a new one needs a new allocation');
    }
    socket.data = { claims };
  }

  #connected(socket: Socket): void {
    const data = socket.data as { claims?: JoinClaims; resume?: Session };
    let session: Session;
    let resumed = false;
    if (data.resume && !data.resume.ended && this.#sessions.get(data.resume.key) === data.resume) {
      session = data.resume;
      resumed = true;
      if (session.graceTimer) clearTimeout(session.graceTimer);
      session.graceTimer = null;
      const old = session.socket;
      session.socket = socket;
      old?.disconnect(true);
    } else if (data.claims) {
      const { room, sub, aid } = data.claims;
      const key = sessionKey(room, sub);
      const existing = this.#sessions.get(key);
      // A second connection of the same participant replaces the first.
      if (existing) void this.#end(existing, 'replaced by a new connection', existing.allocationId !== aid);
      const sid = randomUUID();
      session = {
        key,
        roomId: room,
        peerId: sub,
        allocationId: aid,
        sid,
        resume: this.#credentials.sign({ room, peer: sub, node: this.#controller.nodeId, sid }),
        permissions: resolvePermissions(data.claims.perm),
        socket,
        peer: null,
        graceTimer: null,
        queue: Promise.resolve(),
        reports: Promise.resolve(),
        joinedReported: false,
        recheckTimer: null,
        ended: false,
        alerts: new Set(),
      };
      this.#sessions.set(key, session);
    } else {
      // The resumed session ended between the handshake and now.
      socket.disconnect(true);
      return;
    }

    socket.on('disconnect', () => this.#disconnected(session, socket));
    socket.onAny((event: string, ...args: unknown[]) => this.#request(session, socket, event, args));
    this.#send(socket, 'welcome', {
      peerId: session.peerId,
      roomId: session.roomId,
      region: this.#controller.region,
      nodeId: this.#controller.nodeId,
      resume: session.resume,
      resumeGraceMs: this.#config.resumeGraceMs,
      protocolVersion: PROTOCOL_VERSION,
      resumed,
      joined: session.peer !== null,
      ...(resumed && session.peer ? { session: this.#snapshot(session.peer) } : {}),
    });
    this.#log.debug({ roomId: session.roomId, peerId: session.peerId, resumed }, 'signaling session connected');
  }

  #disconnected(session: Session, socket: Socket): void {
    if (session.ended || session.socket !== socket) return;
    session.socket = null;
    if (this.#config.resumeGraceMs === 0) {
      void this.#end(session, 'disconnected');
      return;
    }
    session.graceTimer = setTimeout(() => void this.#end(session, 'resume grace period over'), this.#config.resumeGraceMs);
    session.graceTimer.unref();
  }

  /**
   * Ends a session: closes its SFU peer, reports `left` (when it had joined and `report` holds),
   * disconnects its socket. Resolves when the router heard (or refused) the report.
   */
  #end(session: Session, why: string, report = true): Promise<void> {
    if (session.ended) return session.reports;
    session.ended = true;
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    if (session.recheckTimer) clearTimeout(session.recheckTimer);
    session.recheckTimer = null;
    if (this.#sessions.get(session.key) === session) this.#sessions.delete(session.key);
    const peer = session.peer;
    session.peer = null;
    peer?.close();
    if (report && session.joinedReported) this.#report(session, 'left');
    const socket = session.socket;
    session.socket = null;
    socket?.disconnect(true);
    this.#log.debug({ roomId: session.roomId, peerId: session.peerId, why }, 'signaling session ended');
    return session.reports;
  }

  /** Tells the client to allocate elsewhere; on worker death the session ends at once. */
  #move(session: Session, reason: string, excludeNodeIds: string[]): void {
    if (session.ended) return;
    const socket = session.socket;
    if (socket) this.#send(socket, 'moved', { reason, excludeNodeIds });
    // Make-before-break: the client leaves once it is connected elsewhere.
    if (reason === 'draining' || reason === 'rebalance') return;
    // The SFU state is gone: end now (no resume), let `moved` reach the client before the disconnect.
    const peer = session.peer;
    session.peer = null;
    peer?.close();
    session.socket = null;
    void this.#end(session, `moved: ${reason}`);
    if (socket) setTimeout(() => socket.disconnect(true), MOVED_FLUSH_MS).unref();
  }

  /** Final: `removed` to the client, then the session ends at once (its media stops) and the socket is disconnected. */
  #remove(session: Session, reason: 'removed' | 'replaced'): void {
    const socket = session.socket;
    if (socket) this.#send(socket, 'removed', { reason });
    session.socket = null;
    // The router no longer counts this allocation: no `left` for it.
    void this.#end(session, `removed: ${reason}`, false);
    if (socket) setTimeout(() => socket.disconnect(true), MOVED_FLUSH_MS).unref();
  }

  /**
   * Reports `joined` or `left` (in order, with retries). The answer to `joined` may close the
   * session; when the router cannot answer (it or Redis is away) the session stays — fail open, as
   * the router's degraded mode serves known rooms — and is asked about again after JOIN_RECHECK_HEARTBEATS.
   */
  #report(session: Session, event: 'joined' | 'left'): void {
    const body = { nodeId: this.#controller.nodeId, roomId: session.roomId, participantId: session.peerId, allocationId: session.allocationId };
    session.reports = session.reports.then(async () => {
      for (let attempt = 1; attempt <= 3; attempt++) {
        try {
          if (event === 'left') await this.#router.participantLeft(body);
          else this.#onJoinAnswer(session, await this.#router.participantJoined(body));
          return;
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode;
          // 4xx: the router will not take it however often we try.
          const refused = status !== undefined && status >= 400 && status < 500;
          if (attempt === 3 || refused) {
            this.#log.warn({ ...body, event, err: (err as Error).message }, 'participant event not accepted by the router');
            if (event === 'joined' && !refused && !session.ended) {
              session.recheckTimer = setTimeout(() => {
                session.recheckTimer = null;
                if (!session.ended) this.#report(session, 'joined');
              }, JOIN_RECHECK_HEARTBEATS * this.#config.heartbeatIntervalMs);
              session.recheckTimer.unref();
            }
            return;
          }
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    });
  }

  /** Not current: replaced by a newer allocation or removed by an admin (final), or gone otherwise (allocate again). */
  #onJoinAnswer(session: Session, answer: ParticipantEventAnswer): void {
    if (answer.current || session.ended) return;
    this.#log.info({ roomId: session.roomId, participantId: session.peerId, allocationId: session.allocationId, reason: answer.reason }, 'joined on an allocation that is not current');
    if (answer.reason === 'replaced' || answer.reason === 'removed') this.#remove(session, answer.reason);
    else this.#move(session, 'allocation_not_current', []);
  }

  // --- requests ---

  #request(session: Session, socket: Socket, event: string, args: unknown[]): void {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: Ack<unknown>) => void) : null;
    if (!ack) return; // Every request carries an acknowledgement; anything else is ignored.
    const reply = (r: Ack<unknown>) => {
      if (socket.connected) ack(r);
    };
    if (!this.#requestLimiter.admit(socket)) {
      reply({ ok: false, error: { code: 'RATE_LIMITED', message: `more than ${this.#config.signalingRequestsPerSecond} requests per second on this connection (bursts of ${this.#requestLimiter.burst}); slow down` } });
      return;
    }
    if (!isRequestName(event)) {
      reply({ ok: false, error: { code: 'UNKNOWN_REQUEST', message: `unknown request ${JSON.stringify(event)}` } });
      return;
    }
    const payload = args.length === 0 || args[0] === undefined ? {} : args[0];
    const invalid = validateRequest[event](payload);
    if (invalid) {
      reply({ ok: false, error: invalid });
      return;
    }
    session.queue = session.queue.then(async () => {
      if (session.ended || session.socket !== socket) {
        reply({ ok: false, error: { code: 'CLOSED', message: 'the session is no longer on this connection' } });
        return;
      }
      try {
        assertPermitted(session.permissions, event, payload as never);
        if (session.peer) this.#caps.assertRoomFor(session.peer, event);
        const data = await this.#handle(session, event, payload as never);
        reply({ ok: true, data });
        if (event === 'leave') void this.#end(session, 'left');
      } catch (err) {
        const error = toSignalingError(err);
        if (error.code === 'INTERNAL') this.#log.error({ err, event, peerId: session.peerId }, 'signaling request failed');
        reply({ ok: false, error });
      }
    });
  }

  async #handle<N extends RequestName>(session: Session, name: N, payload: RequestPayload<N>): Promise<ResponseData[N]> {
    const handlers: { [K in RequestName]: (p: RequestPayload<K>) => Promise<ResponseData[K]> } = {
      getRouterRtpCapabilities: async () => ({ rtpCapabilities: (await this.#sfu.routerRtpCapabilities(session.roomId)) as unknown as Record<string, unknown> }),
      join: (p) => this.#join(session, p),
      createWebRtcTransport: async (p) => {
        const peer = joined(session);
        const t = await peer.createWebRtcTransport({ enableSctp: p.sctp ?? false, appData: { direction: p.direction } });
        return {
          transportId: t.id,
          iceParameters: t.iceParameters as unknown as Record<string, unknown>,
          iceCandidates: t.iceCandidates as unknown as Record<string, unknown>[],
          dtlsParameters: t.dtlsParameters as unknown as Record<string, unknown>,
          ...(t.sctpParameters ? { sctpParameters: t.sctpParameters as unknown as Record<string, unknown> } : {}),
        };
      },
      connectTransport: async (p) => {
        await joined(session).connectTransport(p.transportId, { dtlsParameters: p.dtlsParameters as unknown as ms.DtlsParameters });
        return {};
      },
      restartIce: async (p) => {
        const t = transportOf(joined(session), p.transportId);
        if (!('restartIce' in t)) throw new Refusal('NOT_SUPPORTED', 'not a WebRTC transport');
        return { iceParameters: (await (t as ms.WebRtcTransport).restartIce()) as unknown as Record<string, unknown> };
      },
      produce: async (p) => {
        const peer = joined(session);
        transportOf(peer, p.transportId, 'send');
        const producer = await peer.produce({ transportId: p.transportId, kind: p.kind, rtpParameters: p.rtpParameters as unknown as ms.RtpParameters, ...(p.appData ? { appData: p.appData } : {}) });
        return { producerId: producer.id };
      },
      closeProducer: async (p) => {
        joined(session).closeProducer(p.producerId);
        return {};
      },
      pauseProducer: async (p) => {
        const peer = joined(session);
        await peer.pauseProducer(p.producerId);
        this.#toRoom(peer.room, peer.id, 'producerPaused', { producerId: p.producerId });
        return {};
      },
      resumeProducer: async (p) => {
        const peer = joined(session);
        await peer.resumeProducer(p.producerId);
        this.#toRoom(peer.room, peer.id, 'producerResumed', { producerId: p.producerId });
        return {};
      },
      consume: async (p) => {
        const peer = joined(session);
        transportOf(peer, p.transportId, 'recv');
        const consumer = await peer.consume({ transportId: p.transportId, producerId: p.producerId });
        return {
          consumerId: consumer.id,
          producerId: consumer.producerId,
          kind: consumer.kind,
          rtpParameters: consumer.rtpParameters as unknown as Record<string, unknown>,
          producerPaused: consumer.producerPaused,
        };
      },
      resumeConsumer: async (p) => {
        await joined(session).resumeConsumer(p.consumerId);
        return {};
      },
      setPreferredLayers: async (p) => {
        await joined(session).setPreferredLayers(p.consumerId, { spatialLayer: p.spatialLayer, ...(p.temporalLayer !== undefined ? { temporalLayer: p.temporalLayer } : {}) });
        return {};
      },
      produceData: async (p) => {
        const peer = joined(session);
        const t = transportOf(peer, p.transportId, 'send');
        const dataProducer = await t.produceData({
          sctpStreamParameters: p.sctpStreamParameters as unknown as ms.SctpStreamParameters,
          ...(p.label !== undefined ? { label: p.label } : {}),
          ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
          appData: { peerId: peer.id },
        });
        this.#dataProducers.set(dataProducer.id, { dataProducer, roomId: session.roomId, router: peer.router });
        dataProducer.observer.once('close', () => this.#dataProducers.delete(dataProducer.id));
        this.#caps.track(peer, 'dataProducers', dataProducer);
        return { dataProducerId: dataProducer.id };
      },
      consumeData: async (p) => {
        const peer = joined(session);
        const t = transportOf(peer, p.transportId, 'recv');
        const entry = this.#dataProducers.get(p.dataProducerId);
        if (!entry || entry.roomId !== session.roomId || entry.dataProducer.closed) throw new Refusal('NOT_FOUND', `data producer ${p.dataProducerId} not found in this room`);
        if (entry.router !== peer.router) throw new Refusal('NOT_SUPPORTED', 'data channels across the workers of a room are not supported');
        const dc = await t.consumeData({ dataProducerId: p.dataProducerId });
        this.#caps.track(peer, 'dataConsumers', dc);
        return {
          dataConsumerId: dc.id,
          dataProducerId: dc.dataProducerId,
          sctpStreamParameters: (dc.sctpStreamParameters ?? {}) as unknown as Record<string, unknown>,
          label: dc.label,
          protocol: dc.protocol,
        };
      },
      leave: async () => ({}),
    };
    return (handlers[name] as (p: RequestPayload<N>) => Promise<ResponseData[N]>)(payload);
  }

  async #join(session: Session, p: RequestPayload<'join'>): Promise<ResponseData['join']> {
    if (session.peer) throw new Refusal('ALREADY_JOINED', 'already joined');
    const peer = await this.#sfu.rooms.join(session.roomId, session.peerId, {
      rtpCapabilities: p.rtpCapabilities as unknown as ms.RtpCapabilities,
      appData: p.displayName !== undefined ? { displayName: p.displayName } : {},
      ...(p.lastN !== undefined ? { lastN: p.lastN } : {}),
    });
    if (session.ended) {
      peer.close();
      throw new Refusal('CLOSED', 'the session ended while joining');
    }
    session.peer = peer;
    this.#wireRoom(peer.room);
    this.#wirePeer(session, peer);
    session.joinedReported = true;
    this.#report(session, 'joined');
    const snapshot = this.#snapshot(peer);
    return { peerId: peer.id, region: this.#controller.region, peers: snapshot.peers, producers: snapshot.producers, permissions: session.permissions };
  }

  #snapshot(peer: Peer): SessionSnapshot {
    const room = peer.room;
    const peers: PeerInfoMessage[] = [...room.peers.values()].filter((p) => p !== peer).map((p) => this.#peerInfo(p));
    const producers: ProducerInfoMessage[] = [...room.producers.values()]
      .filter(({ peerId }) => peerId !== peer.id)
      .map(({ producer, peerId, remote }) => this.#producerInfo(peerId, producer, remote ? room.remotePeers.get(peerId)?.origin : undefined));
    return {
      peers,
      producers,
      transports: [...peer.transports.values()].map((t) => ({ transportId: t.id, direction: (t.appData as { direction?: Direction }).direction ?? 'send' })),
      producerIds: [...peer.producers.keys()],
      consumers: [...peer.consumers.values()].map((c) => ({ consumerId: c.id, producerId: c.producerId })),
    };
  }

  #peerInfo(peer: Peer): PeerInfoMessage {
    const displayName = peer.appData.displayName;
    return { peerId: peer.id, region: peer.origin?.region ?? this.#controller.region, ...(typeof displayName === 'string' ? { displayName } : {}) };
  }

  /** `origin`: where a producer piped in from another region was published (its publisher's edge). */
  #producerInfo(peerId: string, producer: ms.Producer, origin?: PeerOrigin): ProducerInfoMessage {
    return { producerId: producer.id, peerId, kind: producer.kind, paused: producer.paused, region: origin?.region ?? this.#controller.region };
  }

  // --- events ---

  #wireRoom(room: Room): void {
    if (this.#wiredRooms.has(room)) return;
    this.#wiredRooms.add(room);
    room.on('peerjoined', (peer) => this.#toRoom(room, peer.id, 'peerJoined', this.#peerInfo(peer)));
    room.on('peerleft', (peer) => this.#toRoom(room, peer.id, 'peerLeft', { peerId: peer.id }));
    room.on('newproducer', (peer, producer) => {
      // A participant of another node is known here by its piped producers: it leaves when the
      // room drops it (its last producer closed, or it moved to another node).
      if (peer.origin && !this.#wiredRemotePeers.has(peer)) {
        this.#wiredRemotePeers.add(peer);
        peer.once('close', () => this.#toRoom(room, peer.id, 'peerLeft', { peerId: peer.id }));
      }
      this.#toRoom(room, peer.id, 'newProducer', this.#producerInfo(peer.id, producer, peer.origin));
    });
    room.on('producerclose', (peer, producer) => this.#toRoom(room, peer.id, 'producerClosed', { producerId: producer.id }));
    room.on('activespeaker', (msg) => this.#toRoom(room, null, 'activeSpeaker', msg));
    room.once('close', (reason) => this.#roomCloseReasons.set(room, reason));
  }

  #wirePeer(session: Session, peer: Peer): void {
    const toPeer = <E extends keyof ServerEvents>(event: E, ...args: Parameters<ServerEvents[E]>) => {
      if (session.peer === peer && session.socket) this.#send(session.socket, event, ...args);
    };
    peer.on('consumerclose', (consumer) => toPeer('consumerClosed', { consumerId: consumer.id, producerId: consumer.producerId }));
    // Producers of this room's peers are announced to the whole room by the pause/resume requests;
    // the consumer-level events cover producers that come from elsewhere (piped in).
    const local = (producerId: string) => peer.room.producers.has(producerId);
    peer.on('consumerproducerpause', (c) => local(c.producerId) || toPeer('producerPaused', { producerId: c.producerId }));
    peer.on('consumerproducerresume', (c) => local(c.producerId) || toPeer('producerResumed', { producerId: c.producerId }));
    peer.once('close', () => {
      if (session.peer !== peer || session.ended) return; // closed by us
      // Closed under us (its room closed); the room's close reason is known once Room.close() returns.
      setImmediate(() => {
        const reason = this.#roomCloseReasons.get(peer.room);
        if (session.peer !== peer || session.ended) return;
        if (reason === 'closed') void this.#end(session, 'SFU closed');
        else this.#move(session, reason === 'workerdied' ? 'worker_died' : 'sfu_error', []);
      });
    });
  }

  #toRoom<E extends keyof ServerEvents>(room: Room, exceptPeerId: string | null, event: E, ...args: Parameters<ServerEvents[E]>): void {
    for (const s of this.#sessions.values()) {
      if (s.peer?.room === room && s.peerId !== exceptPeerId && s.socket) this.#send(s.socket, event, ...args);
    }
  }

  #send<E extends keyof ServerEvents>(socket: Socket, event: E, ...args: Parameters<ServerEvents[E]>): void {
    socket.emit(event, ...args);
  }

  #onHeartbeat(heartbeat: Heartbeat, ack: HeartbeatAck): void {
    if (heartbeat.quality) this.#quality = new Map(heartbeat.quality.map((q) => [sessionKey(q.roomId, q.participantId), q]));
    const byParticipant = new Map<string, NonNullable<HeartbeatAck['alerts']>>();
    for (const alert of ack.alerts ?? []) {
      if (alert.nodeId !== this.#controller.nodeId) continue;
      const key = sessionKey(alert.roomId, alert.participantId);
      byParticipant.set(key, [...(byParticipant.get(key) ?? []), alert]);
    }
    for (const session of this.#sessions.values()) {
      const alerts = byParticipant.get(session.key) ?? [];
      const keys = new Set(alerts.map((a) => `${a.kind} ${a.since}`));
      const fresh = [...keys].some((k) => !session.alerts.has(k));
      session.alerts = keys;
      if (!fresh || !session.socket) continue;
      const q = this.#quality.get(session.key);
      const msg = { peerId: session.peerId, packetLoss: q?.packetLoss ?? 0, rttMs: q?.rttMs ?? null, jitterMs: q?.jitterMs ?? null, bitrateBps: q?.bitrateBps ?? 0 };
      for (const a of alerts) {
        if (a.kind === 'packet_loss') msg.packetLoss = Math.max(msg.packetLoss, a.value);
        else msg.rttMs = Math.max(msg.rttMs ?? 0, a.value);
      }
      this.#send(session.socket, 'quality', msg);
    }
  }

  /** Drain: clients are told to move shortly before the deadline (they may leave earlier on their own). */
  #onDraining(): void {
    const deadline = this.#config.drainDeadlineMs;
    const at = Math.max(0, deadline - Math.min(5_000, deadline / 5));
    this.#drainTimer = setTimeout(() => {
      for (const s of [...this.#sessions.values()]) this.#move(s, 'draining', [this.#controller.nodeId]);
    }, at);
    this.#drainTimer.unref();
  }
}

const sessionKey = (roomId: string, peerId: string) => `${roomId}\n${peerId}`;

function joined(session: Session): Peer {
  if (!session.peer) throw new Refusal('NOT_JOINED', 'join first');
  return session.peer;
}

function transportOf(peer: Peer, transportId: string, direction?: Direction): ms.Transport {
  const t = peer.transports.get(transportId);
  if (!t) throw new Refusal('NOT_FOUND', `transport ${transportId} not found`);
  const actual = (t.appData as { direction?: Direction }).direction;
  if (direction && actual !== direction) throw new Refusal('WRONG_DIRECTION', `transport ${transportId} is a ${actual ?? 'non-WebRTC'} transport, not ${direction}`);
  return t;
}

function toSignalingError(err: unknown): SignalingError {
  if (err instanceof Refusal) return { code: err.code, message: err.message, ...(err.field !== undefined ? { field: err.field } : {}) };
  if (err instanceof SfuError) return { code: err.code, message: err.message };
  // mediasoup validates its parameter objects with TypeError.
  if (err instanceof TypeError) return { code: 'INVALID_ARGUMENT', message: err.message };
  return { code: 'INTERNAL', message: (err as Error)?.message ?? String(err) };
}
