/**
 * A small typed event emitter in the spirit of mediasoup's
 * EnhancedEventEmitter: an event map type names each event and its argument
 * tuple, and safeEmit() never lets a throwing listener break the emitter's
 * own state machine (the error goes to the listener-error handler instead).
 */
import { EventEmitter } from 'node:events';

/** Event name -> listener argument tuple. Declare maps with `type`, not `interface`. */
export type EventMap = Record<string, unknown[]>;

export type Listener<Args extends unknown[]> = (...args: Args) => void;

export type ListenerErrorHandler = (error: unknown, event: string) => void;

let listenerErrorHandler: ListenerErrorHandler = (error, event) => {
  process.emitWarning(
    `sfu: listener for "${event}" threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    { code: 'GEO_SFU_LISTENER_ERROR' },
  );
};

/** Replace where errors thrown by event listeners go (default: process warning). */
export function setListenerErrorHandler(handler: ListenerErrorHandler): void {
  listenerErrorHandler = handler;
}

export class TypedEmitter<Events extends EventMap> {
  /** Type-level only (never set): lets helpers infer an emitter's event map. */
  declare readonly eventTypes?: Events;
  readonly #emitter = new EventEmitter({ captureRejections: false });

  constructor() {
    this.#emitter.setMaxListeners(Infinity);
  }

  on<E extends keyof Events & string>(event: E, listener: Listener<Events[E]>): this {
    this.#emitter.on(event, listener as Listener<unknown[]>);
    return this;
  }

  once<E extends keyof Events & string>(event: E, listener: Listener<Events[E]>): this {
    this.#emitter.once(event, listener as Listener<unknown[]>);
    return this;
  }

  off<E extends keyof Events & string>(event: E, listener: Listener<Events[E]>): this {
    this.#emitter.off(event, listener as Listener<unknown[]>);
    return this;
  }

  removeAllListeners<E extends keyof Events & string>(event?: E): this {
    if (event === undefined) this.#emitter.removeAllListeners();
    else this.#emitter.removeAllListeners(event);
    return this;
  }

  listenerCount<E extends keyof Events & string>(event: E): number {
    return this.#emitter.listenerCount(event);
  }

  /**
   * Calls every listener of `event` in order. A listener that throws does not
   * stop the others; the error goes to the listener-error handler.
   * Returns whether the event had listeners.
   */
  safeEmit<E extends keyof Events & string>(event: E, ...args: Events[E]): boolean {
    const listeners = this.#emitter.rawListeners(event) as Listener<Events[E]>[];
    if (listeners.length === 0) return false;
    for (const listener of listeners) {
      try {
        // rawListeners() returns once-wrappers that remove themselves when called.
        listener.apply(this, args);
      } catch (error) {
        listenerErrorHandler(error, event);
      }
    }
    return true;
  }
}
