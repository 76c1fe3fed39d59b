import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { AppEvent } from '../../shared/app-webhook-events.ts';
import type { TrackInfo } from '../../shared/schemas/index.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { APP_KEYS, perRoomOrder, WebhookReceiver } from './receiver.ts';
import { waitFor } from '../utils/wait.ts';

/**
 * Application webhooks through real routers (Redis, PostgreSQL) to a real HTTP receiver that
 * checks every delivery with the server SDK's verifier. The agents are scripted nodes making the
 * signed control-plane calls real agents make (participant events, track reports); the agent's
 * own track reports are tested in agent-tracks.test.ts.
 */
const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];
const PARIS = { 'eu-west': 10, 'us-east': 90, 'us-west': 150, apac: 200 };
const SINGAPORE = { apac: 10, 'us-west': 180, 'us-east': 220, 'eu-west': 200 };

interface World {
  routers: RunningRouter[];
  nodes: FakeNodes;
  receiver: WebhookReceiver;
}
let world: World | null = null;
let proxy: TcpFaultProxy | null = null;
afterEach(async () => {
  await world?.nodes.close();
  await Promise.all(world?.routers.map((r) => r.close()) ?? []);
  await world?.receiver.stop();
  await proxy?.close();
  world = null;
  proxy = null;
  await cleanupNamespaces();
});

async function startWorld(overrides: Partial<GeoSfuConfig>, replicas = 1): Promise<World> {
  const receiver = await WebhookReceiver.start();
  const ns = runNamespace();
  const routers: RunningRouter[] = [];
  const settings: Partial<GeoSfuConfig> = { appWebhookUrls: [receiver.url], appWebhookKeys: APP_KEYS, appWebhookPollMs: 50, appWebhookRetryMs: 50, appWebhookRetryMaxMs: 200, appWebhookTimeoutMs: 2_000, ...overrides };
  for (let i = 0; i < replicas; i++) routers.push(await startRouter(testConfig('real', settings, ns)));
  const nodes = new FakeNodes(routers[0]!.url, routers[0]!.config.clusterSecret);
  world = { routers, nodes, receiver };
  await nodes.start(routers[0]!.config.heartbeatIntervalMs);
  for (const region of REGIONS) await nodes.add({ nodeId: `${region}-1`, region });
  for (const a of REGIONS) for (const b of REGIONS) if (a !== b) nodes.setPeerRtt(`${a}-1`, `${b}-1`, 150);
  await nodes.heartbeatAll();
  for (const r of routers) await r.app.registry.refresh();
  return world;
}

async function signed(router: RunningRouter, path: string, body: unknown): Promise<number> {
  return (await signedCall({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path, body, timeoutMs: 5_000 })).statusCode;
}

/** Allocates and reports the join as the participant's agent does; returns the allocation. */
async function join(router: RunningRouter, roomId: string, participantId: string, latencies: Record<string, number>) {
  const res = await allocate(router.url, { roomId, participantId, latencies });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(await signed(router, '/v1/nodes/participant-event', { nodeId: res.body.node.id, roomId, participantId, allocationId: res.body.allocationId, event: 'joined' })).toBe(200);
  return { nodeId: res.body.node.id, region: res.body.region, allocationId: res.body.allocationId };
}


const summary = (e: AppEvent) => [e.event, e.participantId, 'reason' in e ? e.reason : 'track' in e ? `${e.track.kind}:${e.track.source}` : null];

