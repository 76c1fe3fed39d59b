import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Socket } from 'socket.io';
import type { LeftReport, ParticipantEventAnswer } from '../../shared/schemas/index.ts';
import type { HandshakeRequest, ParticipantPermissions, ServerEvents } from '../../shared/signaling.ts';
import { resolvePermissions, type JoinClaims } from '../../shared/tokens.ts';
import type { Peer } from '../../sfu/index.ts';

/** One participant's signaling session: its socket (while connected), its SFU peer (once joined). */
export interface Session {
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
  /** When its connection dropped (Date.now()), while it waits for a resume; null while connected. */
  disconnectedAt: number | null;
  /** Requests run one after another, in arrival order. */
  queue: Promise<void>;
  /** Router reports run in order (joined before left). */
  reports: Promise<void>;
  joinedReported: boolean;
  /** Set while the router could not say whether the allocation is current: when to ask again. */
  recheckTimer: NodeJS.Timeout | null;
  ended: boolean;
  /**
   * A `leave` arrived on its connection (set on arrival, before the requests queued ahead of it
   * run): a connection that drops after it ends the session at once instead of waiting for a resume.
   */
  leaving: boolean;
  /** Quality alerts already told to the client (`kind since`). */
  alerts: Set<string>;
}

export const sessionKey = (roomId: string, peerId: string): string => `${roomId}\n${peerId}`;

/**
 * What a connection presented (./auth.ts): a verified join token, with the requests its handshake
 * carries (protocol 1.3; none before), or the session its resume credential names.
 */
export type Admission = { claims: JoinClaims; requests: HandshakeRequest[] } | { resume: Session };

/** Sends a server event, typed by shared/signaling.ts. */
export function send<E extends keyof ServerEvents>(socket: Socket, event: E, ...args: Parameters<ServerEvents[E]>): void {
  socket.emit(event, ...args);
}

/** Reports `joined` and `left` to the router (region-agent/signaling/router-reports.ts). */
export interface SessionReports {
  report(session: Session, event: 'joined' | 'left', reason?: LeftReport): void;
}

export interface SessionsOptions {
  logger: FastifyBaseLogger;
  reports: SessionReports;
  /** GEO_SFU_RESUME_GRACE_MS: how long a disconnected session waits to be resumed (0: ends at once). */
  resumeGraceMs: number;
  /** After `moved` or `removed` is sent, how long the client has to flush it before the server disconnects. */
  flushMs: number;
}

/**
 * The agent's signaling sessions, by room and participant (connected, or disconnected within the
 * grace period), and the ways one ends: left or dropped (`end`), told to allocate again (`move`),
 * closed for good (`remove`).
 */
export class Sessions {
  readonly #map = new Map<string, Session>();
  readonly #o: SessionsOptions;

  constructor(options: SessionsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#map.size;
  }

  get(roomId: string, peerId: string): Session | undefined {
    return this.#map.get(sessionKey(roomId, peerId));
  }

