import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signedCall } from '../../shared/signed-http.ts';
import { type FakeRouter, startFakeRouter } from './fake-router.ts';
import { ADMIN_TOKEN, Agents, CLUSTER_SECRET, agentConfig, getJson, postJson, waitFor } from './helpers.ts';

let router: FakeRouter;
const agents = new Agents();
beforeEach(async () => {
  router = await startFakeRouter({ secret: CLUSTER_SECRET });
});
afterEach(async () => {
  await agents.closeAll();
  await router.close();
});

const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function startReadyAgent() {
  const agent = await agents.start(agentConfig(router.url, { agentId: 'west-1' }));
  await waitFor('readiness', () => agent.controller.ready);
  return agent;
}

describe('public routes', () => {
  it('GET /probe answers 204 with no body, never cached', async () => {
    const { url } = await startReadyAgent();
    const res = await getJson(`${url}/probe`);
    expect(res).toMatchObject({ statusCode: 204, body: null, headers: { 'cache-control': 'no-store', 'access-control-allow-origin': '*' } });
  });

  it('healthz, readyz, status, metrics and unknown routes', async () => {
    const { url } = await startReadyAgent();
    expect(await getJson(`${url}/healthz`)).toMatchObject({ statusCode: 200, body: { status: 'ok' } });
    expect(await getJson(`${url}/readyz`)).toMatchObject({ statusCode: 200, body: { status: 'ready' } });
    const status = await getJson(`${url}/status`);
    expect(status.statusCode).toBe(200);
    expect(status.body).toMatchObject({
      nodeId: 'west-1', region: 'us-west', publicUrl: url, routerUrl: router.url, registered: true, draining: false, cordoned: false,
      maxParticipants: 100, capacityOverride: null, peers: [],
      load: { participants: 0, rooms: 0 },
      heartbeat: { failures: 0, consecutiveFailures: 0 },
    });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    for (const name of ['participants', 'rooms', 'cpu_load', 'memory_load', 'max_participants', 'registered', 'draining', 'cordoned', 'heartbeats_total', 'heartbeat_failures_total', 'process_heap_after_gc_bytes', 'process_heap_total_bytes', 'process_external_memory_bytes']) {
      expect(text).toMatch(new RegExp(`^geo_sfu_agent_${name}\\{node_id="west-1",region="us-west"\\} [\\d.]+$`, 'm'));
    }
    // What keeps the event loop alive, by type (bench/soak.ts watches sockets and the total): the HTTP server at least.
    expect(text).toMatch(/^geo_sfu_agent_process_active_resources\{type="TCPServerWrap",node_id="west-1",region="us-west"\} [1-9]\d*$/m);
    expect(await getJson(`${url}/nope`)).toMatchObject({ statusCode: 404, body: { error: { code: 'NOT_FOUND', message: 'no route GET /nope' } } });
  });
});

