import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DelayProxy, startDelayProxy } from '../../infra/embedded/delay-proxy.ts';
import { type FakeRouter, startFakeRouter } from './fake-router.ts';
import { Agents, CLUSTER_SECRET, agentConfig, freePort, waitFor } from './helpers.ts';

let router: FakeRouter;
const agents = new Agents();
const cleanups: Array<() => Promise<void>> = [];
beforeEach(async () => {
  router = await startFakeRouter({ secret: CLUSTER_SECRET });
});
afterEach(async () => {
  await agents.closeAll();
  await Promise.all(cleanups.splice(0).map((c) => c()));
  await router.close();
});

/** The latest heartbeat of `from` carrying RTT figures for `to` with at least `samples` samples. */
const rttReport = (from: string, to: string, samples: number) => () => {
  const last = router.heartbeatsOf(from).at(-1)?.peerRtt[to];
  return last !== undefined && last.samples >= samples ? last : undefined;
};

describe('peer probing', () => {
  it('two agents each measure and report the RTT to the other', async () => {
    const probeIntervalMs = 250;
    const west = await agents.start(agentConfig(router.url, { agentId: 'west-1', agentRegion: 'us-west', probeIntervalMs }));
    const east = await agents.start(agentConfig(router.url, { agentId: 'east-1', agentRegion: 'us-east', probeIntervalMs }));
    const westToEast = await waitFor('west→east RTT', rttReport('west-1', 'east-1', 5));
    const eastToWest = await waitFor('east→west RTT', rttReport('east-1', 'west-1', 5));
    console.log(`loopback RTT: west→east median ${westToEast.medianMs} ms, east→west median ${eastToWest.medianMs} ms`);
    for (const stats of [westToEast, eastToWest]) {
      expect(stats.loss).toBe(0);
      expect(stats.rttMs).toBeGreaterThan(0);
      // A loopback round trip, even on a loaded machine, is well within one probe interval.
      expect(stats.medianMs).toBeLessThan(probeIntervalMs);
    }
    const metrics = await (await fetch(`${west.url}/metrics`)).text();
    expect(metrics).toMatch(/^geo_sfu_agent_peer_rtt_ms\{peer_region="us-east",peer_node="east-1",node_id="west-1",region="us-west"\} [\d.]+$/m);
    expect(west.controller.status().peers).toEqual([
      { nodeId: 'east-1', region: 'us-east', probeUrl: `${east.url}/probe`, rtt: expect.objectContaining({ loss: 0 }) },
    ]);
  });

  it('probes through GEO_SFU_PEER_ROUTES: a proxy adding N ms each way gives a median RTT of about 2N', async () => {
    // Long enough that timer lag on a loaded machine is small beside it.
    const oneWayMs = 50;
    const east = await agents.start(agentConfig(router.url, { agentId: 'east-1', agentRegion: 'us-east' }));
    const proxy: DelayProxy = await startDelayProxy({ targetHost: '127.0.0.1', targetPort: Number(new URL(east.url).port), oneWayDelayMs: oneWayMs });
    cleanups.push(() => proxy.close());
    const west = await agents.start(
      agentConfig(router.url, { agentId: 'west-1', agentRegion: 'us-west', peerRoutes: JSON.stringify({ 'east-1': proxy.url }) }),
    );
    const viaProxy = await waitFor('20 probes through the proxy', rttReport('west-1', 'east-1', 20), 10_000);
    const direct = await waitFor('20 direct probes back', rttReport('east-1', 'west-1', 20), 10_000);
    console.log(
      `delay proxy ${oneWayMs} ms each way: median RTT ${viaProxy.medianMs} ms (expected ≈ ${2 * oneWayMs}), ` +
        `EWMA ${viaProxy.rttMs} ms, jitter ${viaProxy.jitterMs} ms; direct path back: median ${direct.medianMs} ms`,
    );
    expect(viaProxy.loss).toBe(0);
    expect(viaProxy.medianMs).toBeGreaterThanOrEqual(2 * oneWayMs);
    // The proxy's delay counted once per direction, not twice (timer lag on a loaded machine adds some).
    expect(viaProxy.medianMs).toBeLessThan(4 * oneWayMs);
    expect(direct.medianMs).toBeLessThan(2 * oneWayMs);
    expect(west.controller.status().peers[0]?.probeUrl).toBe(`${proxy.url}/probe`);
  });

  it('reports loss 1 for a dead peer and a silent one, and drops peers the router stops listing', async () => {
    const deadPort = await freePort();
    // Accepts connections and never answers: every probe times out.
    const silent = net.createServer(() => undefined);
    const sockets = new Set<net.Socket>();
    silent.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => { for (const s of sockets) s.destroy(); silent.close(() => resolve()); }));
    const silentPort = (silent.address() as net.AddressInfo).port;
    router.extraPeers = [
      { nodeId: 'dead-1', region: 'apac', controlUrl: `http://127.0.0.1:${deadPort}`, probeUrl: `http://127.0.0.1:${deadPort}/probe` },
      { nodeId: 'silent-1', region: 'eu-west', controlUrl: `http://127.0.0.1:${silentPort}`, probeUrl: `http://127.0.0.1:${silentPort}/probe` },
    ];
    const west = await agents.start(agentConfig(router.url, { agentId: 'west-1', probeTimeoutMs: 150 }));
    await waitFor('dead peer lost', () => router.heartbeatsOf('west-1').at(-1)?.peerRtt['dead-1']?.loss === 1);
    await waitFor('silent peer timing out', () => (router.heartbeatsOf('west-1').at(-1)?.peerRtt['silent-1']?.samples === 0 &&
      west.controller.peers().find((p) => p.nodeId === 'silent-1')?.rtt.loss === 1));
    const last = router.heartbeatsOf('west-1').at(-1)!.peerRtt;
    expect(last['dead-1']).toEqual({ rttMs: null, medianMs: null, jitterMs: 0, loss: 1, samples: 0 });
    const metrics = await (await fetch(`${west.url}/metrics`)).text();
    expect(metrics).toMatch(/^geo_sfu_agent_peer_loss\{peer_region="apac",peer_node="dead-1",[^}]*\} 1$/m);

    router.extraPeers = [];
    await waitFor('peers dropped', () => {
      const rtt = router.heartbeatsOf('west-1').at(-1)?.peerRtt;
      return rtt !== undefined && Object.keys(rtt).length === 0;
    });
    expect(west.controller.peers()).toEqual([]);
    expect(await (await fetch(`${west.url}/metrics`)).text()).not.toContain('dead-1');
  });
});
