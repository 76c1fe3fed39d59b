import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterEach, expect, it } from 'vitest';
import { type GeoSfuConfig, loadConfig } from '../../shared/config/index.ts';
import { hashCredential } from '../../shared/credentials.ts';
import { createGrant, verifyJoinToken } from '../../shared/tokens.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const GRANT_KEY = { kid: 'app-1', secret: 'g'.repeat(40) };
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
});

async function world(overrides: Partial<GeoSfuConfig>) {
  router = await startRouter(testConfig('memory', { requireAuth: true, grantKeys: [GRANT_KEY], grantIssuer: 'my-app', ...overrides }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await router.app.registry.refresh();
  return router;
}

const grant = (o: Partial<Parameters<typeof createGrant>[0]> = {}) =>
  createGrant({ key: GRANT_KEY, issuer: 'my-app', audience: 'geo-sfu', roomId: 'r1', participantId: 'alice', ttlSeconds: 60, nowMs: Date.now(), permissions: { publish: false }, ...o });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const body = { roomId: 'r1', participantId: 'alice' };

it('/allocate takes the API key or a grant for that room and participant, and refuses the rest', async () => {
  const r = await world({});
  expect((await allocate(r.url, body)).status).toBe(401);
  expect((await allocate(r.url, body, bearer('not-the-key'))).status).toBe(401);
  expect((await allocate(r.url, body, bearer(r.config.apiKey))).status).toBe(200);

  const ok = await allocate(r.url, body, bearer(grant()));
  expect(ok.status).toBe(200);
  // The grant's permissions travel in the join token, for the SFU to enforce (publishData made explicit: the grant's publish).
  expect(verifyJoinToken(r.config.tokenKeys, ok.body.token, Date.now()).perm).toEqual({ publish: false, subscribe: true, publishData: false });

  const refused = async (token: string) => {
    const res = await allocate(r.url, body, bearer(token));
    return [res.status, res.body.error?.code];
  };
  expect(await refused(grant({ roomId: 'other' }))).toEqual([403, 'FORBIDDEN']);
  expect(await refused(grant({ participantId: 'mallory' }))).toEqual([403, 'FORBIDDEN']);
  expect(await refused(grant({ nowMs: Date.now() - 120_000 }))).toEqual([401, 'BAD_GRANT']);
  expect(await refused(grant({ issuer: 'someone-else' }))).toEqual([401, 'BAD_GRANT']);
  expect(await refused(grant({ audience: 'another-service' }))).toEqual([401, 'BAD_GRANT']);
  expect(await refused(grant({ key: { kid: 'app-1', secret: 'x'.repeat(40) } }))).toEqual([401, 'BAD_GRANT']);
  expect(await refused(grant({ key: { kid: 'unknown', secret: 'g'.repeat(40) } }))).toEqual([401, 'BAD_GRANT']);
  // None of the refusals placed anyone but alice.
  expect((await r.app.rooms.getRoom('r1'))?.participants.map((p) => p.participantId)).toEqual(['alice']);
});

it('only API-key callers may pass clientIp', async () => {
  const r = await world({});
  const londonIp = '81.2.69.160';
  const withKey = await allocate(r.url, { ...body, clientIp: londonIp }, bearer(r.config.apiKey));
  expect(withKey.body.rttSource).toBe('geoip');
  const withGrant = await allocate(r.url, { ...body, clientIp: londonIp }, bearer(grant()));
  expect(withGrant.body.rttSource).toBe('default');
});

it('rate-limits /allocate per credential and per client address', async () => {
  const r = await world({ requireAuth: false, rateLimitPerMinute: 5 });
  const statuses = [];
  for (let i = 0; i < 7; i++) statuses.push((await allocate(r.url, { roomId: 'rl', participantId: `p${i}` })).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  const limited = await allocate(r.url, { roomId: 'rl', participantId: 'px' });
  expect(limited.body.error?.code).toBe('RATE_LIMITED');
  // The API key has a budget of its own.
  expect((await allocate(r.url, { roomId: 'rl', participantId: 'server' }, bearer(r.config.apiKey))).status).toBe(200);
  expect((await r.app.rooms.getRoom('rl'))?.participants).toHaveLength(6);
});

it("the API key's budget is its own size (an application's servers allocate for every participant); 0 = none", async () => {
  const limited = await world({ rateLimitPerMinute: 2, apiKeyRateLimitPerMinute: 4 });
  const withKey = async (url: string, n: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) statuses.push((await allocate(url, { roomId: 'srv', participantId: `s${i}` }, bearer(limited.config.apiKey))).status);
    return statuses;
  };
  expect(await withKey(limited.url, 6)).toEqual([200, 200, 200, 200, 429, 429]);
  // A participant's grant still has the small budget.
  const grantStatuses = [];
  for (let i = 0; i < 3; i++) grantStatuses.push((await allocate(limited.url, body, bearer(grant()))).status);
  expect(grantStatuses).toEqual([200, 200, 429]);
  await nodes?.close();
  await router?.close();
  const unlimited = await world({ rateLimitPerMinute: 2, apiKeyRateLimitPerMinute: 0 });
  expect(await withKey(unlimited.url, 6)).toEqual([200, 200, 200, 200, 200, 200]);
});

it('sends security headers and CORS only for configured origins', async () => {
  const r = await world({ corsOrigins: 'https://app.example' });
  const res = await request(`${r.url}/regions`, { headers: { origin: 'https://app.example' } });
  await res.body.dump();
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
  const other = await request(`${r.url}/regions`, { headers: { origin: 'https://evil.example' } });
  await other.body.dump();
  expect(other.headers['access-control-allow-origin']).toBeUndefined();
});

it('serves HTTPS when given a certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'geo-sfu-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  router = await startRouter(testConfig('memory', { tlsCertFile: join(dir, 'cert.pem'), tlsKeyFile: join(dir, 'key.pem') }));
  const url = router.url.replace('http:', 'https:');
  const res = await request(`${url}/healthz`, { dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) });
  expect(res.statusCode).toBe(200);
  expect(await res.body.json()).toEqual({ ok: true });
});

