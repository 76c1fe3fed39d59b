import type { FastifyBaseLogger } from 'fastify';
import type { LeftReport, ParticipantEventAnswer, TrackEvent, TrackInfo } from '../../shared/schemas/index.ts';
import type { RouterClient } from '../router-client.ts';
import type { Session, SessionReports } from './sessions.ts';

export interface RouterReportsOptions {
  router: RouterClient;
  nodeId: string;
  logger: FastifyBaseLogger;
  /** How long a session admitted while the router could not answer its `joined` report waits before it is asked about again. */
  recheckAfterMs: number;
  /** Attempts per report before it is given up. */
  attempts: number;
  /** Delay before the n-th retry is n times this. */
  retryDelayMs: number;
  /** The router answered a `joined` report. */
  onJoinAnswer: (session: Session, answer: ParticipantEventAnswer) => void;
}

/**
 * A session's `joined`, track and `left` reports to the router, in order, with retries. When the router
 * cannot answer a `joined` (it or Redis is away) the session stays — fail open, as the router's
 * degraded mode serves known rooms — and is asked about again after `recheckAfterMs`.
 */
export class RouterReports implements SessionReports {
  readonly #o: RouterReportsOptions;

  constructor(options: RouterReportsOptions) {
    this.#o = options;
  }

  report(session: Session, event: 'joined' | 'left', reason?: LeftReport): void {
    const { router } = this.#o;
    const body = { nodeId: this.#o.nodeId, roomId: session.roomId, participantId: session.peerId, allocationId: session.allocationId };
    this.#send(session, { ...body, event }, async () => {
      if (event === 'left') await router.participantLeft({ ...body, ...(reason ? { reason } : {}) });
      else this.#o.onJoinAnswer(session, await router.participantJoined(body));
    });
  }

  /** A track of the session's participant was published or unpublished (for the application's webhooks), in order with its joined and left. */
  track(session: Session, event: TrackEvent['event'], track: TrackInfo): void {
    const body = { nodeId: this.#o.nodeId, roomId: session.roomId, participantId: session.peerId, allocationId: session.allocationId, event, track };
    this.#send(session, body, () => this.#o.router.trackEvent(body));
  }

  #send(session: Session, what: { event: string; roomId: string; participantId: string }, call: () => Promise<void>): void {
    const { attempts } = this.#o;
    session.reports = session.reports.then(async () => {
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          await call();
          return;
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode;
          // 4xx: the router will not take it however often we try.
          const refused = status !== undefined && status >= 400 && status < 500;
          if (attempt === attempts || refused) {
            this.#o.logger.warn({ roomId: what.roomId, participantId: what.participantId, event: what.event, err: (err as Error).message }, 'participant event not accepted by the router');
            if (what.event === 'joined' && !refused && !session.ended) this.#recheck(session);
            return;
          }
          await new Promise((r) => setTimeout(r, this.#o.retryDelayMs * attempt));
        }
      }
    });
  }

  #recheck(session: Session): void {
    session.recheckTimer = setTimeout(() => {
      session.recheckTimer = null;
      if (!session.ended) this.report(session, 'joined');
    }, this.#o.recheckAfterMs);
    session.recheckTimer.unref();
  }
}
