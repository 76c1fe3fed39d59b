import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, startRouter, testConfig, type Backend, type RunningRouter } from '../utils/router-harness.ts';

/**
 * Issue 14, per-room cap: GEO_SFU_MAX_ROOM_PARTICIPANTS is enforced atomically at /allocate (in
 * the room store's allocation, the Redis Lua script or the memory store), so N + k concurrent
 * callers for a room of cap N give exactly N places and k `409 ROOM_FULL`; a participant already
 * in the room allocating again is not counted twice.
 */
const ROOM_CAP = 20;
const EXTRA = 12;
const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
});
afterAll(cleanupNamespaces);

describe.each<Backend>(['real', 'memory'])('room size cap at /allocate (%s stores)', (backend) => {
  it(`${ROOM_CAP + EXTRA} concurrent /allocate for a room of ${ROOM_CAP}: exactly ${ROOM_CAP} succeed, the rest 409 ROOM_FULL`, async () => {
    router = await startRouter(testConfig(backend, { maxRoomParticipants: ROOM_CAP }));
    nodes = new FakeNodes(router.url, router.config.clusterSecret);
    await nodes.start(200);
    for (const nodeId of ['us-west-1', 'us-west-2']) await nodes.add({ nodeId, region: 'us-west', maxParticipants: 1_000 });
    await router.app.registry.refresh();

    const results = await Promise.all(
      Array.from({ length: ROOM_CAP + EXTRA }, (_, i) => allocate(router!.url, { roomId: 'crowded', participantId: `p${i}`, latencies: US_WEST })),
    );
    const statuses: Record<string, number> = {};
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const refused = results.filter((r) => r.status === 409);
    console.log(`${backend}: ${ROOM_CAP + EXTRA} concurrent /allocate for a room of ${ROOM_CAP}: ${JSON.stringify(statuses)}; refusal: ${JSON.stringify(refused[0]?.body)}`);
    expect(statuses).toEqual({ 200: ROOM_CAP, 409: EXTRA });
    expect(refused.every((r) => r.body.error?.code === 'ROOM_FULL')).toBe(true);
    expect(refused[0]!.body.error?.message).toMatch(new RegExp(`${ROOM_CAP} participants`));
    const state = await router.app.rooms.getRoom('crowded');
    expect(state?.participants).toHaveLength(ROOM_CAP);
    const counts = await router.app.rooms.nodeCounts();
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(ROOM_CAP);

    // Someone already in the room allocates again (failover, move): its own place, not a new one.
    const admitted = results.find((r) => r.status === 200)!.body.participantId;
    const again = await allocate(router.url, { roomId: 'crowded', participantId: admitted, latencies: US_WEST, excludeNodeIds: [] });
    expect(again.status).toBe(200);
    expect((await router.app.rooms.getRoom('crowded'))?.participants).toHaveLength(ROOM_CAP);
    // A newcomer is still refused; another room is not affected.
    expect((await allocate(router.url, { roomId: 'crowded', participantId: 'late', latencies: US_WEST })).status).toBe(409);
    expect((await allocate(router.url, { roomId: 'other', participantId: 'late', latencies: US_WEST })).status).toBe(200);
  });
});
