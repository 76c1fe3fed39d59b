import type { Server as HttpServer } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { Server, type Socket } from 'socket.io';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Refusal } from '../../shared/errors.ts';
import {
  P2P_RELAY_PATH,
  type RelayAck,
  type RelayClientEvents,
  type RelayServerEvents,
  type RelaySignal,
  validateRelayAuth,
  validateRelaySignal,
} from '../../shared/p2p-relay.ts';
import { Ticker } from '../../shared/ticker.ts';
import { type RelayClaims, TokenError, verifyRelayToken } from '../../shared/tokens.ts';
import type { RouterMetrics } from '../metrics.ts';
import type { P2pRoomState, RoomStore, SessionLog } from '../state/types.ts';
import type { RedisRelayBus, RelayBusMessage } from './relay-bus.ts';

export interface P2pRelayOptions {
  /** The router's HTTP server: the relay shares its port (path P2P_RELAY_PATH). */
  httpServer: HttpServer;
  config: GeoSfuConfig;
  rooms: RoomStore;
  sessions: SessionLog;
  /** Whether a region can take this P2P room now (P2pAllocator.canHost). */
  canHost: (room: P2pRoomState) => boolean;
  metrics: RouterMetrics;
  logger: FastifyBaseLogger;
  now: () => number;
  /** With router replicas on one Redis: the bus that joins their relays; null on one process. */
  bus: RedisRelayBus | null;
}

type RelaySocket = Socket<RelayClientEvents, RelayServerEvents>;

interface Connection {
  socket: RelaySocket;
  claims: RelayClaims;
  /** Token bucket of the signaling rate limit. */
  tokens: number;
  refilledAtMs: number;
  migrateSent: boolean;
  /** Set while the connection dropped (not left): the participant may come back until it fires. */
  dropTimer: ReturnType<typeof setTimeout> | null;
}

/** What the relay did with Redis that, when Redis does not answer, it does for this replica alone. */
type SharedOperation = 'join' | 'signal' | 'leave' | 'renew' | 'migrate';

/** socket.io's reasons for a disconnect the client asked for (leaving), as opposed to a dropped connection. */
const LEFT_REASONS = new Set(['client namespace disconnect', 'server namespace disconnect']);

/**
 * The P2P fallback's signaling relay on the router's own port (see shared/p2p-relay.ts): admits a
 * connection only with a valid relay token whose allocation is current in a P2P room, forwards
 * offers, answers and ICE candidates only between connected participants of the same room
 * (validated, size-limited, rate-limited), keeps their leases in the room store alive while they
 * are connected, and tells them to move to an SFU as soon as a region can take their room. A
 * connection that drops (rather than disconnecting) keeps its place for GEO_SFU_P2P_LEASE_MS, so
 * a participant whose direct links still work can reconnect without the others hearing it left.
 *
 * With router replicas on one Redis (`bus`), a room's participants may be connected to different
 * replicas: joins, leaves, signals and migrate notices for peers elsewhere go over the bus, and each
 * replica delivers only to its own sockets. While Redis does not answer, the relay serves the peers
 * connected to this replica alone and counts it (geo_sfu_p2p_relay_local_only_total).
 */
export class P2pRelay {
  readonly io: Server<RelayClientEvents, RelayServerEvents>;
  readonly #o: P2pRelayOptions;
  readonly #log: FastifyBaseLogger;
  /** room id → participant id → its connection. */
  readonly #rooms = new Map<string, Map<string, Connection>>();
  readonly #ticker: Ticker;
  #closed = false;

