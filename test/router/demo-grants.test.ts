import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { demoCsp } from '../../router/routes/dashboard.ts';
import { loadConfig, type GeoSfuConfig } from '../../shared/config/index.ts';
import { ConfigError } from '../../shared/errors.ts';
import { verifyGrant } from '../../shared/tokens.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/** POST /demo/grant (GEO_SFU_DEMO_GRANTS) and the /demo page's CSP. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GRANT_KEY = { kid: 'demo-1', secret: 'd'.repeat(40) };
let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
  nodes = null;
  router = null;
});

async function world(overrides: Partial<GeoSfuConfig>): Promise<RunningRouter> {
  router = await startRouter(testConfig('memory', { grantKeys: [GRANT_KEY], demoGrants: true, ...overrides }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await router.app.registry.refresh();
  return router;
}

const askGrant = async (url: string, body: unknown) => {
  const res = await fetch(`${url}/demo/grant`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { grant: string; expiresAt: string; error?: { code: string; message: string } } };
};

describe('configuration', () => {
  it('is off by default, needs a grant key, and production mode refuses it', () => {
    expect(loadConfig({}).demoGrants).toBe(false);
    expect(() => loadConfig({ GEO_SFU_DEMO_GRANTS: 'true' })).toThrow(/GEO_SFU_DEMO_GRANTS needs a key to sign with: set GEO_SFU_GRANT_SECRETS/);
    const withKey = { GEO_SFU_DEMO_GRANTS: 'true', GEO_SFU_GRANT_SECRETS: `k1:${'g'.repeat(40)}` };
    expect(loadConfig(withKey).demoGrants).toBe(true);
    const production = {
      ...withKey,
      GEO_SFU_PRODUCTION: 'true',
      GEO_SFU_CLUSTER_SECRET: 'c'.repeat(40),
      GEO_SFU_TOKEN_SECRETS: `t1:${'t'.repeat(40)}`,
      GEO_SFU_ADMIN_TOKEN: 'a'.repeat(40),
    };
    let error: unknown;
    try {
      loadConfig(production);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/GEO_SFU_DEMO_GRANTS must be off in production mode/);
    // The same production settings without demo grants start.
    expect(loadConfig({ ...production, GEO_SFU_DEMO_GRANTS: 'false' }).production).toBe(true);
  });
});

describe('POST /demo/grant', () => {
  it('does not exist unless GEO_SFU_DEMO_GRANTS is on', async () => {
    const r = await world({ demoGrants: false });
    const res = await askGrant(r.url, { roomId: 'r1', participantId: 'alice' });
    expect(res.status).toBe(404);
  });

  it('hands out a short-lived grant bound to the room and participant asked for, which /allocate takes', async () => {
    const r = await world({ requireAuth: true, demoGrantTtlS: 45 });
    const before = Date.now();
    const res = await askGrant(r.url, { roomId: 'r1', participantId: 'alice' });
    expect(res.status).toBe(200);
    const claims = verifyGrant([GRANT_KEY], res.body.grant, Date.now(), { audience: 'geo-sfu', room: 'r1', sub: 'alice' });
    expect(claims.exp - claims.iat).toBe(45);
    expect(claims.perm).toEqual({ publish: true, subscribe: true });
    expect(Date.parse(res.body.expiresAt)).toBe(claims.exp * 1000);
    expect(claims.exp * 1000).toBeLessThanOrEqual(before + 46_000);
    // Expired after its lifetime.
    expect(() => verifyGrant([GRANT_KEY], res.body.grant, claims.exp * 1000, { audience: 'geo-sfu', room: 'r1', sub: 'alice' })).toThrow(/expired/);

    const auth = { authorization: `Bearer ${res.body.grant}` };
    const ok = await allocate(r.url, { roomId: 'r1', participantId: 'alice' }, auth);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    // Bound: not for another participant or room.
    expect((await allocate(r.url, { roomId: 'r1', participantId: 'mallory' }, auth)).status).toBe(403);
    expect((await allocate(r.url, { roomId: 'r2', participantId: 'alice' }, auth)).status).toBe(403);
  });

  it('refuses bad input with a 400 naming the field', async () => {
    const r = await world({});
    for (const [body, field] of [
      [{ roomId: 'r1' }, 'participantId'],
      [{ roomId: 'bad room', participantId: 'alice' }, 'roomId'],
      [{ roomId: 'r1', participantId: 'x'.repeat(129) }, 'participantId'],
    ] as const) {
      const res = await askGrant(r.url, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(JSON.stringify(res.body.error)).toContain(field);
    }
    const extra = await askGrant(r.url, { roomId: 'r1', participantId: 'alice', permissions: { admin: true } });
    expect(extra.status).toBe(400);
  });

  it('is rate-limited per client address', async () => {
    const r = await world({ demoGrantsPerMinute: 3 });
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof askGrant>> | null = null;
    for (let i = 0; i < 5; i++) {
      last = await askGrant(r.url, { roomId: 'r1', participantId: `p${i}` });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(last!.body.error?.code).toBe('RATE_LIMITED');
    expect(Number(last!.retryAfter)).toBeGreaterThan(0);
  });
});

describe('GET /demo', () => {
  it("serves the built page with the agents' origins, and only those, in connect-src", async () => {
    if (!existsSync(`${ROOT}web/dist/demo.html`)) execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
    const r = await world({});
    const res = await fetch(`${r.url}/demo?room=r1`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('geo-sfu demo');
    const csp = res.headers.get('content-security-policy')!;
    // The fake node registers its signaling URL on port 1 and its probe URL on a real port.
    const origins = [new URL(nodes!.probeUrl).origin, 'http://127.0.0.1:1'];
    const expected = [...origins, ...origins.map((o) => o.replace('http:', 'ws:'))].sort();
    expect(csp).toContain(`connect-src 'self' ${expected.join(' ')};`);
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
  });

  it('demoCsp adds http(s) origins with their WebSocket twins and ignores anything else', () => {
    const csp = demoCsp([
      { signalingUrl: 'https://sfu.example.com:8443/x', probeUrl: 'https://sfu.example.com:8443/probe' },
      { signalingUrl: 'http://127.0.0.1:9001', probeUrl: 'javascript:alert(1)' },
    ]);
    expect(csp).toContain("connect-src 'self' http://127.0.0.1:9001 https://sfu.example.com:8443 ws://127.0.0.1:9001 wss://sfu.example.com:8443;");
    expect(csp).not.toContain('javascript');
  });
});