describe('application webhooks', () => {
  it("a room's whole life: two join, one publishes audio and video, one is moved by rebalancing, one is kicked, the room ends", async () => {
    // First-joiner placement puts Paris on Singapore's apac; rebalancing then moves Paris to eu-west
    // (5 + 75 + 5 ms instead of 100 + 5 ms one way to Singapore).
    const w = await startWorld({ placementStrategy: 'first-joiner', rebalanceDebounceMs: 1_000, roomIdleTtlMs: 1_000 });
    const router = w.routers[0]!;
    const admin = { authorization: `Bearer ${router.config.adminToken}` };
    w.nodes.onMove = (move) =>
      void (async () => {
        // What the SDK does on `moved`: allocate again (the planned edge), join there; the old edge then reports its late `left`.
        const moved = await join(router, move.roomId, move.participantId, PARIS);
        await signed(router, '/v1/nodes/participant-event', { nodeId: 'apac-1', roomId: move.roomId, participantId: move.participantId, allocationId: move.allocationId, event: 'left' });
        expect(moved.region).toBe('eu-west');
      })();

    const sg = await join(router, 'life', 'singapore', SINGAPORE);
    const paris = await join(router, 'life', 'paris', PARIS);
    expect([sg.nodeId, paris.nodeId]).toEqual(['apac-1', 'apac-1']);
    const audio: TrackInfo = { trackId: 'mic-1', kind: 'audio', source: 'microphone', layers: [{}] };
    const video: TrackInfo = { trackId: 'cam-1', kind: 'video', source: 'camera', layers: [{ rid: 'q', maxBitrate: 150_000 }, { rid: 'h', maxBitrate: 500_000 }, { rid: 'f', maxBitrate: 1_500_000 }] };
    for (const track of [audio, video]) {
      expect(await signed(router, '/v1/nodes/track-event', { nodeId: paris.nodeId, roomId: 'life', participantId: 'paris', allocationId: paris.allocationId, event: 'published', track })).toBe(204);
    }
    await waitFor('the rebalancing move', () => w.receiver.delivered.some((d) => d.event.event === 'participant_moved'));
    const kicked = await request(`${router.url}/rooms/life/participants/singapore`, { method: 'DELETE', headers: admin });
    expect(kicked.statusCode).toBe(204);
    await kicked.body.dump();
    const state = await router.app.rooms.getRoom('life');
    const parisNow = state!.participants.find((p) => p.participantId === 'paris')!;
    expect(await signed(router, '/v1/nodes/participant-event', { nodeId: parisNow.nodeId, roomId: 'life', participantId: 'paris', allocationId: parisNow.allocationId, event: 'left' })).toBe(204);
    await waitFor('room_finished', () => w.receiver.delivered.some((d) => d.event.event === 'room_finished'));

    const events = w.receiver.delivered.map((d) => d.event);
    expect(events.map(summary)).toEqual([
      ['room_started', null, null],
      ['participant_joined', 'singapore', null],
      ['participant_joined', 'paris', null],
      ['track_published', 'paris', 'audio:microphone'],
      ['track_published', 'paris', 'video:camera'],
      ['participant_moved', 'paris', 'rebalance'],
      ['participant_left', 'singapore', 'kicked'],
      ['participant_left', 'paris', 'left'],
      ['room_finished', null, null],
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events[4]).toMatchObject({ track: video, region: 'apac', nodeId: 'apac-1' });
    expect(events[5]).toMatchObject({ from: { region: 'apac', nodeId: 'apac-1' }, region: 'eu-west', nodeId: 'eu-west-1' });
    // room_finished waits for the idle TTL after the last participant left.
    expect(events[8]!.occurredAtMs - events[7]!.occurredAtMs).toBeGreaterThanOrEqual(router.config.roomIdleTtlMs);
    for (const e of events) expect(e.queuedAtMs).toBeGreaterThanOrEqual(e.occurredAtMs);
    expect(w.receiver.unverified).toEqual([]);
    const metrics = router.app.metrics;
    expect((await metrics.appWebhookQueued.get()).values[0]!.value).toBe(9);
    // Counted once the router recorded the receiver's answer, which may come after the receiver has the event.
    await waitFor('the last delivery counted', async () => (await metrics.appWebhookDelivered.get()).values[0]!.value === 9);
    expect((await metrics.appWebhookLatency.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(9);
  });

  it('a receiver answering 500 forever: each event goes to the dead-letter stream after the attempt limit, the room goes on, replay delivers', async () => {
    const w = await startWorld({ appWebhookMaxAttempts: 3 });
    const router = w.routers[0]!;
    const admin = { authorization: `Bearer ${router.config.adminToken}` };
    w.receiver.answer = 500;
    await join(router, 'doomed', 'alice', PARIS);
    const list = async () => {
      const res = await request(`${router.url}/webhooks/dead-letters`, { headers: admin });
      expect(res.statusCode).toBe(200);
      return (await res.body.json()) as { total: number; deadLetters: Array<{ id: string; attempts: number; error: string; event: AppEvent }> };
    };
    const dead = await waitFor('both events dead-lettered', async () => ((await list()).total === 2 ? list() : null));
    expect(dead.deadLetters.map((d) => [d.event.event, d.event.seq, d.attempts])).toEqual([
      ['room_started', 1, 3],
      ['participant_joined', 2, 3],
    ]);
    expect(dead.deadLetters[0]!.error).toContain('answered 500');
    // Every attempt reached the receiver, none more: 3 per event.
    expect(w.receiver.refusedWith.map((e) => e.seq)).toEqual([1, 1, 1, 2, 2, 2]);
    expect((await router.app.metrics.appWebhookDeadLettered.get()).values[0]!.value).toBe(2);
    expect((await router.app.metrics.appWebhookRetried.get()).values[0]!.value).toBe(4);

    const unauthorised = await request(`${router.url}/webhooks/dead-letters`);
    expect(unauthorised.statusCode).toBe(401);
    await unauthorised.body.dump();
    const missing = await request(`${router.url}/webhooks/dead-letters/1-1/replay`, { method: 'POST', headers: admin });
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
    const bad = await request(`${router.url}/webhooks/dead-letters/__proto__/replay`, { method: 'POST', headers: admin });
    expect(bad.statusCode).toBe(400);
    await bad.body.dump();

    w.receiver.answer = 200;
    for (const d of dead.deadLetters) {
      const res = await request(`${router.url}/webhooks/dead-letters/${d.id}/replay`, { method: 'POST', headers: admin });
      expect(res.statusCode).toBe(202);
      await res.body.dump();
    }
    await waitFor('the replays delivered', () => w.receiver.delivered.length === 2);
    expect(w.receiver.delivered.map((d) => [d.event.id, d.event.seq])).toEqual(dead.deadLetters.map((d) => [d.event.id, d.event.seq]));
    expect((await list()).total).toBe(0);
  });

  it('two router replicas: events raised on both, each delivered once (one consumer per room), in order per room', async () => {
    const w = await startWorld({}, 2);
    // A slow receiver keeps deliveries in flight while both replicas poll.
    w.receiver.delayMs = 5;
    const rooms = Array.from({ length: 8 }, (_, i) => `room-${i}`);
    const people = ['a', 'b', 'c', 'd'];
    await Promise.all(
      rooms.map(async (roomId, r) => {
        for (const [i, who] of people.entries()) await join(w.routers[(r + i) % 2]!, roomId, who, PARIS);
      }),
    );
    const expected = rooms.length * (people.length + 1);
    await waitFor(`${expected} deliveries`, () => w.receiver.delivered.length >= expected);
    // Time for a double delivery to show, had there been one.
    await new Promise((r) => setTimeout(r, 500));
    const ids = w.receiver.ids();
    expect(ids).toHaveLength(expected);
    expect(new Set(ids).size).toBe(expected);
    for (const [roomId, seqs] of perRoomOrder(w.receiver.delivered)) expect([roomId, seqs]).toEqual([roomId, [1, 2, 3, 4, 5]]);
    const delivered = await Promise.all(w.routers.map(async (r) => (await r.app.metrics.appWebhookDelivered.get()).values[0]?.value ?? 0));
    console.log(`two replicas: ${expected} events delivered once each, ${delivered.join(' + ')} by replica`);
    expect(delivered[0]! + delivered[1]!).toBe(expected);
  });

  it('events raised while Redis is away go into the degraded journal and are queued, in order, when it is back', async () => {
    proxy = await TcpFaultProxy.start('127.0.0.1', 6379);
    const w = await startWorld({ redisUrl: `redis://127.0.0.1:${proxy.port}`, redisTimeoutMs: 2_000 });
    const router = w.routers[0]!;
    const alice = await join(router, 'cut', 'alice', PARIS);
    await waitFor('the join delivered', () => w.receiver.delivered.length === 2);
    const publish = (trackId: string) =>
      signed(router, '/v1/nodes/track-event', {
        nodeId: alice.nodeId,
        roomId: 'cut',
        participantId: 'alice',
        allocationId: alice.allocationId,
        event: 'published',
        track: { trackId, kind: 'video', source: 'screen_share', layers: [{}] },
      });

    proxy.cut();
    for (const trackId of ['t1', 't2', 't3']) expect(await publish(trackId)).toBe(204);
    expect(router.app.allocator.journal.appEventCount).toBe(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.receiver.delivered).toHaveLength(2);
    proxy.restore();
    // Raised as Redis comes back: queued behind the journaled ones.
    expect(await publish('t4')).toBe(204);

    // On a timeout, what was stuck where (seen once under a loaded .ci/run, not reproduced since).
    await waitFor('the journaled events delivered', () => w.receiver.delivered.length === 6, 20_000).catch((err: unknown) => {
      const delivered = w.receiver.delivered.map((d) => ('track' in d.event ? d.event.track.trackId : d.event.event));
      throw new Error(`${String(err)}: ${router.app.allocator.journal.appEventCount} still journaled, delivered ${JSON.stringify(delivered)}`);
    });
    const events = w.receiver.delivered.map((d) => d.event);
    expect(events.map((e) => [e.seq, 'track' in e ? e.track.trackId : e.event])).toEqual([
      [1, 'room_started'],
      [2, 'participant_joined'],
      [3, 't1'],
      [4, 't2'],
      [5, 't3'],
      [6, 't4'],
    ]);
    // Dated when they happened, queued when Redis was back.
    expect(events[2]!.queuedAtMs).toBeGreaterThan(events[2]!.occurredAtMs);
    expect(router.app.allocator.journal.appEventCount).toBe(0);
  });
});
