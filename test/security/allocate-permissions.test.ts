import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrant } from '../../shared/tokens.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * Issue 14, permissions at /allocate: API-key callers may pass `permissions` (default: everything);
 * a grant caller's permissions come from its grant, and the body may only narrow them (asking for
 * more is 403 naming the field). What is decided travels in the join token's `perm`, with
 * `publishData` always explicit (absent from a grant: the grant's `publish`).
 */
const GRANT_KEY = { kid: 'app', secret: 'g'.repeat(40) };
const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };
let router: RunningRouter;
let nodes: FakeNodes;
beforeAll(async () => {
  router = await startRouter(testConfig('memory', { grantKeys: [GRANT_KEY] }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 1_000 });
  await router.app.registry.refresh();
});
afterAll(async () => {
  await nodes.close();
  await router.close();
});

const apiKey = () => ({ 'x-api-key': router.config.apiKey || 'api-key-for-tests-0123456789abcdef' });
const grant = (participantId: string, permissions?: { publish?: boolean; subscribe?: boolean; publishData?: boolean }) => ({
  authorization: `Bearer ${createGrant({ key: GRANT_KEY, issuer: 'app', audience: 'geo-sfu', roomId: 'perm', participantId, ...(permissions ? { permissions } : {}), ttlSeconds: 60, nowMs: Date.now() })}`,
});
const permOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { perm?: unknown }).perm;

describe('permissions at /allocate', () => {
  it('API key: the body decides (publishData defaults to publish); without it, no restriction', async () => {
    const viewer = await allocate(router.url, { roomId: 'perm', participantId: 'viewer', latencies: US_WEST, permissions: { publish: false, subscribe: true } }, apiKey());
    expect(viewer.status).toBe(200);
    expect(permOf(viewer.body.token)).toEqual({ publish: false, subscribe: true, publishData: false });
    const dataBot = await allocate(router.url, { roomId: 'perm', participantId: 'bot', latencies: US_WEST, permissions: { publish: false, subscribe: false, publishData: true } }, apiKey());
    expect(permOf(dataBot.body.token)).toEqual({ publish: false, subscribe: false, publishData: true });
    const plain = await allocate(router.url, { roomId: 'perm', participantId: 'plain', latencies: US_WEST }, apiKey());
    expect(plain.status).toBe(200);
    expect(permOf(plain.body.token)).toBeUndefined();
    const bad = await allocate(router.url, { roomId: 'perm', participantId: 'bad', latencies: US_WEST, permissions: { publish: 'yes' } }, apiKey());
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toMatch(/permissions/);
    const unknown = await allocate(router.url, { roomId: 'perm', participantId: 'bad', latencies: US_WEST, permissions: { admin: true } }, apiKey());
    expect(unknown.status).toBe(400);
  });

  it('grant: its permissions; the body may narrow them, never widen (403 naming the field)', async () => {
    const fromGrant = await allocate(router.url, { roomId: 'perm', participantId: 'g1', latencies: US_WEST }, grant('g1', { publish: false, subscribe: true }));
    expect(fromGrant.status).toBe(200);
    expect(permOf(fromGrant.body.token)).toEqual({ publish: false, subscribe: true, publishData: false });
    const narrowed = await allocate(router.url, { roomId: 'perm', participantId: 'g2', latencies: US_WEST, permissions: { publish: false, subscribe: true } }, grant('g2'));
    expect(permOf(narrowed.body.token)).toEqual({ publish: false, subscribe: true, publishData: false });
    const widened = await allocate(router.url, { roomId: 'perm', participantId: 'g3', latencies: US_WEST, permissions: { publish: true, subscribe: true } }, grant('g3', { publish: false, subscribe: true }));
    console.log(`grant {publish:false} asking for publish: ${widened.status} ${JSON.stringify(widened.body.error)}`);
    expect(widened.status).toBe(403);
    expect(widened.body.error).toMatchObject({ code: 'FORBIDDEN', field: 'permissions.publish' });
    const widenedData = await allocate(router.url, { roomId: 'perm', participantId: 'g4', latencies: US_WEST, permissions: { publish: true, subscribe: true, publishData: true } }, grant('g4', { publishData: false }));
    expect(widenedData.body.error).toMatchObject({ code: 'FORBIDDEN', field: 'permissions.publishData' });
    // Nothing was allocated for the refused calls.
    const state = await router.app.rooms.getRoom('perm');
    expect(state?.participants.map((p) => p.participantId).filter((id) => id.startsWith('g')).sort()).toEqual(['g1', 'g2']);
    // A grant made before publishData existed (perm without it) keeps working: publishData = publish.
    const legacy = await allocate(router.url, { roomId: 'perm', participantId: 'g5', latencies: US_WEST }, grant('g5', { publish: true, subscribe: false }));
    expect(permOf(legacy.body.token)).toEqual({ publish: true, subscribe: false, publishData: true });
  });
});
