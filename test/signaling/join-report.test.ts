import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildAgent } from '../../region-agent/app.ts';
import { AgentSfu } from '../../region-agent/sfu.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, joinWith, ok, recordEvents, signalingConfig, startSignalingRouter, token, waitFor } from './helpers.ts';

/** The router's answer to a `joined` report decides whether the session stays (see ParticipantEventAnswer). */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
const HEARTBEAT_MS = 200;
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { heartbeatIntervalMs: HEARTBEAT_MS }));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});
beforeEach(() => {
  router.joinAnswer = { current: true };
});

async function joined(roomId: string, sub: string) {
  const { socket } = await joinWith(agent.url, { token: token({ room: roomId, sub }).token });
  const events = recordEvents(socket);
  const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  return { socket, events, disconnected };
}

describe('join report answer', () => {
  it('not current (replaced / removed): `removed` and the session closes, with no `left` for it', async () => {
    for (const reason of ['replaced', 'removed'] as const) {
      router.joinAnswer = { current: false, reason };
      const c = await joined(`room-${reason}`, 'alice');
      expect(await c.disconnected).toBe('io server disconnect');
      expect(c.events.map((e) => [e.event, e.msg])).toEqual([['removed', { reason }]]);
      expect(agent.sfu.rooms.getRoom(`room-${reason}`)?.getPeer('alice')).toBeUndefined();
      expect(router.participantEvents.filter((e) => e.roomId === `room-${reason}`).map((e) => e.event)).toEqual(['joined']);
    }
  });

  it('not current, for no known reason (expired, left): `moved`, to allocate again', async () => {
    router.joinAnswer = { current: false, reason: 'unknown' };
    const c = await joined('room-unknown', 'bob');
    expect(await c.disconnected).toBe('io server disconnect');
    expect(c.events.map((e) => [e.event, e.msg])).toEqual([['moved', { reason: 'allocation_not_current', excludeNodeIds: [] }]]);
    expect(agent.sfu.rooms.getRoom('room-unknown')?.getPeer('bob')).toBeUndefined();
  });

  it('no answer (503): the session stays (fail open) and is asked about again until the router can tell', async () => {
    router.joinAnswer = null;
    const c = await joined('room-open', 'carol');
    const reports = () => router.participantEvents.filter((e) => e.roomId === 'room-open' && e.event === 'joined').length;
    await waitFor('a report retried after 503s', () => reports() >= 4, 5_000);
    expect(c.socket.connected).toBe(true);
    expect(agent.sfu.rooms.getRoom('room-open')?.getPeer('carol')).toBeDefined();
    router.joinAnswer = { current: false, reason: 'removed' };
    expect(await c.disconnected).toBe('io server disconnect');
    console.log(`fail open: ${reports()} joined reports until the router could answer`);
    expect(c.events.map((e) => e.event)).toEqual(['removed']);
  });

  it('current, with the room’s node set: the cascade takes the set from the answer, with no room-nodes poll', async () => {
    // The reconcile poll once an hour: the node set can only come from the join answer.
    const config = signalingConfig(router.url, { agentId: 'west-2', cascadeReconcileMs: 3_600_000 });
    const sfu = await AgentSfu.create(config);
    const polled: string[] = [];
    const cascaded = await buildAgent({ config, sfu, cascade: { rooms: sfu.rooms, roomNodes: async (ids) => (polled.push(...ids), new Map()) } });
    const url = await cascaded.controller.start();
    try {
      const nodes = [
        { nodeId: 'west-2', region: 'us-west', controlUrl: url, state: 'alive' as const },
        { nodeId: 'zz-1', region: 'eu-west', controlUrl: 'http://127.0.0.1:9', state: 'alive' as const },
      ];
      router.joinAnswer = { current: true, room: { version: 7, nodes } };
      const { socket } = await joinWith(url, { token: token({ room: 'room-linked', sub: 'dave', node: 'west-2' }).token });
      const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
      await ok(socket, 'join', { rtpCapabilities });
      await waitFor('the node set of the join answer held by the cascade', () => cascaded.cascade!.nodeSet('room-linked'), 5_000);
      expect(cascaded.cascade!.nodeSet('room-linked')).toEqual({ version: 7, nodes });
      expect(polled).not.toContain('room-linked');
      socket.disconnect();
    } finally {
      await cascaded.controller.close();
    }
  });
});
