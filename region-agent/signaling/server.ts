import type { Server as HttpServer } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { Server, type Socket } from 'socket.io';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Refusal } from '../../shared/errors.ts';
import type { CloseSessionRequest, InventoryRoom, RoomNodeSet } from '../../shared/schemas/index.ts';
import { type Ack, PROTOCOL_VERSION } from '../../shared/signaling.ts';
import type { AgentController } from '../controller.ts';
import type { RouterClient } from '../router-client.ts';
import type { AgentSfu } from '../sfu.ts';
import type { types as ms } from '../../sfu/index.ts';
import { SignalingAuth } from './auth.ts';
import { PeerCaps, RequestLimiter, requestBurst } from './client-limits.ts';
import { ConnectionLimiter } from './connection-limiter.ts';
import { ResumeCredentials } from './credentials.ts';
import { PIPED_VIDEO_BUFFER_REFRESH_MS, PipedVideoBuffers, type LinkVideoBuffer } from './piped-video-buffer.ts';
import { QualityAlerts } from './quality-alerts.ts';
import { connectRefusal } from './refusals.ts';
import { Requests } from './requests.ts';
import { RoomEvents } from './room-events.ts';
import { RouterReports } from './router-reports.ts';
import { send, Sessions, type Admission, type Session } from './sessions.ts';

export interface SignalingOptions {
  httpServer: HttpServer;
  sfu: AgentSfu;
  config: GeoSfuConfig;
  controller: AgentController;
  /** The agent's client of the router (joins and leaves are reported through it). */
  router: RouterClient;
  /** The router answered a `joined` report as current, with the room's node set when it sent one (the cascade takes it). */
  onJoinCurrent?: (roomId: string, set: RoomNodeSet | undefined) => void;
  /** The jitter buffer target of the video piped in over each cascade link (absent: no cascade, none). */
  pipedVideoBuffer?: LinkVideoBuffer;
  logger: FastifyBaseLogger;
  now: () => number;
}

/**
 * The agent's socket.io signaling (see ./README.md): the wiring of connections (rate limit, then
 * ./auth.ts), sessions (./sessions.ts), requests (./requests.ts, one handler each in
 * ./handlers.ts), room events (./room-events.ts) and router reports (./router-reports.ts); moves
 * clients away when their worker dies or the agent drains.
 */
export class SignalingServer {
  readonly io: Server;
  readonly #config: GeoSfuConfig;
  readonly #controller: AgentController;
  readonly #sfu: AgentSfu;
  readonly #log: FastifyBaseLogger;
  readonly #sessions: Sessions;
  readonly #requests: Requests;
  readonly #credentials = new ResumeCredentials();
  #drainTimer: NodeJS.Timeout | null = null;
  #videoBufferTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;

