import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, expect, it } from 'vitest';
import { createGrant } from '../../shared/tokens.ts';
import { connect, ok } from '../signaling/helpers.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace } from '../utils/router-harness.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';
import { type ServiceProcess, spawnAgent, spawnRouter } from '../utils/service-process.ts';

/**
 * A router and an agent as processes, logging at `trace` (everything they can log), given known
 * secrets; allocations, joins, resumes and refusals (wrong API key, forged grant, bad admin token,
 * forged join token, unsigned control-plane call) are driven through them, and none of the secrets,
 * nor a full join token, resume credential or grant, may appear in anything they print.
 */
const secret = (label: string) => `${label}-${randomBytes(24).toString('hex')}`;
const SECRETS = {
  apiKey: secret('apikey'),
  adminToken: secret('admintoken'),
  clusterSecret: secret('cluster'),
  tokenSecret: secret('tokensecret'),
  oldTokenSecret: secret('oldtokensecret'),
  grantSecret: secret('grantsecret'),
  turnSecret: secret('turnsecret'),
  appWebhookSecret: secret('appwebhooksecret'),
};
const services: ServiceProcess[] = [];
let redisProxy: TcpFaultProxy | null = null;
afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await redisProxy?.close();
  await cleanupNamespaces();
});

/** Everything a service prints from now on (its start-up lines are in `output`). */
function capture(service: ServiceProcess): string[] {
  const lines = [...service.output];
  const onData = (chunk: Buffer) => lines.push(chunk.toString());
  service.child.stdout!.on('data', onData);
  service.child.stderr!.on('data', onData);
  return lines;
}

