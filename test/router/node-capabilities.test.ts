import { afterAll, afterEach, expect, it } from 'vitest';
import { request } from 'undici';
import { allocate } from '../utils/http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { cleanupNamespaces, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * An agent registers its SFU's RTP capabilities; /allocate hands them to the client with the node
 * (signaling protocol 1.3: the Device loads before the connection, which then carries the join).
 * On Redis, as router replicas share registrations.
 */
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
});
afterAll(cleanupNamespaces);

/** The outline of a mediasoup router's capabilities (what the schema bounds); the values pass through. */
const CAPABILITIES = {
  codecs: [
    { kind: 'audio', mimeType: 'audio/opus', preferredPayloadType: 100, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [{ type: 'transport-cc', parameter: '' }] },
    { kind: 'video', mimeType: 'video/VP8', preferredPayloadType: 101, clockRate: 90000, parameters: {}, rtcpFeedback: [{ type: 'nack', parameter: '' }] },
  ],
  headerExtensions: [{ kind: 'video', uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1, preferredEncrypt: false, direction: 'sendrecv' }],
};

it("an allocation carries its node's registered RTP capabilities, and none for a node that registered none", async () => {
  router = await startRouter(testConfig('real', {}, runNamespace()));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(router.config.heartbeatIntervalMs);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', rtpCapabilities: CAPABILITIES });
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await router.app.registry.refresh();
  const west = await allocate(router.url, { roomId: 'caps-west', participantId: 'a', latencies: { 'us-west': 20, 'eu-west': 150 } });
  expect(west.status).toBe(200);
  expect(west.body.node).toEqual({ id: 'us-west-1', region: 'us-west', signalingUrl: expect.any(String), rtpCapabilities: CAPABILITIES });
  const eu = await allocate(router.url, { roomId: 'caps-eu', participantId: 'b', latencies: { 'us-west': 150, 'eu-west': 20 } });
  expect(eu.status).toBe(200);
  expect(eu.body.node.id).toBe('eu-west-1');
  expect(eu.body.node).not.toHaveProperty('rtpCapabilities');
});

it('a registration whose capabilities are not their outline is refused, naming the field', async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(router.config.heartbeatIntervalMs);
  for (const [what, rtpCapabilities, field] of [
    ['not an object', 'opus', 'rtpCapabilities'],
    ['no codecs', { headerExtensions: [] }, 'codecs'],
    ['too many codecs', { codecs: Array.from({ length: 65 }, () => CAPABILITIES.codecs[0]), headerExtensions: [] }, 'codecs'],
    ['a codec without its clock rate', { codecs: [{ kind: 'audio', mimeType: 'audio/opus' }], headerExtensions: [] }, 'clockRate'],
    ['a parameter that is an object', { codecs: [{ ...CAPABILITIES.codecs[0], parameters: { apt: { x: 1 } } }], headerExtensions: [] }, 'parameters'],
  ] as const) {
    await expect(nodes.add({ nodeId: `bad-${what.replace(/ /g, '-')}`, region: 'us-west', rtpCapabilities: rtpCapabilities as never }), what).rejects.toThrow(new RegExp(`register .*: 400 .*${field}`));
  }
  const listed = await request(`${router.url}/regions`);
  const body = (await listed.body.json()) as { regions: Array<{ nodes: unknown[] }> };
  expect(body.regions.flatMap((r) => r.nodes)).toEqual([]);
});
