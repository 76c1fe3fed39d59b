import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane } from '../../shared/control-plane.ts';
import { nodeOccupancy, type RegionsResponse } from '../../shared/schemas/index.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * The router's operator API without agents of its own: the node actions' refusals and failure
 * paths (the live forwarding to real agents is test/cli/operator.test.ts), the dry run leaving
 * the room store as it was, the participants count, and the OpenAPI credentials.
 */
let router: RunningRouter;
let nodes: FakeNodes;

beforeAll(async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(router.config.heartbeatIntervalMs);
  for (const region of ['us-west', 'us-east', 'eu-west', 'apac']) await nodes.add({ nodeId: `${region}-1`, region });
  await router.app.registry.refresh();
});
afterAll(async () => {
  await nodes.close();
  await router.close();
});

async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${router.url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown> & { error?: { code: string; field?: string; message: string } }) : null };
}
const admin = () => ({ authorization: `Bearer ${router.config.adminToken}` });
const apiKey = () => ({ authorization: `Bearer ${router.config.apiKey}` });

describe('node actions: POST /nodes/:nodeId/cordon and /drain', () => {
  it('need the admin token', async () => {
    for (const [path, body] of [['/nodes/us-west-1/cordon', { cordoned: true }], ['/nodes/us-west-1/drain', undefined]] as const) {
      expect((await call('POST', path, body)).status).toBe(401);
      expect((await call('POST', path, body, apiKey())).status).toBe(401);
    }
  });

  it('refuse a bad body naming the field, and unknown nodes (Object.prototype names too) with 404', async () => {
    const missing = await call('POST', '/nodes/us-west-1/cordon', {}, admin());
    expect(missing.status).toBe(400);
    expect(missing.body!.error!.message).toMatch(/cordoned/);
    expect((await call('POST', '/nodes/us-west-1/cordon', { cordoned: 'yes' }, admin())).status).toBe(400);
    expect((await call('POST', '/nodes/us-west-1/cordon', { cordoned: true, extra: 1 }, admin())).status).toBe(400);
    for (const id of ['no-such-node', '__proto__', 'constructor', 'toString']) {
      const res = await call('POST', `/nodes/${id}/cordon`, { cordoned: true }, admin());
      expect(res.status, id).toBe(404);
      expect(res.body!.error!.code).toBe('NOT_FOUND');
    }
    expect((await call('POST', '/nodes/bad%20id!/drain', undefined, admin())).status).toBe(400);
  });

  it('an agent answering outside the contract, or not at all, is a 502 naming the node', async () => {
    // The fake nodes' control servers answer 204 to anything but moves and pushes.
    const offContract = await call('POST', '/nodes/us-east-1/cordon', { cordoned: true }, admin());
    expect(offContract.status).toBe(502);
    expect(offContract.body!.error).toMatchObject({ code: 'AGENT_UNAVAILABLE', message: expect.stringMatching(/us-east-1.*\/admin\/cordon answered 204/) });

    // A node whose control URL refuses connections.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((r) => closed.close(() => r()));
    const registration = { nodeId: 'gone-1', region: 'apac', controlUrl: deadUrl, signalingUrl: deadUrl, probeUrl: `${deadUrl}/probe`, maxParticipants: 10, version: 'test' };
    const reg = await signedCall({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: controlPlane.register.path, body: registration, timeoutMs: 5_000 });
    expect(reg.statusCode).toBe(200);
    await router.app.registry.refresh();
    const unreachable = await call('POST', '/nodes/gone-1/drain', undefined, admin());
    expect(unreachable.status).toBe(502);
    expect(unreachable.body!.error).toMatchObject({ code: 'AGENT_UNAVAILABLE', message: expect.stringMatching(/gone-1.*unreachable/) });
    // Nothing changed on the router's side: the node is as it was.
    const view = (await call('GET', '/regions')).body as unknown as RegionsResponse;
    expect(view.regions.flatMap((r) => r.nodes).find((n) => n.nodeId === 'gone-1')).toMatchObject({ draining: false, cordoned: false });
  });
});