describe('admin routes', () => {
  it('refuse callers without credentials (401 before any validation) and change nothing', async () => {
    const { url, controller } = await startReadyAgent();
    const attempts = [
      await postJson(`${url}/admin/cordon`, { cordoned: true }),
      await postJson(`${url}/admin/cordon`, { cordoned: 'not even valid' }),
      await postJson(`${url}/admin/capacity`, { maxParticipants: 5 }),
      await postJson(`${url}/admin/drain`, undefined),
      await postJson(`${url}/admin/cordon`, { cordoned: true }, { authorization: 'Bearer wrong-token' }),
      await postJson(`${url}/admin/cordon`, { cordoned: true }, { authorization: `Basic ${ADMIN_TOKEN}` }),
    ];
    for (const res of attempts) {
      expect(res.statusCode).toBe(401);
      expect(res.body).toMatchObject({ error: { code: expect.stringMatching(/^(UNAUTHORIZED|BAD_ADMIN_TOKEN)$/) } });
    }
    const forged = await signedCall({ secret: 'f'.repeat(48), baseUrl: url, method: 'POST', path: '/admin/cordon', body: { cordoned: true }, timeoutMs: 1_000 });
    expect(forged).toMatchObject({ statusCode: 401, body: { error: { code: 'SIGNATURE_BAD_SIGNATURE' } } });
    expect(controller.status()).toMatchObject({ cordoned: false, draining: false, capacityOverride: null, maxParticipants: 100 });
    expect((await getJson(`${url}/readyz`)).statusCode).toBe(200);
  });

  it('validate input: 400 naming the field, nothing changed', async () => {
    const { url, controller } = await startReadyAgent();
    const cases: Array<[string, unknown, string]> = [
      ['/admin/cordon', { cordoned: 'yes' }, 'cordoned'],
      ['/admin/cordon', { cordoned: 1 }, 'cordoned'],
      ['/admin/cordon', {}, 'cordoned'],
      ['/admin/cordon', { cordoned: true, force: true }, 'force'],
      ['/admin/cordon', '{"cordoned": tru', 'body'],
      ['/admin/cordon', undefined, 'body'],
      ['/admin/capacity', { maxParticipants: 0 }, 'maxParticipants'],
      ['/admin/capacity', { maxParticipants: 2.5 }, 'maxParticipants'],
      ['/admin/capacity', { maxParticipants: '10' }, 'maxParticipants'],
      ['/admin/capacity', { maxParticipants: 100_001 }, 'maxParticipants'],
      ['/admin/capacity', {}, 'maxParticipants'],
    ];
    for (const [path, body, field] of cases) {
      const res = await postJson(`${url}${path}`, body, bearer);
      expect({ path, body, statusCode: res.statusCode }).toEqual({ path, body, statusCode: 400 });
      expect(res.body).toMatchObject({ error: { code: 'BAD_REQUEST', field, message: expect.any(String) } });
    }
    expect(controller.status()).toMatchObject({ cordoned: false, draining: false, capacityOverride: null, maxParticipants: 100 });
  });

  it('cordon with the admin token, uncordon with a signed request; heartbeats carry it', async () => {
    const { url } = await startReadyAgent();
    const cordon = await postJson(`${url}/admin/cordon`, { cordoned: true }, bearer);
    expect(cordon).toMatchObject({ statusCode: 200, body: { cordoned: true } });
    await waitFor('a cordoned heartbeat', () => router.heartbeats.at(-1)?.cordoned === true);
    // Cordoned nodes keep their rooms and stay ready; only placement avoids them.
    expect((await getJson(`${url}/readyz`)).statusCode).toBe(200);
    const uncordon = await signedCall({ secret: CLUSTER_SECRET, baseUrl: url, method: 'POST', path: '/admin/cordon', body: { cordoned: false }, timeoutMs: 1_000 });
    expect(uncordon).toMatchObject({ statusCode: 200, body: { cordoned: false } });
    await waitFor('an uncordoned heartbeat', () => router.heartbeats.at(-1)?.cordoned === false);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^geo_sfu_agent_cordoned\{[^}]*\} 0$/m);
  });

  it('capacity override is reported in heartbeats; null goes back to the configuration', async () => {
    const { url } = await startReadyAgent();
    expect(await postJson(`${url}/admin/capacity`, { maxParticipants: 7 }, bearer)).toMatchObject({
      statusCode: 200, body: { maxParticipants: 7, capacityOverride: 7 },
    });
    await waitFor('heartbeat with capacity 7', () => router.heartbeats.at(-1)?.maxParticipants === 7);
    expect(await postJson(`${url}/admin/capacity`, { maxParticipants: null }, bearer)).toMatchObject({
      statusCode: 200, body: { maxParticipants: 100, capacityOverride: null },
    });
    await waitFor('heartbeat with capacity 100', () => router.heartbeats.at(-1)?.maxParticipants === 100);
  });
});