it('keeps only hashes of the API key and admin token; an operator may configure the hashes instead', async () => {
  const apiKey = 'server-side-key-0123456789abcdefghij';
  const adminToken = 'admin-token-0123456789abcdefghijklmn';
  const listRooms = async (url: string, token: string) => {
    const res = await request(`${url}/rooms`, { headers: bearer(token) });
    await res.body.dump();
    return res.statusCode;
  };
  const hashed = await world({ apiKey: '', adminToken: '', apiKeyHashes: `${hashCredential('an-older-key')},${hashCredential(apiKey)}`, adminTokenHash: hashCredential(adminToken) });
  expect((await allocate(hashed.url, body, bearer(apiKey))).status).toBe(200);
  expect((await allocate(hashed.url, body, bearer(hashCredential(apiKey)))).status).toBe(401);
  expect(await listRooms(hashed.url, adminToken)).toBe(200);
  expect(await listRooms(hashed.url, hashCredential(adminToken))).toBe(401);
  await nodes?.close();
  await router?.close();

  // Given the plain secrets, the router's configuration keeps neither; they still work.
  const plain = await world({ apiKey, adminToken });
  const kept = JSON.stringify(plain.app.config);
  expect([kept.includes(apiKey), kept.includes(adminToken)]).toEqual([false, false]);
  expect((await allocate(plain.url, body, bearer(apiKey))).status).toBe(200);
  expect(await listRooms(plain.url, adminToken)).toBe(200);
  expect(await listRooms(plain.url, apiKey)).toBe(401);
});

it('refuses a configured hash that is not a SHA-256 hex digest, naming the variable', () => {
  expect(() => loadConfig({ GEO_SFU_API_KEY_HASHES: 'not-a-hash' })).toThrow(/GEO_SFU_API_KEY_HASHES/);
  expect(() => loadConfig({ GEO_SFU_ADMIN_TOKEN_HASH: hashCredential('x').toUpperCase() })).toThrow(/GEO_SFU_ADMIN_TOKEN_HASH/);
  expect(loadConfig({ GEO_SFU_API_KEY_HASHES: `${hashCredential('a')},${hashCredential('b')}` }).apiKeyHashes).toContain(',');
});
