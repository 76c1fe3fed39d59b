import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { verifyJoinToken } from '../../shared/tokens.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { signRequest } from '../../shared/signed-request.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

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
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : null };
}
const admin = () => ({ authorization: `Bearer ${router.config.adminToken}` });

describe('bad input: 400 naming the field, never a 5xx, never a state change', () => {
  const good = { roomId: 'bad-input-room', participantId: 'alice' };
  const cases: Array<[string, unknown, string]> = [
    ['missing roomId', { participantId: 'a' }, 'roomId'],
    ['missing participantId', { roomId: 'r' }, 'participantId'],
    ['roomId too long', { ...good, roomId: 'r'.repeat(129) }, 'roomId'],
    ['roomId with a space', { ...good, roomId: 'a room' }, 'roomId'],
    ['empty participantId', { ...good, participantId: '' }, 'participantId'],
    ['roomId not a string', { ...good, roomId: 42 }, 'roomId'],
    ['negative latency', { ...good, latencies: { 'us-west': -1 } }, 'latencies.us-west'],
    ['latency as a string (no coercion)', { ...good, latencies: { 'us-west': '20' } }, 'latencies.us-west'],
    ['latency for an unknown region', { ...good, latencies: { 'mars-1': 20 } }, 'latencies.mars-1'],
    ['latency absurdly large', { ...good, latencies: { apac: 1e9 } }, 'latencies.apac'],
    ['excludeNodeIds not an array', { ...good, excludeNodeIds: 'us-west-1' }, 'excludeNodeIds'],
    ['excludeNodeIds bad id', { ...good, excludeNodeIds: ['bad id'] }, 'excludeNodeIds.0'],
    ['clientIp not an IP', { ...good, clientIp: 'not-an-ip!' }, 'clientIp'],
    ['unknown property (no silent stripping)', { ...good, region: 'us-west' }, 'region'],
  ];
  it.each(cases)('POST /allocate: %s', async (_name, body, field) => {
    const res = await call('POST', '/allocate', body);
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe(field);
    expect(res.body.error.message).toContain(field);
  });

  it('POST /allocate: malformed JSON and non-object bodies', async () => {
    expect((await call('POST', '/allocate', '{"roomId":')).status).toBe(400);
    expect((await call('POST', '/allocate', '[1,2]')).status).toBe(400);
    expect((await call('POST', '/allocate', 'null')).status).toBe(400);
  });

  it('none of the bad requests created the room', async () => {
    expect((await call('GET', '/rooms/bad-input-room')).status).toBe(404);
    expect(await router.app.rooms.listRoomIds()).not.toContain('bad-input-room');
  });

  it('GET /rooms/:roomId and DELETE participant validate their parameters', async () => {
    expect((await call('GET', `/rooms/${'x'.repeat(200)}`)).body.error.field).toBe('roomId');
    const del = await call('DELETE', '/rooms/r%20x/participants/p', undefined, admin());
    expect(del.status).toBe(400);
    expect(del.body.error.field).toBe('roomId');
  });

  it('node control API refuses unsigned, forged and replayed calls, and validates signed ones', async () => {
    const reg = { nodeId: 'evil-1', region: 'us-west', controlUrl: 'http://127.0.0.1:1', signalingUrl: 'http://127.0.0.1:1', probeUrl: 'http://127.0.0.1:1/probe', maxParticipants: 10, version: 'x' };
    expect((await call('POST', '/v1/nodes/register', reg)).status).toBe(401);
    const forged = await signedCall({ secret: 'f'.repeat(40), baseUrl: router.url, method: 'POST', path: '/v1/nodes/register', body: reg, timeoutMs: 2_000 });
    expect(forged.statusCode).toBe(401);
    // Replay: the same signed bytes twice.
    const body = JSON.stringify({ nodeId: 'evil-1' });
    const headers = { ...signRequest(router.config.clusterSecret, { method: 'POST', path: '/v1/nodes/deregister', body }, Date.now()), 'content-type': 'application/json' };
    const first = await request(`${router.url}/v1/nodes/deregister`, { method: 'POST', headers, body });
    await first.body.dump();
    expect(first.statusCode).toBe(204);
    const replay = await request(`${router.url}/v1/nodes/deregister`, { method: 'POST', headers, body });
    expect(replay.statusCode).toBe(401);
    expect(((await replay.body.json()) as { error: { code: string } }).error.code).toBe('SIGNATURE_REPLAYED');
    const badRegion = await signedCall<{ error: { field: string } }>({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: '/v1/nodes/register', body: { ...reg, region: 'mars' }, timeoutMs: 2_000 });
    expect(badRegion.statusCode).toBe(400);
    expect(badRegion.body.error.field).toBe('region');
    expect(router.app.registry.snapshot().nodes.map((n) => n.nodeId)).not.toContain('evil-1');
  });

  it('admin routes need the admin credential', async () => {
    expect((await call('GET', '/rooms')).status).toBe(401);
    expect((await call('GET', '/rooms', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await call('GET', '/rooms', undefined, admin())).status).toBe(200);
    expect((await call('DELETE', '/rooms/r/participants/p')).status).toBe(401);
  });
});

describe('allocation results', () => {
  it('returns a join token bound to room, participant, region and node', async () => {
    const res = await call('POST', '/allocate', { roomId: 'tok', participantId: 'alice', latencies: { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 } });
    expect(res.status).toBe(200);
    const claims = verifyJoinToken(router.config.tokenKeys, res.body.token, Date.now(), { room: 'tok', sub: 'alice', region: 'us-west', node: 'us-west-1' });
    expect(claims.aid).toBe(res.body.allocationId);
    expect(() => verifyJoinToken(router.config.tokenKeys, res.body.token, Date.now(), { room: 'other' })).toThrow(/bound to another room/);
    expect(() => verifyJoinToken(router.config.tokenKeys, res.body.token, Date.now() + router.config.joinTokenTtlMs + 1_000)).toThrow(/expired/);
    expect(new Date(res.body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(res.body.candidates.map((c: { region: string }) => c.region)).toEqual(['us-west', 'us-east', 'eu-west', 'apac']);
  });

  it('GET /rooms/:roomId shows participants by edge and the cascade mesh; DELETE removes one', async () => {
    await call('POST', '/allocate', { roomId: 'view', participantId: 'a', latencies: { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 } });
    // b: apac (3+167+10)/2 = 90 (geo-estimated us-west–apac RTT 167) beats us-west (230+10)/2 = 120.
    await call('POST', '/allocate', { roomId: 'view', participantId: 'b', latencies: { 'us-west': 230, 'us-east': 230, 'eu-west': 170, apac: 3 } });
    const view = (await call('GET', '/rooms/view')).body;
    expect(view.homeRegion).toBe('us-west');
    expect(view.participants.map((p: { participantId: string; region: string }) => [p.participantId, p.region])).toEqual([['a', 'us-west'], ['b', 'apac']]);
    expect(view.cascade.regions).toEqual(['us-west', 'apac']);
    expect(view.cascade.links).toEqual([{ from: 'us-west-1', to: 'apac-1', fromRegion: 'us-west', toRegion: 'apac' }]);
    expect((await call('DELETE', '/rooms/view/participants/b', undefined, admin())).status).toBe(204);
    expect((await call('DELETE', '/rooms/view/participants/b', undefined, admin())).status).toBe(404);
    expect((await call('GET', '/rooms/view')).body.cascade.regions).toEqual(['us-west']);
  });

  it('tells agents which nodes serve their rooms (signed), for the cascade mesh', async () => {
    await call('POST', '/allocate', { roomId: 'mesh', participantId: 'a', latencies: { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 } });
    await call('POST', '/allocate', { roomId: 'mesh', participantId: 'b', latencies: { 'us-west': 230, 'us-east': 230, 'eu-west': 170, apac: 3 } });
    const body = { nodeId: 'us-west-1', roomIds: ['mesh', 'no-such-room'] };
    const res = await signedCall<{ rooms: Record<string, { version: number; nodes: Array<{ nodeId: string; region: string }> }> }>({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: '/v1/nodes/room-nodes', body, timeoutMs: 2_000 });
    expect(res.statusCode).toBe(200);
    expect(res.body.rooms.mesh!.nodes.map((n) => [n.nodeId, n.region])).toEqual([['us-west-1', 'us-west'], ['apac-1', 'apac']]);
    // The version the set was read at: an agent orders it against the router's pushes.
    expect(res.body.rooms.mesh!.version).toBeGreaterThan(0);
    expect(res.body.rooms['no-such-room']).toBeUndefined();
    expect((await call('POST', '/v1/nodes/room-nodes', body)).status).toBe(401);
  });

  it('serves OpenAPI docs, health and metrics', async () => {
    const docs = await call('GET', '/docs/json');
    expect(docs.status).toBe(200);
    expect(Object.keys(docs.body.paths)).toContain('/allocate');
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
    const metrics = await request(`${router.url}/metrics`);
    const text = await metrics.body.text();
    expect(text).toMatch(/geo_sfu_allocations_total\{outcome="home"\} [1-9]/);
    expect(text).toContain('geo_sfu_nodes{region="apac",state="alive"} 1');
  });
});
