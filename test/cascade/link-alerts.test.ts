/**
 * Quality alerts on cascade links from real stats: two in-process agents (real mediasoup pipes)
 * joined through a relay that loses 15 % of what one node sends the other; the receiving node's
 * piped-in producers measure the loss (Cascade.linkMedia()), its heartbeats carry it to a real
 * router, whose quality monitor raises the alert for that link (GET /alerts, the metric, the
 * webhook; not the heartbeat answer: no client to tell), and clears it once the loss stops. The
 * other direction of the same pipe stays clean and raises nothing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';

import { RelayMesh } from '../../infra/embedded/udp-relay.ts';
import type { CascadeLinkMedia, QualityAlert } from '../../shared/schemas/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig } from '../utils/router-harness.ts';
import { waitUntil } from '../sfu/helpers/rtp.ts';
import { Cluster, Participant } from './harness.ts';

const ROOM = 'link-alert-room';
const DROP = 0.15;

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it('loss on a cascade link raises a packet-loss alert for that link with the measured loss, and it clears when the loss stops', async () => {
  // The webhook receiver: what the router POSTs when alerts are raised and cleared.
  const hooks: Array<{ raised: QualityAlert[]; cleared: QualityAlert[] }> = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as { raised: QualityAlert[]; cleared: QualityAlert[] });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => receiver.close(r)));
  const router = await startRouter(testConfig('memory', { alertWindowMs: 1_500, alertWebhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts` }));
  cleanups.push(() => router.close());

  // a = eu-west-1 (the lower id), b = us-west-1: 'ab' is what eu sends to us.
  const mesh = new RelayMesh(
    (nodeId) => nodeId.replace(/-\d+$/, ''),
    () => ({ ab: { delayMs: 20 }, ba: { delayMs: 20 } }),
  );
  const cluster = new Cluster({ rewrite: mesh.hook });
  cleanups.push(() => mesh.close(), () => cluster.close());
  const eu = await cluster.add('eu-west-1', 'eu-west');
  const us = await cluster.add('us-west-1', 'us-west');
  const bruno = await Participant.join(eu, ROOM, 'bruno');
  const alice = await Participant.join(us, ROOM, 'alice');
  cleanups.push(() => alice.leave(), () => bruno.leave());
  await alice.waitConsuming([bruno.audio!.id, bruno.video!.id], 15_000);
  await bruno.waitConsuming([alice.audio!.id, alice.video!.id], 15_000);
  alice.startMedia();
  bruno.startMedia();
  await waitUntil(() => alice.received(bruno.video!.id) > 10 && bruno.received(alice.video!.id) > 10, 10_000, 'video both ways across the pipe');

  // Both nodes heartbeat the router with what their cascade reports of its links.
  const nodes = new FakeNodes(router.url, router.config.clusterSecret);
  cleanups.push(() => nodes.close());
  const reported: Record<string, CascadeLinkMedia[]> = {};
  await nodes.start(300);
  for (const node of [eu, us]) {
    await nodes.add({ nodeId: node.nodeId, region: node.region });
    nodes.setPeerRtt(node.nodeId, node.nodeId === eu.nodeId ? us.nodeId : eu.nodeId, 40);
    nodes.setLinks(node.nodeId, async () => (reported[node.nodeId] = await node.cascade!.linkMedia()));
  }

  const relay = mesh.relay(ROOM, eu.nodeId, us.nodeId)!;
  const admin = { authorization: `Bearer ${router.config.adminToken}` };
  const alerts = async () => ((await (await fetch(`${router.url}/alerts`, { headers: admin })).json()) as { alerts: QualityAlert[] }).alerts;
  const linkAlerts = (a: QualityAlert[]) => a.filter((x) => x.scope === 'cascade_link');
  const waitFor = async (what: string, predicate: (a: QualityAlert[]) => boolean, timeoutMs: number) => {
    const started = Date.now();
    for (;;) {
      const a = await alerts();
      if (predicate(a)) return { alerts: a, afterMs: Date.now() - started };
      if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms (alerts ${JSON.stringify(a)}, links ${JSON.stringify(reported)})`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  // Clean both ways: the links report no loss, and nothing is raised.
  await waitUntil(() => reported[us.nodeId]?.[0]?.loss !== undefined && reported[eu.nodeId]?.[0]?.loss !== undefined, 10_000, 'both links measured');
  await new Promise((r) => setTimeout(r, 2_500));
  console.log(`clean links: us←eu ${JSON.stringify(reported[us.nodeId])}, eu←us ${JSON.stringify(reported[eu.nodeId])}`);
  expect(reported[us.nodeId]![0]).toMatchObject({ peerNodeId: eu.nodeId, peerRegion: 'eu-west', rooms: 1, loss: 0 });
  expect(reported[eu.nodeId]![0]).toMatchObject({ peerNodeId: us.nodeId, peerRegion: 'us-west', rooms: 1, loss: 0 });
  expect(linkAlerts(await alerts())).toEqual([]);

  relay.setProfile('ab', { delayMs: 20, loss: DROP });
  const dropsBefore = { dropped: relay.stats.ab.dropped, packets: relay.stats.ab.packets };
  const raised = await waitFor('link loss alert', (a) => linkAlerts(a).some((x) => x.kind === 'packet_loss'), 20_000);
  const dropRate = (relay.stats.ab.dropped - dropsBefore.dropped) / (relay.stats.ab.dropped - dropsBefore.dropped + relay.stats.ab.packets - dropsBefore.packets);
  const [alert, ...others] = linkAlerts(raised.alerts);
  console.log(
    `link packet-loss alert raised ${raised.afterMs} ms after the relay started dropping; measured loss ${(alert!.value * 100).toFixed(1)} % (relay dropped ${(dropRate * 100).toFixed(1)} % of eu→us datagrams meanwhile); jitter ${alert!.jitterMs} ms, RTT ${alert!.rttMs} ms; reported ${JSON.stringify(reported[us.nodeId])}`,
  );
  // The link us-west-1 receives from eu-west-1, and only that one (eu receives a clean stream).
  expect(others).toEqual([]);
  expect(alert).toMatchObject({ scope: 'cascade_link', nodeId: us.nodeId, region: 'us-west', peerNodeId: eu.nodeId, peerRegion: 'eu-west', kind: 'packet_loss', threshold: 0.05, rttMs: 40 });
  expect(alert!.value).toBeGreaterThan(0.05);
  // Once the whole loss window (5 s) is lossy, the active alert carries what mediasoup measured: near what the relay drops.
  await new Promise((r) => setTimeout(r, 5_000));
  const steady = linkAlerts(await alerts()).find((x) => x.kind === 'packet_loss')!;
  console.log(`5 s later: the alert's loss ${(steady.value * 100).toFixed(1)} % (the relay drops ${DROP * 100} %); the clean direction ${JSON.stringify(reported[eu.nodeId])}`);
  expect(steady.since).toBe(alert!.since);
  expect(steady.loss).toBe(steady.value);
  expect(steady.value).toBeGreaterThan(DROP * 0.6);
  expect(steady.value).toBeLessThan(DROP * 1.6);
  expect(reported[eu.nodeId]![0]!.loss).toBe(0);
  expect(raised.alerts.some((x) => x.scope === 'participant')).toBe(false);
  expect(await (await fetch(`${router.url}/metrics`)).text()).toContain('geo_sfu_quality_alerts{region="us-west",kind="packet_loss",peer_region="eu-west"} 1');
  // No client is told about a link.
  expect((await nodes.heartbeat(us.nodeId)).alerts ?? []).toEqual([]);
  await waitUntil(() => hooks.some((h) => h.raised.some((x) => x.scope === 'cascade_link')), 5_000, 'the webhook told of the link alert');
  expect(hooks.flatMap((h) => h.raised)).toEqual([expect.objectContaining({ scope: 'cascade_link', nodeId: us.nodeId, peerNodeId: eu.nodeId, kind: 'packet_loss' })]);

  relay.setProfile('ab', { delayMs: 20 });
  const cleared = await waitFor('link alert cleared', (a) => linkAlerts(a).length === 0, 30_000);
  console.log(`link alert cleared ${cleared.afterMs} ms after the loss stopped; reported ${JSON.stringify(reported[us.nodeId])}`);
  await waitUntil(() => hooks.some((h) => h.cleared.some((x) => x.scope === 'cascade_link')), 5_000, 'the webhook told of the clearing');

  // Jitter: ±20 ms (the worst impaired case) stays under GEO_SFU_ALERT_JITTER_MS (30 ms); ±60 ms does not.
  const jitterOf = async (jitterMs: number) => {
    relay.setProfile('ab', { delayMs: 80, jitterMs });
    await new Promise((r) => setTimeout(r, 5_000));
    console.log(`±${jitterMs} ms on the relay: reported ${JSON.stringify(reported[us.nodeId])}`);
    return reported[us.nodeId]![0]!.jitterMs!;
  };
  const moderate = await jitterOf(20);
  expect(linkAlerts(await alerts())).toEqual([]);
  const strong = await jitterOf(60);
  const jitterRaised = await waitFor('link jitter alert', (a) => linkAlerts(a).some((x) => x.kind === 'jitter'), 20_000);
  const jitterAlert = linkAlerts(jitterRaised.alerts).find((x) => x.kind === 'jitter')!;
  console.log(`link jitter alert (±20 ms: ${moderate} ms, ±60 ms: ${strong} ms) ${JSON.stringify(jitterAlert)}; all link alerts ${JSON.stringify(linkAlerts(jitterRaised.alerts).map((x) => [x.kind, x.value]))}`);
  expect(moderate).toBeLessThan(30);
  expect(jitterAlert).toMatchObject({ nodeId: us.nodeId, peerNodeId: eu.nodeId, threshold: 30 });
  expect(jitterAlert.value).toBeGreaterThan(30);
  relay.setProfile('ab', { delayMs: 20 });
  const jitterCleared = await waitFor('jitter alert cleared', (a) => linkAlerts(a).length === 0, 30_000);
  console.log(`link jitter alert cleared ${jitterCleared.afterMs} ms after the jitter stopped`);
}, 150_000);