it('no secret, join token, resume credential or grant appears in the router’s or the agent’s logs', async () => {
  const ns = runNamespace();
  // Redis through the fault proxy, so that a failing request (logged with its error) is part of the run.
  const redisTarget = new URL(REDIS_URL);
  redisProxy = await TcpFaultProxy.start(redisTarget.hostname, Number(redisTarget.port));
  const viaProxy = new URL(redisTarget);
  viaProxy.port = String(redisProxy.port);
  const common = {
    GEO_SFU_LOG_LEVEL: 'trace',
    GEO_SFU_CLUSTER_SECRET: SECRETS.clusterSecret,
    GEO_SFU_TOKEN_SECRETS: `k2:${SECRETS.tokenSecret},k1:${SECRETS.oldTokenSecret}`,
    GEO_SFU_ADMIN_TOKEN: SECRETS.adminToken,
    GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
  };
  const router = await spawnRouter({
    ...common,
    REDIS_URL: viaProxy.href,
    GEO_SFU_REDIS_TIMEOUT_MS: '500',
    DATABASE_URL,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_PG_SCHEMA: ns.pgSchema,
    GEO_SFU_API_KEY: SECRETS.apiKey,
    GEO_SFU_GRANT_SECRETS: `g1:${SECRETS.grantSecret}`,
    GEO_SFU_REQUIRE_AUTH: 'true',
    GEO_SFU_TURN_SECRET: SECRETS.turnSecret,
    GEO_SFU_TURN_URLS: JSON.stringify({ '*': ['turn:127.0.0.1:3478'] }),
    // Application webhooks to a port nobody listens on: every delivery fails, and is logged.
    GEO_SFU_APP_WEBHOOK_URLS: 'http://127.0.0.1:9/hooks',
    GEO_SFU_APP_WEBHOOK_SECRETS: `app1:${SECRETS.appWebhookSecret}`,
    GEO_SFU_APP_WEBHOOK_MAX_ATTEMPTS: '2',
    GEO_SFU_APP_WEBHOOK_RETRY_MS: '10',
  });
  services.push(router);
  const routerLog = capture(router);
  const agent = await spawnAgent({ ...common, GEO_SFU_AGENT_REGION: 'us-west', GEO_SFU_AGENT_ID: 'us-west-secrets', GEO_SFU_ROUTER_URL: router.url });
  services.push(agent);
  const agentLog = capture(agent);
  const leaked: string[] = [];

  const post = async (path: string, body: unknown, headers: Record<string, string>) => {
    const res = await request(`${router.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> & { token?: string; iceServers?: Array<{ credential?: string }> } };
  };
  // The agent registers on its own; wait until the router can place on it.
  let allocated: Awaited<ReturnType<typeof post>> | null = null;
  for (let i = 0; i < 100 && allocated?.status !== 200; i++) {
    allocated = await post('/allocate', { roomId: 'secret-room', participantId: 'alice' }, { 'x-api-key': SECRETS.apiKey });
    if (allocated.status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  expect(allocated?.status).toBe(200);
  const aliceToken = allocated!.body.token!;
  const turnCredential = allocated!.body.iceServers?.find((s) => s.credential)?.credential;
  expect(turnCredential).toEqual(expect.any(String));
  leaked.push(aliceToken, turnCredential!);

  const grant = createGrant({ key: { kid: 'g1', secret: SECRETS.grantSecret }, issuer: 'app', audience: 'geo-sfu', roomId: 'secret-room', participantId: 'bob', ttlSeconds: 60, nowMs: Date.now() });
  const forgedGrant = createGrant({ key: { kid: 'g1', secret: secret('forged') }, issuer: 'app', audience: 'geo-sfu', roomId: 'secret-room', participantId: 'bob', ttlSeconds: 60, nowMs: Date.now() });
  const wrongKey = secret('wrongkey');
  leaked.push(grant, forgedGrant, wrongKey);
  const viaGrant = await post('/allocate', { roomId: 'secret-room', participantId: 'bob' }, { authorization: `Bearer ${grant}` });
  expect(viaGrant.status).toBe(200);
  leaked.push(viaGrant.body.token!);
  const refusals = [
    await post('/allocate', { roomId: 'secret-room', participantId: 'carol' }, { 'x-api-key': wrongKey }),
    await post('/allocate', { roomId: 'secret-room', participantId: 'bob' }, { authorization: `Bearer ${forgedGrant}` }),
    await post('/allocate', { roomId: 'other-room', participantId: 'bob' }, { authorization: `Bearer ${grant}` }),
    await post('/allocate', { roomId: 'secret-room', participantId: 5 }, { 'x-api-key': SECRETS.apiKey }),
    await post('/v1/nodes/deregister', { nodeId: 'x' }, { 'x-geo-sfu-signature': 'forged' }),
  ];
  expect(refusals.map((r) => r.status)).toEqual([401, 401, 403, 400, 401]);
  const admin = async (token: string) => (await request(`${router.url}/rooms`, { headers: { authorization: `Bearer ${token}` } })).statusCode;
  expect(await admin(SECRETS.adminToken)).toBe(200);
  expect(await admin(wrongKey)).toBe(401);
  const agentAdmin = await request(`${agent.url}/admin/cordon`, { method: 'POST', headers: { authorization: `Bearer ${wrongKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ cordoned: false }) });
  expect(agentAdmin.statusCode).toBe(401);
  await agentAdmin.body.dump();

  // Signaling: join with the token, resume with the credential, and a forged and a replayed token.
  const joined = await connect(agent.url, { token: aliceToken });
  expect(joined.welcome).toBeDefined();
  const resume = joined.welcome!.resume as string;
  leaked.push(resume);
  const { rtpCapabilities } = await ok(joined.socket, 'getRouterRtpCapabilities', {});
  await ok(joined.socket, 'join', { rtpCapabilities, displayName: 'Alice' });
  joined.socket.disconnect();
  const resumed = await connect(agent.url, { resume });
  expect(resumed.welcome?.resumed).toBe(true);
  const forgedToken = `${aliceToken.slice(0, -4)}AAAA`;
  expect((await connect(agent.url, { token: forgedToken })).error?.data?.code).toMatch(/^TOKEN_/);
  expect((await connect(agent.url, { token: viaGrant.body.token!, protocolVersion: '9.0' })).error?.data?.code).toBe('PROTOCOL_VERSION');
  resumed.socket.disconnect();
  redisProxy.cut();
  const failing = await post('/allocate', { roomId: 'new-room', participantId: 'dave' }, { 'x-api-key': SECRETS.apiKey });
  expect(failing.status).toBe(503);
  redisProxy.restore();
  await new Promise((r) => setTimeout(r, 1_000));

  const logs = { router: routerLog.join(''), agent: agentLog.join('') };
  console.log(`captured at trace level: router ${logs.router.length} bytes, agent ${logs.agent.length} bytes; ${Object.keys(SECRETS).length} secrets and ${leaked.length} issued credentials looked for`);
  // Enough was logged for the check to mean something: the failed request with its error, the agent's requests, refusals and sessions.
  expect(logs.router).toContain('request failed');
  expect(logs.agent).toContain('signaling connection refused');
  expect(logs.agent).toContain('/admin/cordon');
  const found = Object.entries(logs).flatMap(([who, text]) =>
    [...Object.entries(SECRETS), ...leaked.map((v, i) => [`credential #${i}`, v] as const)].filter(([, value]) => text.includes(value)).map(([name]) => `${who}: ${name}`),
  );
  expect(found).toEqual([]);
}, 90_000);
