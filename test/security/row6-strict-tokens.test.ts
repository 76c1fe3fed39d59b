/**
 * Issue 14, row 6: a token or signature is valid only in its one canonical base64url spelling
 * (junk characters and non-canonical trailing bits refused), and the /allocate limiter keys on
 * the verified identity (key id + subject), so neither a junk-suffixed nor a freshly minted
 * grant of the same participant is a fresh bucket.
 */
import { afterEach, expect, it } from 'vitest';
import { ResumeCredentials } from '../../region-agent/signaling/credentials.ts';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { NonceCache, SIGNATURE_HEADER, signRequest, verifySignedRequest } from '../../shared/signed-request.ts';
import { createGrant, signJoinToken, signRelayToken, verifyJoinToken, verifyRelayToken } from '../../shared/tokens.ts';
import { connect, SfuAgents, signalingConfig, startSignalingRouter, token } from '../signaling/helpers.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const GRANT_KEY = { kid: 'app-1', secret: 'g'.repeat(40) };
const TOKEN_KEYS = [{ kid: 'k1', secret: 's'.repeat(40) }];
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
  nodes = null;
  router = null;
});

async function world(overrides: Partial<GeoSfuConfig> = {}) {
  router = await startRouter(testConfig('memory', { requireAuth: true, grantKeys: [GRANT_KEY], grantIssuer: 'my-app', ...overrides }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await router.app.registry.refresh();
  return router;
}

const grant = (o: Partial<Parameters<typeof createGrant>[0]> = {}) =>
  createGrant({ key: GRANT_KEY, issuer: 'my-app', audience: 'geo-sfu', roomId: 'r1', participantId: 'alice', ttlSeconds: 60, nowMs: Date.now(), ...o });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The same bytes, spelled differently: the last character's unused low bit flipped (every value here ends in a 32-byte HMAC). */
function nonCanonicalTail(b64url: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(b64url.at(-1)!);
  const twin = b64url.slice(0, -1) + alphabet[last ^ 1];
  const lastPart = (s: string) => Buffer.from(s.slice(s.lastIndexOf('.') + 1), 'base64url');
  expect(lastPart(twin).equals(lastPart(b64url))).toBe(true);
  return twin;
}

it('/allocate refuses a grant with junk or non-canonical bits appended to its signature', async () => {
  const r = await world();
  const body = { roomId: 'r1', participantId: 'alice' };
  const g = grant();
  expect((await allocate(r.url, body, bearer(g))).status).toBe(200);
  const variants = [`${g}!!`, `${g}!!!`, `${g}=`, nonCanonicalTail(g)];
  const answers = [];
  for (const v of variants) {
    const res = await allocate(r.url, body, bearer(v));
    answers.push([res.status, res.body.error?.code]);
  }
  console.log('junk-suffixed grants:', JSON.stringify(answers));
  expect(answers).toEqual(variants.map(() => [401, 'BAD_GRANT']));
});

it('join tokens, P2P relay tokens, resume credentials and request signatures have one spelling', () => {
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const join = signJoinToken(TOKEN_KEYS[0]!, { aid: 'a1', room: 'r1', sub: 'alice', region: 'us-west', node: 'us-west-1', iat, exp: iat + 60 });
  expect(verifyJoinToken(TOKEN_KEYS, join, now).sub).toBe('alice');
  for (const bad of [`${join}!!`, `${join}!!!`, nonCanonicalTail(join), join.replace('.', '.!')]) {
    expect(() => verifyJoinToken(TOKEN_KEYS, bad, now), bad.slice(-6)).toThrow();
  }

  const relay = signRelayToken(TOKEN_KEYS[0]!, { aid: 'a1', room: 'r1', sub: 'alice', iat, exp: iat + 60 });
  expect(verifyRelayToken(TOKEN_KEYS, relay, now).sub).toBe('alice');
  for (const bad of [`${relay}!!`, nonCanonicalTail(relay)]) expect(() => verifyRelayToken(TOKEN_KEYS, bad, now)).toThrow();

  const resume = new ResumeCredentials();
  const credential = resume.sign({ room: 'r1', peer: 'alice', node: 'us-west-1', sid: 's1' });
  expect(resume.verify(credential)?.peer).toBe('alice');
  for (const bad of [`${credential}!!`, nonCanonicalTail(credential)]) expect(resume.verify(bad)).toBeNull();

  const secret = 'c'.repeat(40);
  const input = { method: 'POST', path: '/v1/nodes/heartbeat', body: '{}' };
  for (const mangle of [(s: string) => `${s}!!`, nonCanonicalTail]) {
    const headers = signRequest(secret, input, now);
    headers[SIGNATURE_HEADER] = mangle(headers[SIGNATURE_HEADER]!);
    expect(verifySignedRequest(secret, input, headers, now, 30_000, new NonceCache(30_000))).toBe('BAD_SIGNATURE');
  }
});

it('the /allocate limiter keys on the verified grant identity (key id + subject), not on the token string', async () => {
  const r = await world({ rateLimitPerMinute: 3 });
  const body = { roomId: 'r1', participantId: 'alice' };
  const first = grant();
  // Another grant for the same participant (other lifetime, so another string).
  const second = grant({ ttlSeconds: 120 });
  expect(second).not.toBe(first);
  const statuses: number[] = [];
  for (const token of [first, first, second, second, `${first}!!!`]) statuses.push((await allocate(r.url, body, bearer(token))).status);
  console.log('statuses (limit 3 per minute):', statuses.join(' '));
  expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
  // The fourth call is the identity's fourth, whatever string carried it; the junk-suffixed one never gets through.
  expect(statuses[3]).toBe(429);
  expect([401, 429]).toContain(statuses[4]);
  // Another participant has a budget of its own.
  expect((await allocate(r.url, { roomId: 'r1', participantId: 'bob' }, bearer(grant({ participantId: 'bob' })))).status).toBe(200);
});

it('a region agent refuses a join token with junk appended at connect', async () => {
  const fakeRouter = await startSignalingRouter(CLUSTER_SECRET);
  const agents = new SfuAgents();
  try {
    const agent = await agents.start(signalingConfig(fakeRouter.url));
    const answers = [];
    for (const suffix of ['!!', '!!!']) {
      const r = await connect(agent.url, { token: `${token().token}${suffix}` });
      r.socket.close();
      answers.push(r.error?.data?.code ?? 'welcome');
    }
    console.log('agent, junk-suffixed join tokens:', answers.join(' '));
    for (const code of answers) expect(code).toMatch(/^TOKEN_(MALFORMED|BAD_SIGNATURE)$/);
    const good = await connect(agent.url, { token: token().token });
    good.socket.close();
    expect(good.welcome).toBeDefined();
  } finally {
    await agents.closeAll();
    await fakeRouter.close();
  }
});
