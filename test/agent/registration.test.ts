import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signedCall } from '../../shared/signed-http.ts';
import type { SfuLoad } from '../../region-agent/app.ts';
import { type FakeRouter, startFakeRouter } from './fake-router.ts';
import { Agents, CLUSTER_SECRET, agentConfig, freePort, getJson, median, postJson, waitFor } from './helpers.ts';

let router: FakeRouter;
const agents = new Agents();
beforeEach(async () => {
  router = await startFakeRouter({ secret: CLUSTER_SECRET });
});
afterEach(async () => {
  await agents.closeAll();
  await router.close();
});

describe('registration', () => {
  it('registers with a signed request describing itself, then becomes ready', async () => {
    const { controller, url } = await agents.start(agentConfig(router.url, { agentId: 'west-1', maxParticipantsPerNode: 40 }));
    const registration = await waitFor('registration', () => router.registrations[0]);
    expect(registration).toEqual({
      nodeId: 'west-1',
      region: 'us-west',
      controlUrl: url,
      signalingUrl: url,
      probeUrl: `${url}/probe`,
      maxParticipants: 40,
      version: expect.any(String),
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await waitFor('readiness', () => controller.ready);
    expect((await getJson(`${url}/readyz`)).statusCode).toBe(200);
    expect(router.refused).toEqual([]);
  });

  it('the fake router refuses unsigned and forged calls (so the test above can fail)', async () => {
    const body = { nodeId: 'x', region: 'us-west', controlUrl: 'http://a', signalingUrl: 'http://a', probeUrl: 'http://a/probe', maxParticipants: 1, version: '1' };
    const unsigned = await postJson(`${router.url}/v1/nodes/register`, body);
    expect(unsigned.statusCode).toBe(401);
    const forged = await signedCall({ secret: 'f'.repeat(48), baseUrl: router.url, method: 'POST', path: '/v1/nodes/register', body, timeoutMs: 1_000 });
    expect(forged.statusCode).toBe(401);
    expect(router.refused.map((r) => r.code)).toEqual(['SIGNATURE_MISSING', 'SIGNATURE_BAD_SIGNATURE']);
    expect(router.registrations).toEqual([]);
  });

  it('never becomes ready when the router refuses its signature, and keeps trying', async () => {
    const { url } = await agents.start(agentConfig(router.url, { clusterSecret: 'w'.repeat(48) }));
    await waitFor('two refused registrations', () => router.refused.length >= 2);
    expect(router.registrations).toEqual([]);
    const readyz = await getJson(`${url}/readyz`);
    expect(readyz.statusCode).toBe(503);
    expect(readyz.body).toEqual({ error: { code: 'NOT_READY', message: 'not ready: not registered with the router yet' } });
  });

  it('retries with backoff until the router answers; readiness follows', async () => {
    const port = await freePort();
    const { url, controller } = await agents.start(agentConfig(`http://127.0.0.1:${port}`));
    await new Promise((r) => setTimeout(r, 400));
    expect((await getJson(`${url}/readyz`)).statusCode).toBe(503);
    const late = await startFakeRouter({ secret: CLUSTER_SECRET, port });
    try {
      await waitFor('registration with the late router', () => late.registrations.length === 1, 5_000);
      await waitFor('readiness', () => controller.ready);
      expect((await getJson(`${url}/readyz`)).statusCode).toBe(200);
    } finally {
      await agents.closeAll();
      await late.close();
    }
  });
});

describe('heartbeats', () => {
  it('arrive every interval with seq increasing and the agent\'s own load', async () => {
    const intervalMs = 200;
    const count = 11;
    const { controller } = await agents.start(agentConfig(router.url, { agentId: 'west-1', heartbeatIntervalMs: intervalMs }));
    const beats = await waitFor(`${count} heartbeats`, () => router.heartbeats.length >= count && router.heartbeats.slice(0, count), count * intervalMs * 5);
    const seqs = beats.map((h) => h.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    const gaps = beats.slice(1).map((h, i) => h.receivedAt - beats[i]!.receivedAt);
    const gap = median(gaps);
    const spanMs = beats.at(-1)!.receivedAt - beats[0]!.receivedAt;
    console.log(`heartbeat spacing at ${intervalMs} ms: median ${gap.toFixed(1)} ms, min ${Math.min(...gaps).toFixed(1)}, max ${Math.max(...gaps).toFixed(1)}; ${count} beats over ${spanMs.toFixed(0)} ms`);
    // Never faster than the setting: n beats span at least n - 1 intervals (less one interval for
    // the first one's delivery being late).
    expect(spanMs).toBeGreaterThanOrEqual((count - 2) * intervalMs);
    // No interval skipped: half the gaps or more are shorter than two intervals (a loaded machine
    // delays single timers, not most of them by a whole interval).
    expect(gap).toBeLessThan(2 * intervalMs);
    for (const h of beats) {
      expect(h).toMatchObject({ nodeId: 'west-1', draining: false, cordoned: false, maxParticipants: 100, peerRtt: {} });
      expect(h.load).toMatchObject({ participants: 0, rooms: 0, transports: 0, producers: 0, consumers: 0, workers: 0 });
      // Its own process over the host's cores: well under one; its RSS over 4 GiB: small but not zero.
      expect(h.load.cpu).toBeGreaterThanOrEqual(0);
      expect(h.load.cpu).toBeLessThanOrEqual(1);
      expect(h.load.memory).toBeGreaterThan(0);
      expect(h.load.memory).toBeLessThan(0.25);
    }
    expect(controller.status().heartbeat.failures).toBe(0);
  });

  it('adds the SFU\'s counters and worker usage from the load provider', async () => {
    const startedAt = performance.now();
    // One worker busy on a whole core, using 1 GiB.
    const sfu = (): SfuLoad => ({
      participants: 7, rooms: 2, transports: 14, producers: 14, consumers: 42, workers: 1,
      workerCpuTimeMs: performance.now() - startedAt,
      workerRssBytes: 1024 ** 3,
    });
    await agents.start(agentConfig(router.url, { agentCpuCores: 2, agentMemoryMb: 2048 }), { load: sfu });
    const beats = await waitFor('6 heartbeats', () => router.heartbeats.length >= 6 && router.heartbeats.slice(1, 6));
    for (const h of beats) {
      expect(h.load).toMatchObject({ participants: 7, rooms: 2, transports: 14, producers: 14, consumers: 42, workers: 1 });
      // One core of two, plus the agent's own share.
      expect(h.load.cpu).toBeGreaterThanOrEqual(0.45);
      expect(h.load.cpu).toBeLessThan(1.05);
      expect(h.load.memory).toBeGreaterThan(0.5);
      expect(h.load.memory).toBeLessThan(0.75);
    }
  });

  it('registers again when the router answers known:false (it restarted), keeping seq monotonic', async () => {
    const { controller, url } = await agents.start(agentConfig(router.url, { agentId: 'west-1' }));
    await waitFor('3 heartbeats', () => router.heartbeats.length >= 3);
    router.nodes.clear();
    await waitFor('a second registration', () => router.registrations.length === 2);
    const before = router.heartbeats.length;
    await waitFor('heartbeats after re-registering', () => router.heartbeats.length >= before + 3);
    const seqs = router.heartbeats.map((h) => h.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    await waitFor('readiness', () => controller.ready);
    const metrics = (await (await fetch(`${url}/metrics`)).text());
    expect(metrics).toMatch(/^geo_sfu_agent_registrations_total\{[^}]*\} 2$/m);
  });

  it('counts and survives missed heartbeats', async () => {
    const { controller, url } = await agents.start(agentConfig(router.url));
    await waitFor('first heartbeat', () => router.heartbeats.length >= 1);
    router.failHeartbeatsWith = 500;
    await waitFor('3 missed heartbeats', () => controller.status().heartbeat.consecutiveFailures >= 3);
    router.failHeartbeatsWith = null;
    await waitFor('heartbeats acknowledged again', () => controller.status().heartbeat.consecutiveFailures === 0);
    const status = controller.status();
    expect(status.heartbeat.failures).toBeGreaterThanOrEqual(3);
    expect(status.registered).toBe(true);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const failures = Number(/^geo_sfu_agent_heartbeat_failures_total\{[^}]*\} (\d+)$/m.exec(metrics)?.[1]);
    expect(failures).toBe(status.heartbeat.failures);
  });
});
