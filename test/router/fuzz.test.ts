import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signRequest } from '../../shared/signed-request.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * Property-based bad input on every route: malformed and random bodies, wrong types, huge strings,
 * unknown regions, negative or NaN latencies, invalid IPs. Only 4xx (or a valid 200), never a 5xx,
 * never a crash, and no state change from a refused request.
 */
let router: RunningRouter;
let nodes: FakeNodes;
beforeAll(async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 100_000 });
  await router.app.registry.refresh();
});
afterAll(async () => {
  await nodes.close();
  await router.close();
});

async function send(method: string, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await request(`${router.url}${path}`, { method: method as 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  await res.body.dump();
  return res.statusCode;
}

const junk = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ minLength: 129, maxLength: 5_000 }),
  fc.integer(),
  fc.double(),
  fc.constant(Number.NaN),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.anything(), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 10 }), fc.anything(), { maxKeys: 5 }),
);
const latencies = fc.dictionary(fc.oneof(fc.constantFrom('us-west', 'us-east', 'eu-west', 'apac', 'mars', 'EU'), fc.string({ maxLength: 40 })), fc.oneof(fc.double({ min: -1e12, max: 1e12 }), fc.constant(-1), junk), { maxKeys: 6 });
const allocateBody = fc.record(
  {
    roomId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/), junk),
    participantId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/), junk),
    latencies: fc.oneof(latencies, junk),
    clientIp: fc.oneof(fc.ipV4(), fc.ipV6(), junk),
    excludeNodeIds: fc.oneof(fc.array(fc.string({ maxLength: 200 }), { maxLength: 70 }), junk),
    extra: junk,
  },
  { requiredKeys: [] },
);

it('POST /allocate: random bodies get a 4xx or a valid placement, never a 5xx; refused ones store nothing', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(allocateBody.map((b) => JSON.stringify(b)), fc.string({ maxLength: 200 })), async (body) => {
      const before = (await router.app.rooms.listRoomIds()).length;
      const status = await send('POST', '/allocate', body, { authorization: `Bearer ${router.config.apiKey}` });
      expect(status === 200 || (status >= 400 && status < 500)).toBe(true);
      if (status !== 200) expect((await router.app.rooms.listRoomIds()).length).toBe(before);
    }),
    { numRuns: 300 },
  );
});

it('agent control routes: random signed bodies get a 4xx, never a 5xx, and never register a node', async () => {
  const paths = ['/v1/nodes/register', '/v1/nodes/heartbeat', '/v1/nodes/deregister', '/v1/nodes/participant-event', '/v1/nodes/room-nodes'];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...paths), fc.oneof(fc.dictionary(fc.string({ maxLength: 12 }), fc.anything(), { maxKeys: 8 }).map((b) => JSON.stringify(b)), fc.string({ maxLength: 100 })), async (path, body) => {
      const headers = signRequest(router.config.clusterSecret, { method: 'POST', path, body }, Date.now());
      const status = await send('POST', path, body, headers);
      expect(status >= 400 && status < 500).toBe(true);
    }),
    { numRuns: 200 },
  );
  expect(router.app.registry.snapshot().nodes.map((n) => n.nodeId)).toEqual(['us-west-1']);
});

it('path parameters: random ids on GET and DELETE rooms get a 4xx or 404, never a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), async (room, participant) => {
      const a = await send('GET', `/rooms/${encodeURIComponent(room)}`, '');
      const b = await send('DELETE', `/rooms/${encodeURIComponent(room)}/participants/${encodeURIComponent(participant)}`, '', { authorization: `Bearer ${router.config.adminToken}` });
      for (const s of [a, b]) expect(s >= 400 && s < 500).toBe(true);
    }),
    { numRuns: 200 },
  );
});
