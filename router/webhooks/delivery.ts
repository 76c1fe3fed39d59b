import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { request } from 'undici';
import { signAppWebhook } from '../../shared/app-webhook-signature.ts';
import type { TokenKey } from '../../shared/config/index.ts';
import type { AppEvent } from '../../shared/app-webhook-events.ts';
import { Ticker } from '../../shared/ticker.ts';
import type { AppEventStore, ClaimedEvent } from './types.ts';

export interface AppWebhookDeliveryDeps {
  store: AppEventStore;
  urls: readonly string[];
  /** Signs every delivery (the first of GEO_SFU_APP_WEBHOOK_SECRETS). */
  key: TokenKey;
  maxAttempts: number;
  maxAgeMs: number;
  retryMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  pollMs: number;
  /** Rooms delivered at once by this router. */
  concurrency: number;
  now: () => number;
  log: FastifyBaseLogger;
  onDelivered: (event: AppEvent, latencyMs: number) => void;
  onRetried: () => void;
  onDeadLettered: () => void;
}

/**
 * Delivers queued application webhook events: every GEO_SFU_APP_WEBHOOK_POLL_MS (and at once when
 * this router queued some) it takes the rooms whose head is due and, for each, one event at a time
 * in queue order, holding the room's claim (one consumer per room across replicas; other rooms go
 * on meanwhile). An event is delivered when every URL answered 2xx; otherwise it is tried again
 * after a doubling backoff, at every URL, until GEO_SFU_APP_WEBHOOK_MAX_ATTEMPTS failures or
 * GEO_SFU_APP_WEBHOOK_MAX_AGE_MS since it was queued, then it goes to the dead-letter stream and
 * the room's next event follows.
 */
export class AppWebhookDelivery {
  readonly #active = new Map<string, Promise<void>>();
  readonly #ticker: Ticker;
  /** A claim outlives one attempt (every URL answers or times out within timeoutMs) with room to spare. */
  readonly #leaseMs: number;
  #closed = false;

  constructor(private readonly deps: AppWebhookDeliveryDeps) {
    this.#leaseMs = 2 * deps.timeoutMs + 1_000;
    this.#ticker = new Ticker(deps.pollMs, () => this.#poll(), (err) => deps.log.debug({ err }, 'application webhook poll failed'), { unref: true });
  }

  start(): void {
    this.#ticker.start();
  }

  /** Events were queued here: look for due rooms now rather than at the next poll. */
  wake(): void {
    void this.#ticker.runNow();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#ticker.stop();
    await Promise.allSettled([...this.#active.values()]);
  }

  /** Starts a drain for each due room not in flight here, up to the concurrency (the ticker never runs two polls at once). */
  async #poll(): Promise<void> {
    const { store, now, concurrency } = this.deps;
    if (this.#closed || this.#active.size >= concurrency) return;
    for (const roomId of await store.dueRooms(now(), concurrency * 2)) {
      if (this.#closed || this.#active.size >= concurrency) break;
      if (this.#active.has(roomId)) continue;
      const draining = this.#drain(roomId)
        .catch((err: unknown) => {
          this.deps.log.debug({ err, roomId }, 'application webhook delivery interrupted');
          return false;
        })
        .then((progressed) => {
          this.#active.delete(roomId);
          // A slot is free: another due room may take it now (not after a room another router holds, which would spin).
          if (progressed && !this.#closed) this.wake();
        });
      this.#active.set(roomId, draining);
    }
  }

  /** The room's events, one after another, while they are delivered and this router holds the room; true if it attempted any. */
  async #drain(roomId: string): Promise<boolean> {
    const { store, now } = this.deps;
    let progressed = false;
    while (!this.#closed) {
      const token = randomUUID();
      const claimed = await store.claim(roomId, token, this.#leaseMs, now());
      if (!claimed) return progressed;
      progressed = true;
      const failure = await this.#attempt(claimed.event);
      if (failure === null) {
        await store.ack(roomId, token, claimed.entryId, now());
        this.deps.onDelivered(claimed.event, now() - claimed.event.queuedAtMs);
        continue;
      }
      await this.#failed(roomId, token, claimed, failure);
      return true;
    }
    return progressed;
  }

  async #failed(roomId: string, token: string, claimed: ClaimedEvent, failure: string): Promise<void> {
    const { store, now, maxAttempts, maxAgeMs, retryMs, retryMaxMs, log } = this.deps;
    const attempts = claimed.attempts + 1;
    const nowMs = now();
    if (attempts >= maxAttempts || nowMs - claimed.event.queuedAtMs >= maxAgeMs) {
      await store.deadLetter(claimed, roomId, token, failure, nowMs);
      this.deps.onDeadLettered();
      log.warn({ roomId, eventId: claimed.event.id, event: claimed.event.event, attempts, failure }, 'application webhook event dead-lettered');
      return;
    }
    await store.retry(roomId, token, claimed.entryId, nowMs + Math.min(retryMaxMs, retryMs * 2 ** (attempts - 1)));
    this.deps.onRetried();
  }

  /** POSTs the event to every URL; null when all answered 2xx, else what went wrong. */
  async #attempt(event: AppEvent): Promise<string | null> {
    const { urls, key, timeoutMs, now } = this.deps;
    const body = JSON.stringify(event);
    const failures = await Promise.all(
      urls.map(async (url) => {
        try {
          const res = await request(url, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json', 'user-agent': 'geo-sfu-app-webhooks', ...signAppWebhook(key, body, now()) },
            signal: AbortSignal.timeout(timeoutMs),
          });
          await res.body.dump();
          return res.statusCode >= 200 && res.statusCode < 300 ? null : `${url} answered ${res.statusCode}`;
        } catch (err) {
          return `${url}: ${(err as Error).message}`;
        }
      }),
    );
    const failed = failures.filter((f): f is string => f !== null);
    return failed.length === 0 ? null : failed.join('; ').slice(0, 500);
  }
}
