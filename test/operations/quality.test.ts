import { afterEach, describe, expect, it } from 'vitest';
import { QualityMonitor } from '../../router/operations/quality-monitor.ts';
import { evaluateQuality, type LinkQualitySample, type QualitySample, type QualityState } from '../../router/operations/quality.ts';
import type { NodeRegistry, NodeSnapshot, RegistrySnapshot } from '../../router/registry/node-registry.ts';
import { configWith } from '../../shared/config/index.ts';
import type { CascadeLinkMedia, RttStats } from '../../shared/schemas/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const S = { lossRatio: 0.05, rttMs: 200, jitterMs: 30, windowMs: 5_000 };
const sample = (o: Partial<QualitySample> = {}): QualitySample => ({
  roomId: 'r', participantId: 'p', region: 'eu-west', nodeId: 'eu-west-1', packetLoss: 0, rttMs: 50, jitterMs: 2, bitrateBps: 500_000, ...o,
});

const link = (o: Partial<LinkQualitySample> = {}): LinkQualitySample => ({
  scope: 'cascade_link', nodeId: 'us-east-1', region: 'us-east', peerNodeId: 'eu-west-1', peerRegion: 'eu-west', loss: 0, jitterMs: 3, rttMs: 90, ...o,
});

/** One tick per second; returns [t, 'raised' | 'cleared', kind] events. */
function run(series: Array<Array<QualitySample | LinkQualitySample>>) {
  let state: QualityState = new Map();
  const events: Array<[number, string, string]> = [];
  series.forEach((samples, t) => {
    const r = evaluateQuality(state, samples, t * 1_000, S);
    state = r.state;
    for (const a of r.raised) events.push([t, 'raised', a.kind]);
    for (const a of r.cleared) events.push([t, 'cleared', a.kind]);
  });
  return events;
}
const repeat = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);

describe('quality alerts (pure)', () => {
  it('loss above 5% for the window raises; back to normal for the window clears', () => {
    expect(run([...repeat(8, [sample({ packetLoss: 0.08 })]), ...repeat(8, [sample()])])).toEqual([
      [5, 'raised', 'packet_loss'],
      [13, 'cleared', 'packet_loss'],
    ]);
  });
  it('RTT above 200 ms raises its own alert; a short spike does not', () => {
    expect(run([...repeat(3, [sample({ rttMs: 300 })]), ...repeat(3, [sample()]), ...repeat(7, [sample({ rttMs: 250 })])])).toEqual([[11, 'raised', 'rtt']]);
  });
  it('exactly at the threshold is normal; null RTT (no report yet) is normal', () => {
    expect(run(repeat(10, [sample({ packetLoss: 0.05, rttMs: null })]))).toEqual([]);
  });
  it('a participant who leaves has its alert cleared at once', () => {
    expect(run([...repeat(6, [sample({ packetLoss: 0.2 })]), []])).toEqual([
      [5, 'raised', 'packet_loss'],
      [6, 'cleared', 'packet_loss'],
    ]);
  });
});

describe('cascade link alerts (pure)', () => {
  it('a link\'s loss, RTT and jitter each raise their own alert after the window, with the link\'s figures, and clear after it', () => {
    expect(run([...repeat(7, [link({ loss: 0.12 })]), ...repeat(7, [link()])])).toEqual([
      [5, 'raised', 'packet_loss'],
      [12, 'cleared', 'packet_loss'],
    ]);
    expect(run(repeat(6, [link({ rttMs: 240 })]))).toEqual([[5, 'raised', 'rtt']]);
    expect(run(repeat(6, [link({ jitterMs: 45 })]))).toEqual([[5, 'raised', 'jitter']]);
    let state: QualityState = new Map();
    for (let t = 0; t <= 5; t++) state = evaluateQuality(state, [link({ loss: 0.1 + t / 100, jitterMs: 12 })], t * 1_000, S).state;
    const { active } = evaluateQuality(state, [link({ loss: 0.2, jitterMs: 14 })], 6_000, S);
    expect(active).toEqual([
      { scope: 'cascade_link', nodeId: 'us-east-1', region: 'us-east', peerNodeId: 'eu-west-1', peerRegion: 'eu-west', kind: 'packet_loss', value: 0.2, threshold: 0.05, since: new Date(0).toISOString(), loss: 0.2, jitterMs: 14, rttMs: 90 },
    ]);
  });
  it('nothing measured (null) is normal; at the threshold is normal', () => {
    expect(run(repeat(10, [link({ loss: null, jitterMs: null, rttMs: null })]))).toEqual([]);
    expect(run(repeat(10, [link({ loss: 0.05, jitterMs: 30, rttMs: 200 })]))).toEqual([]);
  });
  it('each direction of a node pair is its own link; a participant and a link never share a condition', () => {
    const back = link({ nodeId: 'eu-west-1', region: 'eu-west', peerNodeId: 'us-east-1', peerRegion: 'us-east' });
    expect(run([...repeat(6, [link({ loss: 0.2 }), back, sample({ packetLoss: 0.2 })])])).toEqual([
      [5, 'raised', 'packet_loss'],
      [5, 'raised', 'packet_loss'],
    ]);
    let state: QualityState = new Map();
    for (let t = 0; t <= 5; t++) state = evaluateQuality(state, [link({ loss: 0.2 }), back, sample({ packetLoss: 0.2 })], t * 1_000, S).state;
    expect(evaluateQuality(state, [link({ loss: 0.2 }), back, sample({ packetLoss: 0.2 })], 6_000, S).active.map((a) => [a.scope, a.nodeId])).toEqual([
      ['cascade_link', 'us-east-1'],
      ['participant', 'eu-west-1'],
    ]);
  });
  it('a link no longer reported (closed, or its node died) has its alerts cleared at once', () => {
    expect(run([...repeat(6, [link({ loss: 0.2, jitterMs: 50 })]), []])).toEqual([
      [5, 'raised', 'packet_loss'],
      [5, 'raised', 'jitter'],
      [6, 'cleared', 'packet_loss'],
      [6, 'cleared', 'jitter'],
    ]);
  });
});