  /** Joined sessions whose connection dropped and that wait for a resume, longest waiting first. */
  reconnecting(now = Date.now()): { roomId: string; participantId: string; forMs: number }[] {
    return [...this.#map.values()]
      .filter((s) => !s.ended && s.disconnectedAt !== null && s.peer !== null)
      .map((s) => ({ roomId: s.roomId, participantId: s.peerId, forMs: Math.max(0, now - s.disconnectedAt!) }))
      .sort((a, b) => b.forMs - a.forMs);
  }

  /** A snapshot: ending a session while iterating is safe. */
  all(): Session[] {
    return [...this.#map.values()];
  }

  /**
   * The session of an admitted connection: the one its resume credential names (taking the new
   * socket), or a new one for its join token (replacing a session of the same participant open
   * here). Null when the session to resume ended between the handshake and now.
   */
  admit(socket: Socket, admission: Admission, credential: (claims: JoinClaims, sid: string) => string): Session | null {
    if ('resume' in admission) {
      const session = admission.resume;
      if (session.ended || this.#map.get(session.key) !== session) return null;
      if (session.graceTimer) clearTimeout(session.graceTimer);
      session.graceTimer = null;
      session.disconnectedAt = null;
      const old = session.socket;
      session.socket = socket;
      old?.disconnect(true);
      return session;
    }
    const { claims } = admission;
    const { room, sub, aid } = claims;
    const key = sessionKey(room, sub);
    const existing = this.#map.get(key);
    // A second connection of the same participant replaces the first.
    if (existing) void this.end(existing, 'replaced by a new connection', existing.allocationId !== aid);
    const sid = randomUUID();
    const session: Session = {
      key,
      roomId: room,
      peerId: sub,
      allocationId: aid,
      sid,
      resume: credential(claims, sid),
      permissions: resolvePermissions(claims.perm),
      socket,
      peer: null,
      graceTimer: null,
      disconnectedAt: null,
      queue: Promise.resolve(),
      reports: Promise.resolve(),
      joinedReported: false,
      recheckTimer: null,
      ended: false,
      leaving: false,
      alerts: new Set(),
    };
    this.#map.set(key, session);
    return session;
  }

  disconnected(session: Session, socket: Socket): void {
    if (session.ended || session.socket !== socket) return;
    session.socket = null;
    session.disconnectedAt = Date.now();
    // A closed tab sends `leave` and is gone before its turn comes: the participant meant to go.
    if (session.leaving) {
      void this.end(session, 'left, then disconnected');
      return;
    }
    if (this.#o.resumeGraceMs === 0) {
      void this.end(session, 'disconnected', true, 'timed_out');
      return;
    }
    session.graceTimer = setTimeout(() => void this.end(session, 'resume grace period over', true, 'timed_out'), this.#o.resumeGraceMs);
    session.graceTimer.unref();
  }

  /**
   * Ends a session: closes its SFU peer, reports `left` (when it had joined and `report` holds;
   * `reason` is `timed_out` when its connection dropped and was not resumed), disconnects its
   * socket. Resolves when the router heard (or refused) the report.
   */
  end(session: Session, why: string, report = true, reason: LeftReport = 'left'): Promise<void> {
    if (session.ended) return session.reports;
    session.ended = true;
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    if (session.recheckTimer) clearTimeout(session.recheckTimer);
    session.recheckTimer = null;
    if (this.#map.get(session.key) === session) this.#map.delete(session.key);
    const peer = session.peer;
    session.peer = null;
    peer?.close();
    if (report && session.joinedReported) this.#o.reports.report(session, 'left', reason);
    const socket = session.socket;
    session.socket = null;
    socket?.disconnect(true);
    this.#o.logger.debug({ roomId: session.roomId, peerId: session.peerId, why }, 'signaling session ended');
    return session.reports;
  }

  /** Tells the client to allocate elsewhere; on worker death the session ends at once. */
  move(session: Session, reason: string, excludeNodeIds: string[]): void {
    if (session.ended) return;
    const socket = session.socket;
    if (socket) send(socket, 'moved', { reason, excludeNodeIds });
    // Make-before-break: the client leaves once it is connected elsewhere.
    if (reason === 'draining' || reason === 'rebalance') return;
    // The SFU state is gone: end now (no resume), let `moved` reach the client before the disconnect.
    const peer = session.peer;
    session.peer = null;
    peer?.close();
    session.socket = null;
    void this.end(session, `moved: ${reason}`);
    if (socket) setTimeout(() => socket.disconnect(true), this.#o.flushMs).unref();
  }

  /** Final: `removed` to the client, then the session ends at once (its media stops) and the socket is disconnected. */
  remove(session: Session, reason: 'removed' | 'replaced'): void {
    const socket = session.socket;
    if (socket) send(socket, 'removed', { reason });
    session.socket = null;
    // The router no longer counts this allocation: no `left` for it.
    void this.end(session, `removed: ${reason}`, false);
    if (socket) setTimeout(() => socket.disconnect(true), this.#o.flushMs).unref();
  }

  /** The router's answer to `joined`: not current means replaced or removed (final), or gone otherwise (allocate again). */
  onJoinAnswer(session: Session, answer: ParticipantEventAnswer): void {
    if (answer.current || session.ended) return;
    this.#o.logger.info(
      { roomId: session.roomId, participantId: session.peerId, allocationId: session.allocationId, reason: answer.reason },
      'joined on an allocation that is not current',
    );
    if (answer.reason === 'replaced' || answer.reason === 'removed') this.remove(session, answer.reason);
    else this.move(session, 'allocation_not_current', []);
  }
}
