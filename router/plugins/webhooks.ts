import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import { redisTarget } from '../state/redis-client.ts';
import { Ticker } from '../../shared/ticker.ts';
import { AppEvents } from '../webhooks/app-events.ts';
import { AppWebhookDelivery } from '../webhooks/delivery.ts';
import { MemoryAppEventStore } from '../webhooks/memory-event-store.ts';
import { RedisAppEventStore } from '../webhooks/redis-event-store.ts';
import type { AppEventStore } from '../webhooks/types.ts';

/**
 * Application webhooks (docs/webhooks.md), when GEO_SFU_APP_WEBHOOK_URLS is set: the events
 * (`app.appEvents`, raised by the node and room routes), their queue (Redis streams when REDIS_URL
 * is set, memory otherwise), their delivery, the room_finished checks (every poll) and the queuing
 * of occurrences journaled while Redis was away (every GEO_SFU_JOURNAL_REPLAY_INTERVAL_MS). Every
 * replica delivers; the queue keeps one consumer per room.
 */
export const webhooksPlugin = fp(
  async (app) => {
    const { config, metrics, now, allocator } = app;
    const key = config.appWebhookKeys[0];
    if (config.appWebhookUrls.length === 0 || !key) {
      app.decorate('appEvents', null);
      app.decorate('appEventStore', null);
      return;
    }
    // With REDIS_URL or the Sentinel group: the queue is shared by the router replicas.
    const target = redisTarget(config);
    const store: AppEventStore = target
      ? await RedisAppEventStore.open({ ...target, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisTimeoutMs })
      : new MemoryAppEventStore();
    const delivery = new AppWebhookDelivery({
      store,
      urls: config.appWebhookUrls,
      key,
      maxAttempts: config.appWebhookMaxAttempts,
      maxAgeMs: config.appWebhookMaxAgeMs,
      retryMs: config.appWebhookRetryMs,
      retryMaxMs: config.appWebhookRetryMaxMs,
      timeoutMs: config.appWebhookTimeoutMs,
      pollMs: config.appWebhookPollMs,
      concurrency: config.appWebhookConcurrency,
      now,
      log: app.log,
      onDelivered: (_event, latencyMs) => {
        metrics.appWebhookDelivered.inc();
        metrics.appWebhookLatency.observe(latencyMs / 1000);
      },
      onRetried: () => metrics.appWebhookRetried.inc(),
      onDeadLettered: () => metrics.appWebhookDeadLettered.inc(),
    });
    const events = new AppEvents({
      store,
      journal: allocator.journal,
      idleTtlMs: config.roomIdleTtlMs,
      now,
      newId: randomUUID,
      log: app.log,
      onQueued: (queued) => {
        metrics.appWebhookQueued.inc(queued.length);
        delivery.wake();
      },
    });
    const finishing = new Ticker(config.appWebhookPollMs, () => events.finishIdleRooms(), (err) => app.log.debug({ err }, 'room_finished check failed'), { unref: true });
    const flushing = new Ticker(
      config.journalReplayIntervalMs,
      async () => {
        if (allocator.journal.appEventCount > 0) await events.flushJournal();
      },
      (err) => app.log.debug({ err }, 'journaled application webhook events not queued yet'),
      { unref: true },
    );
    app.decorate('appEvents', events);
    app.decorate('appEventStore', store);
    app.addHook('onReady', async () => {
      delivery.start();
      finishing.start();
      flushing.start();
    });
    app.addHook('onClose', async () => {
      await Promise.all([finishing.stop(), flushing.stop(), delivery.close()]);
      await store.close();
    });
  },
  { name: 'webhooks', dependencies: ['allocation'], decorators: { fastify: ['metrics'] } },
);