  constructor(opts: SignalingOptions) {
    const { config, controller, sfu } = opts;
    this.#config = config;
    this.#controller = controller;
    this.#sfu = sfu;
    const log = (this.#log = opts.logger.child({ component: 'signaling' }));
    const reports = new RouterReports({
      router: opts.router,
      nodeId: controller.nodeId,
      logger: log,
      recheckAfterMs: config.joinRecheckHeartbeats * config.heartbeatIntervalMs,
      attempts: config.joinReportAttempts,
      retryDelayMs: config.joinReportRetryMs,
      onJoinAnswer: (session, answer) => {
        if (answer.current) opts.onJoinCurrent?.(session.roomId, answer.room);
        sessions.onJoinAnswer(session, answer);
      },
    });
    const sessions = (this.#sessions = new Sessions({ logger: log, reports, resumeGraceMs: config.resumeGraceMs, flushMs: config.signalingFlushMs }));
    const events = new RoomEvents({
      sessions,
      region: controller.region,
      onPeerLost: (session, reason) => {
        if (reason === 'closed') void sessions.end(session, 'SFU closed');
        else sessions.move(session, reason === 'workerdied' ? 'worker_died' : 'sfu_error', []);
      },
    });
    const videoBuffers = new PipedVideoBuffers(sessions, opts.pipedVideoBuffer ?? (() => 0));
    if (opts.pipedVideoBuffer) {
      this.#videoBufferTimer = setInterval(() => videoBuffers.refresh(), PIPED_VIDEO_BUFFER_REFRESH_MS);
      this.#videoBufferTimer.unref();
    }
    const requests = (this.#requests = new Requests({
      sessions,
      limiter: new RequestLimiter(config.signalingRequestsPerSecond, requestBurst(config), opts.now),
      requestsPerSecond: config.signalingRequestsPerSecond,
      context: { sfu, region: controller.region, events, reports, caps: new PeerCaps(config), dataProducers: new Map(), videoBuffers },
      logger: log,
    }));
    const auth = new SignalingAuth({ tokenKeys: config.tokenKeys, credentials: this.#credentials, sessions, agent: controller, now: opts.now });
    const limiter = new ConnectionLimiter(config.signalingConnectionsPerMinute, opts.now);

    this.io = new Server(opts.httpServer, { serveClient: false, cors: { origin: true }, pingInterval: config.signalingPingIntervalMs, pingTimeout: config.signalingPingTimeoutMs, maxHttpBufferSize: 256 * 1024 });
    this.io.use((socket, next) => {
      try {
        if (!limiter.admit(socket.handshake.address)) {
          throw connectRefusal('RATE_LIMITED', `more than ${config.signalingConnectionsPerMinute} signaling connections per minute from this address; try again later`);
        }
        if (this.#closing) throw connectRefusal('DRAINING', 'the agent is closing');
        socket.data = auth.admit(socket.handshake.auth);
        next();
      } catch (err) {
        const refusal = err instanceof Refusal ? err : connectRefusal('INTERNAL', (err as Error).message);
        log.debug({ code: refusal.code }, 'signaling connection refused');
        next(Object.assign(new Error(refusal.message), { data: { code: refusal.code, message: refusal.message } }));
      }
    });
    this.io.on('connection', (socket) => {
      const session = this.#connected(socket, socket.data as Admission, events);
      if (!session) return;
      socket.on('disconnect', () => sessions.disconnected(session, socket));
      socket.onAny((event: string, ...args: unknown[]) => requests.receive(session, socket, event, args));
    });

    sfu.pool.on('workerdied', ({ index, roomIds }) => {
      log.warn({ index, roomIds }, 'SFU worker died: moving its rooms’ participants');
      const lost = new Set(roomIds);
      for (const s of sessions.all()) if (lost.has(s.roomId) && s.peer) sessions.move(s, 'worker_died', []);
    });
    const quality = new QualityAlerts(sessions, controller.nodeId);
    controller.on('heartbeat', (heartbeat, ack) => quality.onHeartbeat(heartbeat, ack));
    controller.on('draining', () => this.#onDraining());
  }

  /** Joined sessions waiting for their client to resume (for the heartbeat: the dashboard shows them "reconnecting"). */
  reconnecting(): { roomId: string; participantId: string; forMs: number }[] {
    return this.#sessions.reconnecting();
  }

  /**
   * Every session open here (connected, joined, or waiting for a resume), by room: the router's
   * reconcile re-creates from it the allocations Redis lost in a failover, and drops what Redis
   * still counts here but this node no longer serves.
   */
  inventory(): InventoryRoom[] {
    const rooms = new Map<string, InventoryRoom>();
    for (const s of this.#sessions.all()) {
      if (s.ended) continue;
      let room = rooms.get(s.roomId);
      if (!room) rooms.set(s.roomId, (room = { roomId: s.roomId, participants: [] }));
      room.participants.push({ participantId: s.peerId, allocationId: s.allocationId, joined: s.peer !== null });
    }
    return [...rooms.values()];
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
    const session = this.#sessions.get(roomId, participantId);
    if (!session || session.ended || session.allocationId !== allocationId || !session.socket || !session.peer) return false;
    this.#log.info({ roomId, participantId }, 'rebalancing: participant told to move');
    this.#sessions.move(session, 'rebalance', []);
    return true;
  }

  /**
   * The router's signed call (see CloseSessionRequest): closes the session, with `removed` (admin
   * removal, or a newer session of the participant joined elsewhere) or `moved` (its replacement
   * expired: allocate again). With `keepAllocationId`, a session holding that allocation stays.
   * False when no such session is open here.
   */
  closeSession(roomId: string, participantId: string, reason: CloseSessionRequest['reason'], keepAllocationId?: string): boolean {
    const session = this.#sessions.get(roomId, participantId);
    if (!session || session.ended || session.allocationId === keepAllocationId) return false;
    this.#log.info({ roomId, participantId, reason }, 'session closed by the router');
    if (reason === 'expired') this.#sessions.move(session, 'allocation_not_current', []);
    else this.#sessions.remove(session, reason);
    return true;
  }

  /** Ends every session (reporting `left`), disconnects every client and stops the engine. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#drainTimer) clearTimeout(this.#drainTimer);
      if (this.#videoBufferTimer) clearInterval(this.#videoBufferTimer);
      const reports = this.#sessions.all().map((s) => this.#sessions.end(s, 'agent closing'));
      this.io.disconnectSockets(true);
      this.io.engine.close();
      await Promise.race([Promise.allSettled(reports), new Promise((r) => setTimeout(r, this.#config.signalingCloseWaitMs).unref())]);
    })();
    return this.#closing;
  }

  /**
   * The admitted connection's session (new, or resumed), welcomed as soon as the RTP capabilities
   * are at hand; null when the session to resume ended meanwhile.
   */
  #connected(socket: Socket, admission: Admission, events: RoomEvents): Session | null {
    const nodeId = this.#controller.nodeId;
    const session = this.#sessions.admit(socket, admission, ({ room, sub }, sid) => this.#credentials.sign({ room, peer: sub, node: nodeId, sid }));
    if (!session) {
      socket.disconnect(true);
      return null;
    }
    this.#sfu
      .routerRtpCapabilities(session.roomId)
      .then((rtpCapabilities) => this.#welcome(socket, session, admission, rtpCapabilities, events))
      .catch((err: unknown) => {
        this.#log.error({ err, roomId: session.roomId }, 'could not welcome a signaling connection');
        socket.disconnect(true);
      });
    return session;
  }

  #welcome(socket: Socket, session: Session, admission: Admission, rtpCapabilities: ms.RtpCapabilities, events: RoomEvents): void {
    if (!socket.connected || session.socket !== socket) return;
    const resumed = 'resume' in admission;
    send(socket, 'welcome', {
      peerId: session.peerId,
      roomId: session.roomId,
      region: this.#controller.region,
      nodeId: this.#controller.nodeId,
      resume: session.resume,
      resumeGraceMs: this.#config.resumeGraceMs,
      protocolVersion: PROTOCOL_VERSION,
      resumed,
      joined: session.peer !== null,
      rtpCapabilities: rtpCapabilities as unknown as Record<string, unknown>,
      permissions: session.permissions,
      ...(resumed && session.peer ? { session: events.snapshot(session.peer) } : {}),
    });
    this.#log.debug({ roomId: session.roomId, peerId: session.peerId, resumed }, 'signaling session connected');
    // The handshake's requests, as if emitted right after the welcome: the same limits, checks and
    // order as any request of the connection, each answer where its ack would be.
    if (!resumed) {
      for (const [index, { name, payload }] of admission.requests.entries()) {
        this.#requests.receive(session, socket, name, [payload, (reply: Ack<unknown>) => send(socket, 'handshakeAnswer', { index, reply })]);
      }
    }
  }

  /** Drain: clients are told to move shortly before the deadline (they may leave earlier on their own). */
  #onDraining(): void {
    const deadline = this.#config.drainDeadlineMs;
    const at = Math.max(0, deadline - Math.min(this.#config.drainMoveLeadMs, deadline / 5));
    this.#drainTimer = setTimeout(() => {
      for (const s of this.#sessions.all()) this.#sessions.move(s, 'draining', [this.#controller.nodeId]);
    }, at);
    this.#drainTimer.unref();
  }
}
