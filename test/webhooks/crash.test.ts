import { request } from 'undici';
import { afterAll, expect, it } from 'vitest';
import type { AppEvent } from '../../shared/app-webhook-events.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace, testConfig } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnRouter } from '../utils/service-process.ts';
import { APP_KEYS, perRoomOrder, WebhookReceiver } from './receiver.ts';

/**
 * The delivering router is killed (SIGKILL) mid-stream and the receiver is down for OUTAGE_MS; a
 * new router process on the same Redis takes over. Afterwards every event has arrived, none is
 * missing, duplicates are only by event id, and each room's order holds.
 *
 * The outage is the 30 s: thirty failed attempts at each room's head at this test's 1 s
 * retry cap, well within the age limit (`WEBHOOK_OUTAGE_MS` shortens it while working on the test).
 */
const RETRY_MAX_MS = 1_000;
const OUTAGE_MS = Number(process.env.WEBHOOK_OUTAGE_MS ?? 30_000);
const SECRETS = testConfig('memory');
const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];
const LATENCIES = { 'eu-west': 10, 'us-east': 90, 'us-west': 150, apac: 200 };
const processes: ServiceProcess[] = [];
let nodes: FakeNodes | null = null;
let receiver: WebhookReceiver | null = null;
afterAll(async () => {
  await nodes?.close();
  await Promise.all(processes.map((p) => p.stop()));
  await receiver?.stop();
  await cleanupNamespaces();
});

async function joinAll(url: string, roomIds: string[], people: string[]): Promise<void> {
  await Promise.all(
    roomIds.map(async (roomId) => {
      for (const participantId of people) {
        // A router just started places once the nodes' heartbeats reached it (503 until then).
        let res = await allocate(url, { roomId, participantId, latencies: LATENCIES }, { authorization: `Bearer ${SECRETS.apiKey}` });
        for (const deadline = Date.now() + 10_000; res.status === 503 && Date.now() < deadline; ) {
          await new Promise((r) => setTimeout(r, 100));
          res = await allocate(url, { roomId, participantId, latencies: LATENCIES }, { authorization: `Bearer ${SECRETS.apiKey}` });
        }
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        const body = { nodeId: res.body.node.id, roomId, participantId, allocationId: res.body.allocationId, event: 'joined' };
        const joined = await signedCall({ secret: SECRETS.clusterSecret, baseUrl: url, method: 'POST', path: '/v1/nodes/participant-event', body, timeoutMs: 5_000 });
        expect(joined.statusCode).toBe(200);
      }
    }),
  );
}

async function until(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !probe(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

it(`router SIGKILLed mid-stream and the receiver down ${OUTAGE_MS / 1000} s: every event arrives, duplicates only by id, order per room kept`, { timeout: OUTAGE_MS + 90_000 }, async () => {
  receiver = await WebhookReceiver.start();
  // A slow receiver: the kill finds most events queued and some in flight.
  receiver.delayMs = 200;
  const ns = runNamespace();
  const env = {
    REDIS_URL,
    DATABASE_URL,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_PG_SCHEMA: ns.pgSchema,
    GEO_SFU_CLUSTER_SECRET: SECRETS.clusterSecret,
    GEO_SFU_TOKEN_SECRETS: SECRETS.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
    GEO_SFU_API_KEY: SECRETS.apiKey,
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_REDIS_TIMEOUT_MS: '3000',
    GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
    GEO_SFU_REBALANCE: 'false',
    GEO_SFU_APP_WEBHOOK_URLS: receiver.url,
    GEO_SFU_APP_WEBHOOK_SECRETS: APP_KEYS.map((k) => `${k.kid}:${k.secret}`).join(','),
    GEO_SFU_APP_WEBHOOK_POLL_MS: '50',
    GEO_SFU_APP_WEBHOOK_RETRY_MS: '100',
    GEO_SFU_APP_WEBHOOK_RETRY_MAX_MS: String(RETRY_MAX_MS),
    GEO_SFU_APP_WEBHOOK_TIMEOUT_MS: '1000',
    GEO_SFU_APP_WEBHOOK_MAX_ATTEMPTS: '100000',
  };
  const first = await spawnRouter(env);
  processes.push(first);
  nodes = new FakeNodes(first.url, SECRETS.clusterSecret);
  await nodes.start(200);
  for (const region of REGIONS) await nodes.add({ nodeId: `${region}-1`, region });

  const before = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
  await joinAll(first.url, before, ['p0', 'p1', 'p2', 'p3', 'p4']);
  const queuedBefore = before.length * 6;
  await until('the first deliveries', () => receiver!.delivered.length >= 5, 15_000);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const deliveredAtKill = receiver.delivered.length;
  console.log(`killed the router with ${deliveredAtKill} of ${queuedBefore} events delivered`);
  expect(deliveredAtKill).toBeLessThan(queuedBefore);

  await receiver.stop();
  const downAt = Date.now();
  const second = await spawnRouter(env, first.port);
  processes.push(second);
  // Raised while the receiver is away: two new rooms, and newcomers in the old ones.
  const after = ['r6', 'r7'];
  await joinAll(second.url, [...before, ...after], ['q0', 'q1']);
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
  receiver.delayMs = 0;
  // The new router kept trying meanwhile (the receiver refused connections).
  const metrics = await (await request(`${second.url}/metrics`)).body.text();
  const retries = Number(/^geo_sfu_app_webhook_retries_total (\d+)/m.exec(metrics)?.[1] ?? 0);
  expect(retries).toBeGreaterThanOrEqual(before.length);
  await receiver.listen();

  const expected = new Set<string>();
  for (const roomId of before) for (const p of ['p0', 'p1', 'p2', 'p3', 'p4', 'q0', 'q1']) expected.add(`${roomId} participant_joined ${p}`);
  for (const roomId of after) for (const p of ['q0', 'q1']) expected.add(`${roomId} participant_joined ${p}`);
  for (const roomId of [...before, ...after]) expected.add(`${roomId} room_started null`);
  const key = (e: AppEvent) => `${e.roomId} ${e.event} ${e.participantId}`;
  await until(`all ${expected.size} events`, () => new Set(receiver!.delivered.map((d) => key(d.event))).size >= expected.size, 60_000);

  const distinct = new Map<string, AppEvent>();
  for (const { event } of receiver.delivered) distinct.set(event.id, event);
  const duplicates = receiver.delivered.length - distinct.size;
  console.log(`${distinct.size} events delivered after the kill and a ${OUTAGE_MS / 1000} s outage (${retries} failed attempts meanwhile), ${duplicates} duplicate deliveries (by event id)`);
  expect(new Set([...distinct.values()].map(key))).toEqual(expected);
  // A duplicate is the same event (same id) delivered again, never the same happening under another id.
  expect(distinct.size).toBe(expected.size);
  for (const [roomId, seqs] of perRoomOrder(receiver.delivered)) {
    expect([roomId, seqs]).toEqual([roomId, seqs.toSorted((a, b) => a - b)]);
    expect([roomId, seqs]).toEqual([roomId, Array.from({ length: seqs.length }, (_, i) => i + 1)]);
  }
  expect(receiver.unverified).toEqual([]);
});
