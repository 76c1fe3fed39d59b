import { afterEach, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
});

it('a node that stops heartbeating becomes suspect, then dead, within the default 3 s', async () => {
  // Default timings (1 s heartbeats, suspect at 1.5 s, dead at 3 s).
  router = await startRouter(testConfig('memory', { heartbeatIntervalMs: 1_000, suspectAfterMs: 1_500, deadAfterMs: 3_000 }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(1_000);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west' });
  await nodes.add({ nodeId: 'us-east-1', region: 'us-east' });
  await router.app.services.registry.refresh();
  const stateOf = (id: string) => router!.app.services.registry.snapshot().nodes.find((n) => n.nodeId === id)?.state;
  expect(stateOf('us-west-1')).toBe('alive');

  nodes.silence('us-west-1');
  const silencedAt = Date.now();
  let suspectAfter = -1;
  let deadAfter = -1;
  while (Date.now() - silencedAt < 5_000 && deadAfter < 0) {
    const s = stateOf('us-west-1');
    if (s === 'suspect' && suspectAfter < 0) suspectAfter = Date.now() - silencedAt;
    if (s === 'dead') deadAfter = Date.now() - silencedAt;
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`death detection: suspect after ${suspectAfter} ms, dead after ${deadAfter} ms of silence`);
  expect(suspectAfter).toBeGreaterThan(0);
  expect(deadAfter).toBeGreaterThan(0);
  expect(deadAfter).toBeLessThanOrEqual(3_000 + 100);
  expect(stateOf('us-east-1')).toBe('alive');
  // Peers are told only about live nodes.
  const ack = await nodes.heartbeat('us-east-1');
  expect(ack.peers.map((p) => p.nodeId)).not.toContain('us-west-1');
});

it('probes every node and exposes RTT, jitter and loss at GET /regions', async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  await new Promise((r) => setTimeout(r, 1_500));
  const res = await fetch(`${router.url}/regions`);
  const body = (await res.json()) as { regions: Array<{ id: string; healthy: boolean; nodes: Array<{ probe: { rttMs: number; samples: number; loss: number } }> }> };
  const eu = body.regions.find((r) => r.id === 'eu-west')!;
  expect(eu.healthy).toBe(true);
  expect(eu.nodes[0]!.probe.samples).toBeGreaterThanOrEqual(3);
  expect(eu.nodes[0]!.probe.rttMs).toBeGreaterThan(0);
  expect(eu.nodes[0]!.probe.loss).toBe(0);
  expect(body.regions.find((r) => r.id === 'apac')!.healthy).toBe(false);
});

it('a node re-registers after the router forgets it (heartbeat answers known: false)', async () => {
  router = await startRouter(testConfig('memory'));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'apac-1', region: 'apac' });
  await router.app.services.registry.deregister('apac-1');
  expect((await nodes.heartbeat('apac-1')).known).toBe(false);
});