  constructor(o: P2pRelayOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'p2p-relay' });
    const origins = o.config.corsOrigins.split(',').map((s) => s.trim()).filter(Boolean);
    this.io = new Server(o.httpServer, {
      path: P2P_RELAY_PATH,
      serveClient: false,
      cors: { origin: origins.includes('*') ? true : origins },
      pingInterval: 10_000,
      pingTimeout: 5_000,
      // An SDP of RELAY_LIMITS.sdpMaxChars plus framing.
      maxHttpBufferSize: 128 * 1024,
    });
    this.io.use((socket, next) => {
      this.#authenticate(socket).then(
        () => next(),
        (err: unknown) => {
          const refusal = err instanceof Refusal ? err : new Refusal('UNAVAILABLE', 'the room store could not be reached; try again');
          o.metrics.p2pRelayRefusals.inc({ reason: refusal.code });
          next(Object.assign(new Error(refusal.message), { data: { code: refusal.code, message: refusal.message, ...(refusal.field ? { field: refusal.field } : {}) } }));
        },
      );
    });
    this.io.on('connection', (socket) => this.#connected(socket));
    this.#ticker = new Ticker(o.config.p2pCheckIntervalMs, () => this.check(), (err) => this.#log.warn({ err }, 'P2P relay check failed'));
  }

  start(): void {
    this.#ticker.start();
  }

  /** Participants connected to this relay. */
  get connectionCount(): number {
    let n = 0;
    for (const room of this.#rooms.values()) n += room.size;
    return n;
  }

  /**
   * For every room with connections here: renew their leases, and tell them to move to an SFU when
   * the room is no longer P2P or a region can take it now (ending its P2P mode first).
   */
  async check(): Promise<void> {
    const { rooms, config, now, canHost, metrics } = this.#o;
    for (const [roomId, connections] of [...this.#rooms]) {
      const nowMs = now();
      const connected = [...connections.values()].filter((c) => c.socket.connected);
      const members = connected.map((c) => ({ participantId: c.claims.sub, allocationId: c.claims.aid }));
      await this.#shared('renew', () => this.#o.bus?.renew(roomId, connected.map((c) => ({ peer: c.claims.sub, connection: c.socket.id }))));
      const state = await rooms.renewP2p(roomId, members, nowMs + config.p2pLeaseMs, nowMs);
      if (state === null) {
        // Every replica with peers of the room finds this out itself.
        this.#migrateHere(roomId, 'room_on_sfu');
      } else if (canHost(state)) {
        if (await rooms.endP2p(roomId)) metrics.p2pMigrations.inc();
        this.migrate(roomId, 'region_available');
      }
    }
  }

  /** Tells the room's connected participants, on every replica (once each), to allocate again: a region can take the room. */
  migrate(roomId: string, reason: 'region_available' | 'room_on_sfu'): void {
    this.#migrateHere(roomId, reason);
    void this.#shared('migrate', () => this.#o.bus?.publish({ kind: 'migrate', room: roomId, reason }));
  }

  /** Delivers another replica's message to the sockets connected here. */
  receive(m: RelayBusMessage): void {
    const room = this.#rooms.get(m.room);
    if (!room || this.#closed) return;
    switch (m.kind) {
      case 'signal': {
        const target = room.get(m.signal.to);
        const { to: _to, ...signal } = m.signal;
        if (target?.socket.connected) target.socket.emit('signal', { from: m.from, ...signal });
        return;
      }
      case 'joined': {
        // The participant connected to another replica (back after a drop there): this connection is replaced.
        const stale = room.get(m.peer);
        if (stale) {
          if (stale.dropTimer) clearTimeout(stale.dropTimer);
          room.delete(m.peer);
          if (room.size === 0) this.#rooms.delete(m.room);
          this.#o.metrics.p2pRelayConnections.dec();
          stale.socket.disconnect(true);
        }
        if (!m.returning) this.#tellJoined(room, m.peer, m.before);
        return;
      }
      case 'left':
        for (const [id, c] of room) if (id !== m.peer && c.socket.connected) c.socket.emit('peerLeft', { peerId: m.peer });
        return;
      case 'migrate':
        this.#migrateHere(m.room, m.reason);
        return;
    }
  }

  #migrateHere(roomId: string, reason: 'region_available' | 'room_on_sfu'): void {
    for (const c of this.#rooms.get(roomId)?.values() ?? []) {
      if (c.migrateSent || !c.socket.connected) continue;
      c.migrateSent = true;
      c.socket.emit('migrate', { reason });
    }
  }

  /** Disconnects everyone and stops; the router's HTTP server is closed by fastify. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ticker.stop();
    for (const room of this.#rooms.values()) for (const c of room.values()) if (c.dropTimer) clearTimeout(c.dropTimer);
    this.io.disconnectSockets(true);
    this.io.engine.close();
  }

  async #authenticate(socket: RelaySocket): Promise<void> {
    if (this.#closed) throw new Refusal('CLOSING', 'the router is closing');
    const bad = validateRelayAuth(socket.handshake.auth);
    if (bad) throw new Refusal('BAD_AUTH', `${bad.field} ${bad.message}`, bad.field);
    const nowMs = this.#o.now();
    let claims: RelayClaims;
    try {
      claims = verifyRelayToken(this.#o.config.tokenKeys, (socket.handshake.auth as { token: string }).token, nowMs);
    } catch (err) {
      if (err instanceof TokenError) throw new Refusal(`TOKEN_${err.reason}`, err.message);
      throw err;
    }
    const state = await this.#o.rooms.renewP2p(claims.room, [{ participantId: claims.sub, allocationId: claims.aid }], nowMs + this.#o.config.p2pLeaseMs, nowMs);
    if (state === null) throw new Refusal('NOT_P2P', `room ${claims.room} is not in P2P mode: allocate again`);
    if (!state.participants.some((p) => p.participantId === claims.sub && p.allocationId === claims.aid)) {
      throw new Refusal('NOT_IN_ROOM', `allocation ${claims.aid} is not current in room ${claims.room}: allocate again`);
    }
    socket.data = { claims };
  }

  #connected(socket: RelaySocket): void {
    const { claims } = socket.data as { claims: RelayClaims };
    const { config, metrics, sessions, now } = this.#o;
    let room = this.#rooms.get(claims.room);
    if (!room) this.#rooms.set(claims.room, (room = new Map()));
    const previous = room.get(claims.sub);
    const connection: Connection = { socket, claims, tokens: 2 * config.p2pRelayMessagesPerSecond, refilledAtMs: now(), migrateSent: false, dropTimer: null };
    room.set(claims.sub, connection);
    // A second connection of the same participant (back after a drop, or a duplicate) replaces the
    // first, whose disconnect is then ignored; the others knew it already.
    if (previous) {
      if (previous.dropTimer) clearTimeout(previous.dropTimer);
      previous.socket.disconnect(true);
    } else metrics.p2pRelayConnections.inc();
    sessions.setStatus(claims.aid, 'active', new Date(now()));

    socket.on('signal', (msg: RelaySignal, ack?: (a: RelayAck) => void) => {
      const reply = typeof ack === 'function' ? ack : () => undefined;
      this.#forward(connection, msg).then(
        () => reply({ ok: true }),
        (err: unknown) => {
          const refusal = err instanceof Refusal ? err : new Refusal('INTERNAL', 'the message could not be relayed');
          metrics.p2pRelayRefusals.inc({ reason: refusal.code });
          reply({ ok: false, error: { code: refusal.code, message: refusal.message, ...(refusal.field ? { field: refusal.field } : {}) } });
        },
      );
    });
    socket.onAny((event: string, ...args: unknown[]) => {
      if (event === 'signal') return;
      metrics.p2pRelayRefusals.inc({ reason: 'UNKNOWN_EVENT' });
      const ack = args.at(-1);
      if (typeof ack === 'function') (ack as (a: RelayAck) => void)({ ok: false, error: { code: 'UNKNOWN_EVENT', message: `the relay takes only "signal", not ${JSON.stringify(event).slice(0, 80)}` } });
    });
    socket.on('disconnect', (reason) => {
      if (room.get(claims.sub) !== connection || this.#closed) return;
      if (LEFT_REASONS.has(reason)) void this.#left(connection);
      else connection.dropTimer = setTimeout(() => void this.#left(connection), config.p2pLeaseMs);
    });
    void this.#welcome(connection, previous !== undefined);
  }

  /**
   * Tells the newcomer who is connected (on any replica: it offers to each of them) and the others
   * that it joined, unless it was connected already (`returning`: back after a drop).
   */
  async #welcome(connection: Connection, returningHere: boolean): Promise<void> {
    const { socket, claims } = connection;
    const { bus } = this.#o;
    // With Redis: who was connected before, on any replica, in the order Redis saw the claims.
    const shared = bus ? await this.#shared('join', () => bus.claim(claims.room, claims.sub, socket.id)) : null;
    const room = this.#rooms.get(claims.room);
    if (room?.get(claims.sub) !== connection || !socket.connected) return;
    const returning = returningHere || shared?.returning === true;
    const peers = shared ? shared.before : [...room].filter(([id, c]) => id !== claims.sub && c.socket.connected).map(([id]) => id);
    socket.emit('welcome', { participantId: claims.sub, peers });
    if (!returning) this.#tellJoined(room, claims.sub, peers);
    // Also when returning: a replica still holding its dropped connection lets it go.
    if (shared) void this.#shared('join', () => bus?.publish({ kind: 'joined', room: claims.room, peer: claims.sub, returning, before: peers }));
  }

  /** Tells the room's participants connected here that were there before `peer` that it joined. */
  #tellJoined(room: Map<string, Connection>, peer: string, before: readonly string[]): void {
    for (const id of before) {
      const c = room.get(id);
      if (id !== peer && c?.socket.connected) c.socket.emit('peerJoined', { peerId: peer });
    }
  }

  async #forward(from: Connection, msg: RelaySignal): Promise<void> {
    const { config, now } = this.#o;
    const nowMs = now();
    const rate = config.p2pRelayMessagesPerSecond;
    from.tokens = Math.min(2 * rate, from.tokens + ((nowMs - from.refilledAtMs) * rate) / 1000);
    from.refilledAtMs = nowMs;
    if (from.tokens < 1) throw new Refusal('RATE_LIMITED', `more than ${rate} signaling messages per second`);
    from.tokens -= 1;
    const bad = validateRelaySignal(msg);
    if (bad) throw new Refusal('BAD_REQUEST', `${bad.field} ${bad.message}`, bad.field);
    if (msg.to === from.claims.sub) throw new Refusal('BAD_REQUEST', 'to names the sender itself', 'to');
    const room = from.claims.room;
    const target = this.#rooms.get(room)?.get(msg.to);
    if (target?.socket.connected) {
      const { to: _to, ...signal } = msg;
      target.socket.emit('signal', { from: from.claims.sub, ...signal });
      return;
    }
    const { bus } = this.#o;
    const sent = await this.#shared('signal', async () => {
      if (!bus || !(await bus.connectedElsewhere(room, msg.to))) return false;
      await bus.publish({ kind: 'signal', room, from: from.claims.sub, signal: msg });
      return true;
    });
    if (sent !== true) throw new Refusal('NOT_IN_ROOM', `${msg.to} is not connected in this room${sent === null ? ' (to this router; the others cannot be reached now)' : ''}`, 'to');
  }

  /**
   * Runs a step shared with the other replicas through Redis; when Redis does not answer, counts
   * it and returns null: the caller goes on for this replica alone.
   */
  async #shared<T>(operation: SharedOperation, step: () => Promise<T> | undefined): Promise<T | null | undefined> {
    try {
      return await step();
    } catch (err) {
      this.#o.metrics.p2pRelayLocalOnly.inc({ operation });
      this.#log.debug({ err, operation }, 'P2P relay step done for this replica alone: Redis did not answer');
      return null;
    }
  }

  /** The participant left (or dropped and did not come back): the others hear it, its place is freed. */
  async #left(connection: Connection): Promise<void> {
    const { claims } = connection;
    const room = this.#rooms.get(claims.room);
    if (room?.get(claims.sub) !== connection) return;
    room.delete(claims.sub);
    if (room.size === 0) this.#rooms.delete(claims.room);
    this.#o.metrics.p2pRelayConnections.dec();
    const { bus } = this.#o;
    if (bus) {
      // Back on another replica meanwhile: it did not leave.
      const gone = await this.#shared('leave', () => bus.release(claims.room, claims.sub, connection.socket.id));
      if (gone === false) return;
      void this.#shared('leave', () => bus.publish({ kind: 'left', room: claims.room, peer: claims.sub }));
    }
    for (const other of room.values()) if (other.socket.connected) other.socket.emit('peerLeft', { peerId: claims.sub });
    const nowMs = this.#o.now();
    this.#o.sessions.setStatus(claims.aid, 'ended', new Date(nowMs));
    try {
      await this.#o.rooms.removeP2pParticipant(claims.room, claims.sub, claims.aid, nowMs);
    } catch (err) {
      // Its lease runs out instead.
      this.#log.warn({ err, roomId: claims.room }, 'could not remove a P2P participant');
    }
  }
}
