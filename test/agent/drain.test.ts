import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { noSfu } from '../../region-agent/load.ts';
import type { SfuLoad } from '../../region-agent/app.ts';
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

/** An SFU whose participant count the test sets. */
function sfuWith(participants: { count: number }) {
  return async (): Promise<SfuLoad> => ({ ...(await noSfu()), participants: participants.count, rooms: participants.count > 0 ? 1 : 0 });
}

describe('drain', () => {
  it('stops taking rooms, waits for the last participant, deregisters and closes', async () => {
    const participants = { count: 2 };
    const drainDeadlineMs = 30_000;
    const { url, controller } = await agents.start(agentConfig(router.url, { agentId: 'west-1', drainDeadlineMs }), { load: sfuWith(participants) });
    await waitFor('readiness', () => controller.ready);
    const closed = new Promise<void>((resolve) => controller.once('close', resolve));

    const res = await postJson(`${url}/admin/drain`, undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(res).toMatchObject({ statusCode: 202, body: { draining: true } });
    const readyz = await getJson(`${url}/readyz`);
    expect(readyz).toMatchObject({ statusCode: 503, body: { error: { code: 'NOT_READY', message: 'not ready: draining' } } });
    await waitFor('a draining heartbeat', () => router.heartbeats.at(-1)?.draining === true);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^geo_sfu_agent_draining\{[^}]*\} 1$/m);
    await new Promise((r) => setTimeout(r, 400));
    expect(router.deregistrations).toEqual([]);

    participants.count = 0;
    const emptiedAt = performance.now();
    await closed;
    expect(router.deregistrations.map((d) => d.nodeId)).toEqual(['west-1']);
    const deregisteredAfterMs = router.deregistrations[0]!.receivedAt - emptiedAt;
    console.log(`deregistered ${deregisteredAfterMs.toFixed(0)} ms after the last participant left`);
    // It left because the node emptied, not because the deadline passed: far sooner than the deadline.
    expect(deregisteredAfterMs).toBeLessThan(drainDeadlineMs / 10);
    // Nothing from this node reaches the router after it deregistered.
    expect(router.heartbeats.filter((h) => h.receivedAt > router.deregistrations[0]!.receivedAt)).toEqual([]);
    expect(router.nodes.size).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('gives up waiting at the deadline', async () => {
    const drainDeadlineMs = 400;
    const { controller } = await agents.start(agentConfig(router.url, { agentId: 'west-1', drainDeadlineMs }), { load: sfuWith({ count: 3 }) });
    await waitFor('readiness', () => controller.ready);
    const startedAt = performance.now();
    const drained = controller.drain();
    expect(controller.drain()).toBe(drained);
    await drained;
    const tookMs = performance.now() - startedAt;
    const deregisteredAfterMs = router.deregistrations[0]!.receivedAt - startedAt;
    console.log(`drain with 3 participants left and a ${drainDeadlineMs} ms deadline: deregistered after ${deregisteredAfterMs.toFixed(0)} ms, closed after ${tookMs.toFixed(0)} ms`);
    // Not before the deadline, and it ends although nobody left: deregistering and closing once the
    // deadline passed take a moment, on a loaded machine a long one.
    expect(deregisteredAfterMs).toBeGreaterThanOrEqual(drainDeadlineMs);
    expect(tookMs).toBeGreaterThanOrEqual(deregisteredAfterMs);
    expect(tookMs).toBeLessThan(drainDeadlineMs + 5_000);
    expect(router.deregistrations.map((d) => d.nodeId)).toEqual(['west-1']);
    expect(router.heartbeatsOf('west-1').some((h) => h.draining && h.load.participants === 3)).toBe(true);
  });

  it('before registration: closes without calling the router', async () => {
    const { controller } = await agents.start(agentConfig('http://127.0.0.1:9', { drainDeadlineMs: 1_000 }));
    await controller.drain();
    expect(controller.registered).toBe(false);
    expect(router.deregistrations).toEqual([]);
  });
});
