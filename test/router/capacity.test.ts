import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { cleanupNamespaces, startRouter, testConfig, type Backend, type RunningRouter } from '../utils/router-harness.ts';
import { allocate } from '../utils/http.ts';

let routers: RunningRouter[] = [];
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await Promise.all(routers.map((r) => r.close()));
  routers = [];
});
afterAll(cleanupNamespaces);

const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };

describe.each<Backend>(['memory', 'real'])('capacity reservation (%s stores)', (backend) => {
  it('a burst between two heartbeats cannot overfill a node', async () => {
    const router = await startRouter(testConfig(backend));
    routers.push(router);
    nodes = new FakeNodes(router.url, router.config.clusterSecret);
    await nodes.start(200);
    await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 10 });
    await nodes.add({ nodeId: 'us-east-1', region: 'us-east', maxParticipants: 5 });
    await router.app.registry.refresh();
    // 30 people in 30 rooms at once: 10 fit on us-west-1, 5 overflow to us-east-1, 15 are refused.
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => allocate(router.url, { roomId: `burst-${i}`, participantId: `p${i}`, latencies: US_WEST })));
    const byNode = new Map<string, number>();
    for (const r of results) if (r.status === 200) byNode.set(r.body.node.id, (byNode.get(r.body.node.id) ?? 0) + 1);
    expect(Object.fromEntries(byNode)).toEqual({ 'us-west-1': 10, 'us-east-1': 5 });
    expect(results.filter((r) => r.status === 503)).toHaveLength(15);
    expect(results.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    const counts = await router.app.rooms.nodeCounts();
    expect([counts.get('us-west-1'), counts.get('us-east-1')]).toEqual([10, 5]);
  });

  it('an allocation not followed by a join expires and releases its capacity; a joined one stays', async () => {
    const router = await startRouter(testConfig(backend, { allocationTtlMs: 1_000 }));
    routers.push(router);
    nodes = new FakeNodes(router.url, router.config.clusterSecret);
    await nodes.start(200);
    await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 2 });
    await router.app.registry.refresh();
    const a = await allocate(router.url, { roomId: 'ttl', participantId: 'a', latencies: US_WEST });
    const b = await allocate(router.url, { roomId: 'ttl', participantId: 'b', latencies: US_WEST });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await allocate(router.url, { roomId: 'ttl', participantId: 'c', latencies: US_WEST })).status).toBe(503);
    // b joins (as its agent reports); a never does.
    const joined = await signedCall({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: '/v1/nodes/participant-event', body: { nodeId: 'us-west-1', roomId: 'ttl', participantId: 'b', allocationId: b.body.allocationId, event: 'joined' }, timeoutMs: 2_000 });
    // Current, with the room's node set (a and b, both on us-west-1) at the room's version.
    expect([joined.statusCode, joined.body]).toEqual([200, { current: true, room: { version: expect.any(Number), nodes: [expect.objectContaining({ nodeId: 'us-west-1', region: 'us-west' })] } }]);
    await new Promise((r) => setTimeout(r, 2_200));
    const state = await router.app.rooms.getRoom('ttl');
    expect(state?.participants.map((p) => [p.participantId, p.status])).toEqual([['b', 'joined']]);
    expect((await router.app.rooms.nodeCounts()).get('us-west-1')).toBe(1);
    expect((await allocate(router.url, { roomId: 'ttl', participantId: 'c', latencies: US_WEST })).status).toBe(200);
    await router.app.sessions.flush();
    expect((await router.app.sessions.get(a.body.allocationId))?.status).toBe('expired');
    expect((await router.app.sessions.get(b.body.allocationId))?.status).toBe('active');
  });
});
