import { afterAll, afterEach, expect, it } from 'vitest';
import type { RegionPolicy } from '../../shared/schemas/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';

/**
 * A region policy while Redis is away (GEO_SFU_DEGRADED_ALLOCATION): the router places from its
 * last view of the room with the same policy, refuses another policy from that view (409), and
 * the journal lands in Redis with the room's policy intact.
 */
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
let proxy: TcpFaultProxy | null = null;
afterEach(async () => {
  await router?.close();
  await nodes?.close();
  await proxy?.close();
});
afterAll(cleanupNamespaces);

const LONDON = { 'us-west': 140, 'us-east': 80, 'eu-west': 10, apac: 170 };
const BOSTON = { 'us-west': 400, 'us-east': 5, 'eu-west': 400, apac: 400 };
const SINGAPORE = { 'us-west': 180, 'us-east': 240, 'eu-west': 170, apac: 5 };
const EU_US: RegionPolicy = { allowedRegions: ['us-east', 'eu-west'] };

it('a policy room keeps allocating within its policy during a Redis cut; another policy is 409; the journal keeps the policy', async () => {
  const target = new URL(REDIS_URL);
  proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
  const url = new URL(target);
  url.port = String(proxy.port);
  const config = testConfig('real', { redisUrl: url.href, redisTimeoutMs: 500, degradedSeatsPerNode: 5 }, runNamespace());
  router = await startRouter(config);
  const headers = { authorization: `Bearer ${config.apiKey}` };
  nodes = new FakeNodes(router.url, config.clusterSecret);
  await nodes.start(200);
  for (const region of ['us-east', 'eu-west', 'apac']) await nodes.add({ nodeId: `${region}-1`, region, maxParticipants: 1_000 });
  await router.app.registry.refresh();
  expect((await allocate(router.url, { roomId: 'res', participantId: 'ldn', latencies: LONDON, policy: EU_US }, headers)).body.node?.id).toBe('eu-west-1');
  expect((await allocate(router.url, { roomId: 'res', participantId: 'nyc', latencies: BOSTON, policy: EU_US }, headers)).body.node?.id).toBe('us-east-1');

  proxy.cut();
  const sg = await allocate(router.url, { roomId: 'res', participantId: 'sg', latencies: SINGAPORE, policy: EU_US }, headers);
  expect(sg.status, JSON.stringify(sg.body)).toBe(200);
  expect(['eu-west-1', 'us-east-1']).toContain(sg.body.node?.id);
  expect(sg.body.candidates?.find((c) => c.region === 'apac')?.excludedBecause).toBe('POLICY_RESTRICTED');
  const other = await allocate(router.url, { roomId: 'res', participantId: 'eve', latencies: LONDON }, headers);
  expect([other.status, other.body.error?.code]).toEqual([409, 'POLICY_CONFLICT']);
  expect(router.app.allocator.journalSize()).toBe(1);

  proxy.restore();
  const started = Date.now();
  while (router.app.allocator.journalSize() > 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
  expect(router.app.allocator.journalSize()).toBe(0);
  const state = await router.app.rooms.getRoom('res');
  expect(state?.room.policy).toEqual({ allowedRegions: ['us-east', 'eu-west'], preferredRegions: [], allowP2p: false });
  expect(state?.participants.map((p) => [p.participantId, p.region]).sort()).toEqual([['ldn', 'eu-west'], ['nyc', 'us-east'], ['sg', sg.body.region]].sort());
});
