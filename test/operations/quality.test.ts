import { afterEach, describe, expect, it } from 'vitest';
import { evaluateQuality, type QualitySample, type QualityState } from '../../router/operations/quality.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

const S = { lossRatio: 0.05, rttMs: 200, windowMs: 5_000 };
const sample = (o: Partial<QualitySample> = {}): QualitySample => ({
  roomId: 'r', participantId: 'p', region: 'eu-west', nodeId: 'eu-west-1', packetLoss: 0, rttMs: 50, jitterMs: 2, bitrateBps: 500_000, ...o,
});

/** One tick per second; returns [t, 'raised' | 'cleared', kind] events. */
function run(series: Array<QualitySample[]>) {
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