describe('the quality monitor on cascade links', () => {
  const rtt = (rttMs: number): RttStats => ({ rttMs, medianMs: rttMs, jitterMs: 1, loss: 0, samples: 10 });
  const node = (nodeId: string, region: string, links: CascadeLinkMedia[], peerRtt: Record<string, RttStats> = {}, state: NodeSnapshot['state'] = 'alive') =>
    ({
      nodeId,
      region,
      state,
      record: { heartbeat: { nodeId, seq: 1, load: {}, draining: false, cordoned: false, maxParticipants: 10, peerRtt, media: { inBps: 0, outBps: 0, links } } },
    }) as unknown as NodeSnapshot;
  const monitorOf = (snapshot: Omit<RegistrySnapshot, 'takenAtMs'>) => {
    let now = 0;
    const monitor = new QualityMonitor({
      config: configWith({ alertWindowMs: 2_000 }),
      registry: { snapshot: () => ({ takenAtMs: now, ...snapshot }) } as unknown as NodeRegistry,
      now: () => now,
      isLeader: () => true,
    });
    return {
      monitor,
      tickFor(ms: number) {
        for (const end = now + ms; now <= end; now += 1_000) monitor.tick();
      },
    };
  };
  const linkFrom = (peerNodeId: string, peerRegion: string, o: Partial<CascadeLinkMedia> = {}): CascadeLinkMedia => ({ peerNodeId, peerRegion, rooms: 3, inBps: 1e6, outBps: 1e6, ...o });

  it("reads each live node's links from its heartbeat, with the pair's own probe RTT, else the region pair's; not dead nodes' links; and tells no node of them", () => {
    const { monitor, tickFor } = monitorOf({
      nodes: [
        // us-east-1 measured eu-west-1 at 250 ms; it has no probe of apac-1 yet: the region pair's 320 ms.
        node('us-east-1', 'us-east', [linkFrom('eu-west-1', 'eu-west', { loss: 0.01, jitterMs: 4 }), linkFrom('apac-1', 'apac', { loss: 0.09, jitterMs: 41 })], { 'eu-west-1': rtt(250) }),
        node('eu-west-1', 'eu-west', [linkFrom('us-east-1', 'us-east', { loss: 0 })], { 'us-east-1': rtt(150) }),
        node('apac-1', 'apac', [linkFrom('us-east-1', 'us-east', { loss: 0.5 })], {}, 'dead'),
      ],
      interRegion: { 'us-east': { apac: rtt(320) } },
    });
    tickFor(3_000);
    expect(monitor.active().map((a) => (a.scope === 'cascade_link' ? [a.nodeId, a.peerNodeId, a.kind, a.value] : a.scope))).toEqual([
      ['us-east-1', 'eu-west-1', 'rtt', 250],
      ['us-east-1', 'apac-1', 'packet_loss', 0.09],
      ['us-east-1', 'apac-1', 'rtt', 320],
      ['us-east-1', 'apac-1', 'jitter', 41],
    ]);
    expect(monitor.forNode('us-east-1')).toEqual([]);
  });
});

let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
});

it('the router raises alerts from agents\' stats, serves them, counts them and tells the node; then clears them', async () => {
  router = await startRouter(testConfig('memory', { alertWindowMs: 1_000 }));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(200);
  await nodes.add({ nodeId: 'eu-west-1', region: 'eu-west' });
  nodes.setQuality('eu-west-1', [
    { roomId: 'room1', participantId: 'alice', packetLoss: 0.12, rttMs: 80, jitterMs: 3, bitrateBps: 400_000 },
    { roomId: 'room1', participantId: 'bob', packetLoss: 0, rttMs: 60, jitterMs: 2, bitrateBps: 400_000 },
  ]);
  const admin = { authorization: `Bearer ${router.config.adminToken}` };
  const alerts = async () => ((await (await fetch(`${router!.url}/alerts`, { headers: admin })).json()) as { alerts: Array<{ participantId: string; kind: string; value: number }> }).alerts;
  const waitFor = async (predicate: (a: Awaited<ReturnType<typeof alerts>>) => boolean) => {
    const deadline = Date.now() + 6_000;
    for (;;) {
      const a = await alerts();
      if (predicate(a) || Date.now() > deadline) return a;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const raised = await waitFor((a) => a.length > 0);
  expect(raised.map((a) => [a.participantId, a.kind, a.value])).toEqual([['alice', 'packet_loss', 0.12]]);
  expect((await nodes.heartbeat('eu-west-1')).alerts?.map((a) => a.participantId)).toEqual(['alice']);
  expect(await (await fetch(`${router.url}/metrics`)).text()).toContain('geo_sfu_quality_alerts{region="eu-west",kind="packet_loss"} 1');
  nodes.setQuality('eu-west-1', [{ roomId: 'room1', participantId: 'alice', packetLoss: 0.01, rttMs: 80, jitterMs: 3, bitrateBps: 400_000 }]);
  expect(await waitFor((a) => a.length === 0)).toEqual([]);
  expect((await fetch(`${router.url}/alerts`)).status).toBe(401);
});