describe('POST /allocate/dry-run', () => {
  it('answers the decision /allocate would make, and the room store is unchanged', async () => {
    const latencies = { 'us-west': 10, 'us-east': 70, 'eu-west': 140, apac: 170 };
    const placed = await call('POST', '/allocate', { roomId: 'dry-room', participantId: 'alice', latencies }, apiKey());
    expect(placed.status).toBe(200);
    const before = { ids: await router.app.rooms.listRoomIds(), room: await router.app.rooms.getRoom('dry-room'), counts: await router.app.rooms.nodeCounts() };

    const preview = await call('POST', '/allocate/dry-run', { roomId: 'dry-room', participantId: 'bob', latencies: { ...latencies, 'us-west': 150, 'eu-west': 5 } }, apiKey());
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ dryRun: true, mode: 'sfu', room: { exists: true, homeRegion: 'us-west', participants: 1 }, homeRegion: 'us-west' });
    expect(preview.body).not.toHaveProperty('token');
    const fresh = await call('POST', '/allocate/dry-run', { roomId: 'never-made', participantId: 'carol', latencies }, apiKey());
    expect(fresh.body).toMatchObject({ mode: 'sfu', room: { exists: false }, homeRegion: 'us-west', region: 'us-west', node: { id: 'us-west-1' } });

    const after = { ids: await router.app.rooms.listRoomIds(), room: await router.app.rooms.getRoom('dry-room'), counts: await router.app.rooms.nodeCounts() };
    expect(after).toEqual(before);
    expect(after.ids).not.toContain('never-made');
  });

  it('refuses what /allocate refuses: bad input naming the field', async () => {
    const res = await call('POST', '/allocate/dry-run', { roomId: 'x', participantId: 'y', latencies: { mars: 5 } }, apiKey());
    expect(res.status).toBe(400);
    expect(res.body!.error!.field).toBe('latencies.mars');
  });
});

describe('participants on a node: one definition', () => {
  it('nodeOccupancy: joined from the agent, pending = the router’s allocations not joined', () => {
    expect(nodeOccupancy(2, 1)).toEqual({ joined: 1, pending: 1, total: 2 });
    expect(nodeOccupancy(1, 1)).toEqual({ joined: 1, pending: 0, total: 1 });
    expect(nodeOccupancy(0, 0)).toEqual({ joined: 0, pending: 0, total: 0 });
    // The agent may count a join before the router's count has it: never a negative pending.
    expect(nodeOccupancy(1, 3)).toEqual({ joined: 3, pending: 0, total: 3 });
  });

  it('GET /regions carries it for each node', async () => {
    nodes.set('eu-west-1', { load: { participants: 1 } });
    await nodes.heartbeat('eu-west-1');
    const latencies = { 'us-west': 140, 'us-east': 70, 'eu-west': 5, apac: 170 };
    for (const participantId of ['p1', 'p2']) expect((await call('POST', '/allocate', { roomId: 'count-room', participantId, latencies }, apiKey())).status).toBe(200);
    await router.app.registry.refresh();
    const view = (await call('GET', '/regions')).body as unknown as RegionsResponse;
    const eu = view.regions.flatMap((r) => r.nodes).find((n) => n.nodeId === 'eu-west-1')!;
    expect(eu.reserved).toBe(2);
    expect(eu.occupancy).toEqual({ joined: 1, pending: 1, total: 2 });
  });
});

describe('OpenAPI', () => {
  it('declares the API key, grant and admin credentials, and every route says which it takes', async () => {
    const doc = (await call('GET', '/docs/json')).body as unknown as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: Array<Record<string, string[]>> }>>;
    };
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['admin', 'apiKey', 'grant']);
    for (const scheme of Object.values(doc.components.securitySchemes)) expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer' });
    const publicRoutes = new Set(['get /regions']);
    const schemesOf = new Map<string, string[]>();
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        const key = `${method} ${path}`;
        if (publicRoutes.has(key)) continue;
        expect(op.security, key).toBeDefined();
        schemesOf.set(key, op.security!.flatMap((s) => Object.keys(s)).sort());
      }
    }
    expect(schemesOf.get('post /allocate')).toEqual(['apiKey', 'grant']);
    expect(schemesOf.get('post /allocate/dry-run')).toEqual(['apiKey', 'grant']);
    for (const key of ['get /rooms', 'delete /rooms/{roomId}/participants/{participantId}', 'get /alerts', 'get /scaling', 'post /nodes/{nodeId}/cordon', 'post /nodes/{nodeId}/drain']) {
      expect(schemesOf.get(key), key).toEqual(['admin']);
    }
  });
});
