import { signedCall } from '../shared/signed-http.ts';
import { FakeNodes } from '../test/utils/fake-nodes.ts';
import { allocate } from '../test/utils/http.ts';
import { cleanupNamespaces, runNamespace, startRouter, testConfig } from '../test/utils/router-harness.ts';
import { APP_KEYS, WebhookReceiver } from '../test/webhooks/receiver.ts';

/**
 * Application webhook delivery latency at a steady 200 events/s: a router on Redis (its queue
 * there), track reports from scripted agents spread over 20 rooms, a real HTTP receiver verifying
 * every delivery; latency from the router seeing the event to the receiver having it.
 */
export interface WebhookBenchResult {
  ratePerSecond: number;
  rooms: number;
  sent: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
}

const RATE = 200;
const ROOMS = 20;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function benchWebhooks(opts: { quick: boolean }): Promise<WebhookBenchResult> {
  const receiver = await WebhookReceiver.start();
  const config = testConfig('real', { appWebhookUrls: [receiver.url], appWebhookKeys: APP_KEYS, nodeCallsPerMinute: 0, rebalance: false }, runNamespace());
  const router = await startRouter(config);
  const nodes = new FakeNodes(router.url, config.clusterSecret);
  try {
    await nodes.start(1_000);
    await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west', maxParticipants: 10_000 });
    await router.app.registry.refresh();
    const call = (path: string, body: unknown) => signedCall({ secret: config.clusterSecret, baseUrl: router.url, method: 'POST', path, body, timeoutMs: 30_000 });
    const publishers = [];
    for (let r = 0; r < ROOMS; r++) {
      const roomId = `bench-${r}`;
      const res = await allocate(router.url, { roomId, participantId: 'p', latencies: { 'eu-west': 10 } });
      await call('/v1/nodes/participant-event', { nodeId: 'eu-west-1', roomId, participantId: 'p', allocationId: res.body.allocationId, event: 'joined' });
      publishers.push({ roomId, allocationId: res.body.allocationId });
    }
    const warm = ROOMS * 2;
    while (receiver.delivered.length < warm) await new Promise((r) => setTimeout(r, 20));
    const startIndex = receiver.delivered.length;

    // Open loop: every 10 ms the events due by then, whatever the router's answers take.
    const durationMs = opts.quick ? 2_000 : 5_000;
    const total = (RATE * durationMs) / 1000;
    const calls: Array<Promise<unknown>> = [];
    const started = performance.now();
    for (let sent = 0; sent < total; ) {
      const due = Math.min(total, Math.floor(((performance.now() - started) * RATE) / 1000) + 1);
      for (; sent < due; sent++) {
        const { roomId, allocationId } = publishers[sent % ROOMS]!;
        const track = { trackId: `t${sent}`, kind: 'audio', source: 'microphone', layers: [{}] };
        calls.push(call('/v1/nodes/track-event', { nodeId: 'eu-west-1', roomId, participantId: 'p', allocationId, event: 'published', track }));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(calls);
    const deadline = Date.now() + 30_000;
    while (receiver.delivered.length < startIndex + total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const latencies = receiver.delivered
      .slice(startIndex)
      .map((d) => d.atMs - d.event.occurredAtMs)
      .sort((a, b) => a - b);
    return { ratePerSecond: RATE, rooms: ROOMS, sent: total, delivered: latencies.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
  } finally {
    await nodes.close();
    await router.close();
    await receiver.stop();
    await cleanupNamespaces();
  }
}
