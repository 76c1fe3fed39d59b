import type { FastifyBaseLogger } from 'fastify';
import type { Socket } from 'socket.io';
import { Refusal } from '../../shared/errors.ts';
import type { Ack, SignalingError } from '../../shared/signaling.ts';
import { SfuError } from '../../sfu/index.ts';
import type { RequestLimiter } from './client-limits.ts';
import { handle, type RequestContext } from './handlers.ts';
import { assertPermitted } from './permissions.ts';
import { requestError } from './refusals.ts';
import type { Session, Sessions } from './sessions.ts';
import { isRequestName, validateRequest } from './validate.ts';

export interface RequestsOptions {
  sessions: Sessions;
  limiter: RequestLimiter<Socket>;
  /** GEO_SFU_SIGNALING_REQUESTS_PER_SECOND, for the refusal's message. */
  requestsPerSecond: number;
  /** The handlers' context, but for the session. */
  context: Omit<RequestContext, 'session'>;
  logger: FastifyBaseLogger;
}

/**
 * A connection's requests: rate-limited, named, validated, then run one after another on its
 * session (permission and per-participant caps checked first), each acknowledged with
 * `{ ok: true, data }` or `{ ok: false, error }`.
 */
export class Requests {
  readonly #o: RequestsOptions;

  constructor(options: RequestsOptions) {
    this.#o = options;
  }

  /** A socket event of a session's connection (socket.onAny). */
  receive(session: Session, socket: Socket, event: string, args: unknown[]): void {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as (reply: Ack<unknown>) => void) : null;
    if (!ack) return; // Every request carries an acknowledgement; anything else is ignored.
    const reply = (r: Ack<unknown>) => {
      if (socket.connected) ack(r);
    };
    const { limiter, context } = this.#o;
    if (!limiter.admit(socket)) {
      reply({ ok: false, error: requestError('RATE_LIMITED', `more than ${this.#o.requestsPerSecond} requests per second on this connection (bursts of ${limiter.burst}); slow down`) });
      return;
    }
    if (!isRequestName(event)) {
      reply({ ok: false, error: requestError('UNKNOWN_REQUEST', `unknown request ${JSON.stringify(event)}`) });
      return;
    }
    const payload = args.length === 0 || args[0] === undefined ? {} : args[0];
    const invalid = validateRequest[event](payload);
    if (invalid) {
      reply({ ok: false, error: invalid });
      return;
    }
    if (event === 'leave' && session.socket === socket) session.leaving = true;
    session.queue = session.queue.then(async () => {
      if (session.ended || session.socket !== socket) {
        reply({ ok: false, error: requestError('CLOSED', 'the session is no longer on this connection') });
        return;
      }
      try {
        assertPermitted(session.permissions, event, payload as never);
        if (session.peer) context.caps.assertRoomFor(session.peer, event);
        const data = await handle({ ...context, session }, event, payload as never);
        reply({ ok: true, data });
        if (event === 'leave') void this.#o.sessions.end(session, 'left');
      } catch (err) {
        const error = toSignalingError(err);
        if (error.code === 'INTERNAL') this.#o.logger.error({ err, event, peerId: session.peerId }, 'signaling request failed');
        reply({ ok: false, error });
      }
    });
  }
}

function toSignalingError(err: unknown): SignalingError {
  if (err instanceof Refusal) return { code: err.code, message: err.message, ...(err.field !== undefined ? { field: err.field } : {}) };
  if (err instanceof SfuError) return { code: err.code, message: err.message };
  // mediasoup validates its parameter objects with TypeError.
  if (err instanceof TypeError) return requestError('INVALID_ARGUMENT', err.message);
  return requestError('INTERNAL', (err as Error)?.message ?? String(err));
}
