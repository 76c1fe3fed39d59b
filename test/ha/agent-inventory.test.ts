import { afterAll, beforeAll, expect, it } from 'vitest';
import { controlCall, ControlCallError, controlPlane } from '../../shared/control-plane.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { joinWith, ok, type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, token } from '../signaling/helpers.ts';

/**
 * The agent's inventory (the router's signed call, shared/control-plane.ts `inventory`): every
 * session it holds, by room, with the allocation its join token named and whether it joined. The
 * router reconciles Redis with it after a failover (test/ha/reconcile.test.ts).
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { heartbeatIntervalMs: 200 }));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});

it('answers the sessions it holds (joined or only connected) by room, to a call signed with the cluster secret only', async () => {
  const target = { secret: CLUSTER_SECRET, baseUrl: agent.url, timeoutMs: 5_000, nowMs: Date.now() };
  expect((await controlCall(controlPlane.inventory, target, null)).body).toEqual({ nodeId: agent.controller.nodeId, rooms: [] });

  const alice = token({ room: 'inv-room', sub: 'alice' });
  const bob = token({ room: 'inv-room', sub: 'bob' });
  const carol = token({ room: 'other-room', sub: 'carol' });
  const sockets = [];
  for (const t of [alice, bob, carol]) sockets.push((await joinWith(agent.url, { token: t.token })).socket);
  // alice and carol join their rooms; bob stays connected without joining.
  for (const i of [0, 2]) {
    const { rtpCapabilities } = await ok(sockets[i]!, 'getRouterRtpCapabilities', {});
    await ok(sockets[i]!, 'join', { rtpCapabilities });
  }
  const { body } = await controlCall(controlPlane.inventory, { ...target, nowMs: Date.now() }, null);
  const rooms = Object.fromEntries(body.rooms.map((r) => [r.roomId, [...r.participants].sort((a, b) => a.participantId.localeCompare(b.participantId))]));
  expect(body.nodeId).toBe(agent.controller.nodeId);
  expect(rooms).toEqual({
    'inv-room': [
      { participantId: 'alice', allocationId: alice.claims.aid, joined: true },
      { participantId: 'bob', allocationId: bob.claims.aid, joined: false },
    ],
    'other-room': [{ participantId: 'carol', allocationId: carol.claims.aid, joined: true }],
  });
  for (const s of sockets) s.disconnect();

  // Another secret: refused.
  await expect(controlCall(controlPlane.inventory, { ...target, secret: 'x'.repeat(40), nowMs: Date.now() }, null)).rejects.toThrow(ControlCallError);
  const unsigned = await signedCall({ secret: 'y'.repeat(40), baseUrl: agent.url, method: 'POST', path: controlPlane.inventory.path, body: null, timeoutMs: 5_000 });
  expect(unsigned.statusCode).toBe(401);
});
