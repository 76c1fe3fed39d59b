import { afterAll, expect, it } from 'vitest';
import { buildAgent } from '../../region-agent/app.ts';
import { AgentSfu } from '../../region-agent/sfu.ts';
import { agentConfig } from '../agent/helpers.ts';
import { MediaSender, UdpEndpoint, opusRtpParameters, vp8RtpParameters } from '../sfu/helpers/rtp.ts';
import { UdpRelay } from '../../infra/embedded/udp-relay.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * Quality alerts from real stats: a participant publishes real RTP into a real agent's SFU through
 * a lossy, delayed UDP relay; mediasoup measures the loss, the agent reports it in its heartbeat,
 * the router raises the alert, and clears it once the link is clean again.
 */
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it('loss on the way to the SFU raises a packet-loss alert at the router, and it clears when the loss stops', async () => {
  const router: RunningRouter = await startRouter(testConfig('memory', { alertWindowMs: 1_500 }));
  cleanups.push(() => router.close());
  const config = agentConfig(router.url, {
    clusterSecret: router.config.clusterSecret,
    tokenKeys: router.config.tokenKeys,
    agentId: 'eu-west-1',
    agentRegion: 'eu-west',
    sfuWorkers: 1,
    heartbeatIntervalMs: 300,
  });
  const sfu = await AgentSfu.create(config);
  const agent = await buildAgent({ config, sfu });
  await agent.controller.start();
  cleanups.push(() => agent.app.close());

  // alice publishes Opus and VP8 into a plain transport, through a relay losing 15% one way.
  const alice = await sfu.rooms.join('quality-room', 'alice');
  const transport = await alice.createPlainTransport({ comedia: true });
  await alice.produce({ transportId: transport.id, kind: 'audio', rtpParameters: opusRtpParameters(1111) });
  await alice.produce({ transportId: transport.id, kind: 'video', rtpParameters: vp8RtpParameters(2222) });
  const relay = await UdpRelay.open({ ab: { delayMs: 40, jitterMs: 5, loss: 0.15 }, ba: { delayMs: 40 } });
  relay.setTarget('b', { ip: '127.0.0.1', port: transport.tuple.localPort });
  const endpoint = await UdpEndpoint.open();
  const media = new MediaSender(endpoint, relay.facing('a').port).startOpus(1111).startVp8(2222);
  cleanups.push(() => media.stop(), () => endpoint.close(), () => relay.close());

  const admin = { authorization: `Bearer ${router.config.adminToken}` };
  const alerts = async () => ((await (await fetch(`${router.url}/alerts`, { headers: admin })).json()) as { alerts: Array<{ participantId: string; kind: string; value: number }> }).alerts;
  const waitFor = async (what: string, predicate: (a: Awaited<ReturnType<typeof alerts>>) => boolean, timeoutMs: number) => {
    const started = Date.now();
    for (;;) {
      const a = await alerts();
      if (predicate(a)) return { alerts: a, afterMs: Date.now() - started };
      if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms (alerts ${JSON.stringify(a)})`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const raised = await waitFor('loss alert', (a) => a.some((x) => x.participantId === 'alice' && x.kind === 'packet_loss'), 20_000);
  const loss = raised.alerts.find((x) => x.kind === 'packet_loss')!.value;
  console.log(`packet-loss alert raised ${raised.afterMs} ms after media started; measured loss ${(loss * 100).toFixed(1)}% (relay drops 15%); relay dropped ${relay.stats.ab.dropped} of ${relay.stats.ab.packets}`);
  expect(loss).toBeGreaterThan(0.05);
  expect(loss).toBeLessThan(0.4);

  relay.setProfile('ab', { delayMs: 40 });
  const cleared = await waitFor('alert cleared', (a) => !a.some((x) => x.participantId === 'alice'), 30_000);
  console.log(`alert cleared ${cleared.afterMs} ms after the loss stopped`);
});
