/**
 * Issue 14, row 8: what production mode (GEO_SFU_PRODUCTION=true) exposes. `GET /rooms/:id` needs
 * the admin token or a grant for that room (the CLI's `rooms` command sends the admin token), an
 * agent's `/status` needs the admin token, metrics may be served on listeners of their own
 * (GEO_SFU_ROUTER_METRICS_PORT, GEO_SFU_AGENT_METRICS_PORT), and `npm start` prints no secret it
 * did not generate, saying which it generated.
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, expect, it } from 'vitest';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { createGrant } from '../../shared/tokens.ts';
import { ADMIN_TOKEN, agentConfig, Agents, freePort } from '../agent/helpers.ts';
import { ROOT, runCli } from '../cli/helpers.ts';
import { allocate } from '../utils/http.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const GRANT_KEY = { kid: 'app-1', secret: 'g'.repeat(40) };
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
const agents = new Agents();
afterEach(async () => {
  await agents.closeAll();
  await nodes?.close();
  await router?.close();
  nodes = null;
  router = null;
});

async function world(overrides: Partial<GeoSfuConfig>): Promise<RunningRouter> {
  router = await startRouter(testConfig('memory', { grantKeys: [GRANT_KEY], grantIssuer: 'my-app', ...overrides }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await router.app.registry.refresh();
  const placed = await allocate(router.url, { roomId: 'r1', participantId: 'alice' }, { authorization: `Bearer ${router.config.apiKey}` });
  expect(placed.status).toBe(200);
  return router;
}

const grant = (roomId: string, participantId = 'someone') =>
  createGrant({ key: GRANT_KEY, issuer: 'my-app', audience: 'geo-sfu', roomId, participantId, ttlSeconds: 60, nowMs: Date.now() });

async function status(url: string, token?: string): Promise<number> {
  const res = await request(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  await res.body.text();
  return res.statusCode;
}

it('GET /rooms/:id needs the admin token or a grant for that room in production mode (public otherwise)', async () => {
  const r = await world({ production: true, requireAuth: true });
  const room = `${r.url}/rooms/r1`;
  const answers = {
    none: await status(room),
    wrongToken: await status(room, 'not-a-credential'),
    apiKey: await status(room, r.config.apiKey),
    grantOtherRoom: await status(room, grant('r2')),
    grantThisRoom: await status(room, grant('r1')),
    admin: await status(room, r.config.adminToken),
  };
  console.log('production GET /rooms/r1:', JSON.stringify(answers));
  expect(answers).toEqual({ none: 401, wrongToken: 401, apiKey: 401, grantOtherRoom: 403, grantThisRoom: 200, admin: 200 });
  // The CLI's rooms command sends GEO_SFU_ADMIN_TOKEN.
  const withToken = await runCli(['rooms', 'r1', '--router', r.url], { GEO_SFU_ADMIN_TOKEN: r.config.adminToken });
  expect([withToken.code, withToken.stdout]).toEqual([0, expect.stringContaining('Room r1')]);
  const without = await runCli(['rooms', 'r1', '--router', r.url]);
  expect(without.code).not.toBe(0);
  await router!.close();
  await nodes!.close();
  const dev = await world({});
  expect(await status(`${dev.url}/rooms/r1`)).toBe(200);
});

it("an agent's /status needs the admin token in production mode; /probe and /healthz stay public", async () => {
  const r = await world({});
  const prod = await agents.start(agentConfig(r.url, { agentRegion: 'eu-west', agentId: 'eu-west-7', production: true }));
  const dev = await agents.start(agentConfig(r.url, { agentRegion: 'eu-west', agentId: 'eu-west-8' }));
  const answers = {
    prodStatus: await status(`${prod.url}/status`),
    prodStatusWrong: await status(`${prod.url}/status`, 'wrong'),
    prodStatusAdmin: await status(`${prod.url}/status`, ADMIN_TOKEN),
    prodProbe: await status(`${prod.url}/probe`),
    prodHealthz: await status(`${prod.url}/healthz`),
    devStatus: await status(`${dev.url}/status`),
  };
  console.log('agent answers:', JSON.stringify(answers));
  expect(answers).toEqual({ prodStatus: 401, prodStatusWrong: 401, prodStatusAdmin: 200, prodProbe: 204, prodHealthz: 200, devStatus: 200 });
});

it('metrics can be served on listeners of their own (router and agent), and then only there', async () => {
  const r = await world({ routerMetricsPort: '0' });
  const agent = await agents.start(agentConfig(r.url, { agentRegion: 'eu-west', agentMetricsPort: '0' }));
  const routerMetrics = r.app.metricsServer?.address() as AddressInfo | null | undefined;
  const agentMetrics = agent.app.metricsServer?.address() as AddressInfo | null | undefined;
  expect(routerMetrics?.port).toBeGreaterThan(0);
  expect(agentMetrics?.port).toBeGreaterThan(0);
  const text = async (url: string) => {
    const res = await request(url);
    return { status: res.statusCode, body: await res.body.text() };
  };
  const fromRouter = await text(`http://127.0.0.1:${routerMetrics!.port}/metrics`);
  const fromAgent = await text(`http://127.0.0.1:${agentMetrics!.port}/metrics`);
  expect(fromRouter.status).toBe(200);
  expect(fromRouter.body).toContain('geo_sfu_');
  expect(fromAgent.status).toBe(200);
  expect(fromAgent.body).toContain('geo_sfu_agent_participants');
  // Not on the main ports any more, and nothing but /metrics on the metrics ports.
  expect(await status(`${r.url}/metrics`)).toBe(404);
  expect(await status(`${agent.url}/metrics`)).toBe(404);
  expect(await status(`http://127.0.0.1:${routerMetrics!.port}/regions`)).toBe(404);
  expect(await status(`http://127.0.0.1:${agentMetrics!.port}/status`)).toBe(404);
});

/** Runs `npm start` (infra/embedded/main.ts) with `env` until it printed its banner; returns the output. */
async function startBanner(env: Record<string, string>): Promise<string> {
  const routerPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/embedded/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      GEO_SFU_ROUTER_PORT: String(routerPort),
      GEO_SFU_REGIONS: JSON.stringify([{ id: 'eu-west', displayName: 'EU West', lat: 53.3, lon: -6.3 }]),
      GEO_SFU_SFU_WORKERS: '1',
      GEO_SFU_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  try {
    const deadline = performance.now() + 60_000;
    while (!out.includes('try:') && child.exitCode === null && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return out;
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

it('npm start prints only the secrets it generated, and says which it generated', async () => {
  const secrets = {
    GEO_SFU_CLUSTER_SECRET: 'cluster-secret-from-the-environment-0123456789',
    GEO_SFU_TOKEN_SECRETS: 'env1:token-secret-from-the-environment-0123456789',
    GEO_SFU_ADMIN_TOKEN: 'admin-token-from-the-environment-0123456789',
    GEO_SFU_API_KEY: 'api-key-from-the-environment-0123456789',
    GEO_SFU_GRANT_SECRETS: 'app1:grant-secret-from-the-environment-0123456789',
  };
  const production = await startBanner({ ...secrets, GEO_SFU_PRODUCTION: 'true', GEO_SFU_DEMO_GRANTS: 'false' });
  console.log(production);
  expect(production).toContain('try:');
  for (const value of Object.values(secrets)) expect(production).not.toContain(value);

  // Development: the admin token from the environment stays hidden, the API key it generated is shown as generated.
  const dev = await startBanner({ GEO_SFU_ADMIN_TOKEN: secrets.GEO_SFU_ADMIN_TOKEN });
  expect(dev).toContain('try:');
  expect(dev).not.toContain(secrets.GEO_SFU_ADMIN_TOKEN);
  expect(dev).toMatch(/GEO_SFU_API_KEY=\S{20,}\s+\(generated/);
  expect(dev).toMatch(/GEO_SFU_ADMIN_TOKEN\s+set in the environment/);
}, 150_000);
