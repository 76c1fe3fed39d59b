import { afterAll, beforeAll, expect, it } from 'vitest';
import type { GeoSfuRoom } from '../../sdk/index.ts';
import type { AllocateSfuResponse } from '../../shared/schemas/index.ts';
import type { Peer } from '../../sfu/index.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { directAllocation, joinWith, ok, type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, token, vp8Parameters, waitFor } from '../signaling/helpers.ts';
import { fakeMediaClient } from './helpers.ts';

/**
 * A session the SDK opens for a move (or a failover) is not the room's current one until it has
 * joined; a producer that appears on the new edge in between is announced only by a `newProducer`
 * event in that window. The SDK must still consume it. Here the new edge holds the mover's
 * transports in the SFU while another participant publishes there, then lets them go.
 */
let router: SignalingRouter;
let west1: RunningAgent;
let west2: RunningAgent;
const agents = new SfuAgents();
const rooms: GeoSfuRoom[] = [];

beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  west1 = await agents.start(signalingConfig(router.url));
  west2 = await agents.start(signalingConfig(router.url, { agentId: 'west-2' }));
}, 60_000);
afterAll(async () => {
  await Promise.all(rooms.map((r) => r.leave().catch(() => undefined)));
  await agents.closeAll();
  await router.close();
});

/** An allocation on west-2 (directAllocation's tokens name west-1). */
function onWest2(roomId: string, participantId: string): AllocateSfuResponse {
  const { token: joinToken, claims } = token({ room: roomId, sub: participantId, node: 'west-2' });
  const base = directAllocation(west2.url, roomId, participantId);
  return { ...base, allocationId: claims.aid, node: { ...base.node, id: 'west-2' }, token: joinToken };
}

it('a producer announced while a move is joining the new edge is consumed once the move is done', async () => {
  const roomId = 'sdk-move-events';
  const added: string[] = [];
  const bob = await fakeMediaClient(router.url).join({
    allocation: directAllocation(west1.url, roomId, 'bob'),
    reallocate: async () => onWest2(roomId, 'bob'),
    on: { trackAdded: (t) => added.push(t.producerId) },
  });
  rooms.push(bob);
  // On west-2, bob's transports wait in the SFU until dana has published there.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let bobJoinedThere = false;
  const watch = (room: { on: (e: 'peerjoined', l: (p: Peer) => void) => unknown }) =>
    room.on('peerjoined', (peer: Peer) => {
      if (peer.id !== 'bob') return;
      bobJoinedThere = true;
      const make = peer.createWebRtcTransport.bind(peer);
      peer.createWebRtcTransport = async (options) => {
        await held;
        return make(options);
      };
    });
  west2.sfu.rooms.on('roomcreated', watch);

  expect(west1.signaling!.requestMove(roomId, 'bob', bob.edge.allocationId)).toBe(true);
  await waitFor('bob joined on west-2 (its transports held)', () => bobJoinedThere, 10_000);

  const { socket: dana } = await joinWith(west2.url, { token: onWest2(roomId, 'dana').token });
  const { rtpCapabilities } = await ok(dana, 'getRouterRtpCapabilities', {});
  await ok(dana, 'join', { rtpCapabilities });
  const send = await ok(dana, 'createWebRtcTransport', { direction: 'send' });
  const { producerId } = await ok(dana, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(7007) });
  release();
  await waitFor('bob on west-2', () => bob.edge.nodeId === 'west-2', 10_000);
  await waitFor("dana's video announced to bob", () => added.includes(producerId), 10_000);
  const bobPeer = west2.sfu.rooms.getRoom(roomId)!.getPeer('bob')!;
  expect([...bobPeer.consumers.values()].map((c) => c.producerId)).toContain(producerId);
  dana.close();
});
