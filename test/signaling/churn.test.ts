import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { waitFor } from '../utils/wait.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, joinWith, ok, sfuCounts, signalingConfig, startSignalingRouter, token } from './helpers.ts';

let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 0 }));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});

/** `name{...}` lines of the agent's /metrics, by their labels. */
async function gauge(name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${agent.url}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith(`${name}{`));
  return new Map(lines.map((l) => [l.slice(name.length, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
}

const sockets = async () => [...(await gauge('geo_sfu_agent_process_active_resources')).entries()].filter(([labels]) => labels.includes('type="TCPSocketWrap"')).reduce((n, [, v]) => n + v, 0);

/** One participant's life as bench/soak.ts churns it: connect, join, open a send transport, leave. */
async function cycle(i: number): Promise<void> {
  const { socket } = await joinWith(agent.url, { token: token({ room: `room-churn-${i % 3}`, sub: `p${i % 5}` }).token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  await ok(socket, 'createWebRtcTransport', { direction: 'send' });
  await ok(socket, 'leave', {});
  socket.close();
}

describe('signaling churn (what bench/soak.ts runs, in one process)', () => {
  it('leaves the agent as it found it: no session, SFU object or socket per cycle stays behind', async () => {
    // A first round warms up what lives for the process (connection pools to the router, the probe router).
    for (let i = 0; i < 5; i++) await cycle(i);
    await waitFor('warm-up sessions to end', () => agent.signaling?.sessionCount === 0);
    await waitFor('warm-up reports', () => router.participantEvents.filter((e) => e.event === 'left').length === 5);
    const socketsBefore = await sockets();

    const cycles = 60;
    for (let i = 0; i < cycles; i++) await cycle(i);
    await waitFor('every session to end', () => agent.signaling?.sessionCount === 0);
    await waitFor('every left report', () => router.participantEvents.filter((e) => e.event === 'left').length === 5 + cycles);

    expect(await sfuCounts(agent)).toEqual({ rooms: 0, peers: 0, transports: 0, producers: 0, consumers: 0, routers: 0, sessions: 0 });
    expect(Object.fromEntries(await gauge('geo_sfu_agent_sfu_objects'))).toEqual(
      Object.fromEntries(['routers', 'transports', 'producers', 'consumers'].map((kind) => [`{kind="${kind}",node_id="west-1",region="us-west"}`, 0])),
    );
    // Sockets of this process (the test's clients and fake router included) close with their
    // sessions: what is left is the keep-alive pools', not one per cycle.
    const socketsAfter = await waitFor('client sockets to close', async () => {
      const n = await sockets();
      return n <= socketsBefore + 4 ? n : null;
    });
    console.log(`${cycles} cycles: TCP sockets in the process ${socketsBefore} → ${socketsAfter}`);
    expect(socketsAfter).toBeLessThanOrEqual(socketsBefore + 4);
  });
});
