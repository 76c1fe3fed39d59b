import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Peer } from '../../sfu/index.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, directAllocation, waitFor } from '../signaling/helpers.ts';
import { type Participant, startParticipant } from './participants.ts';

/**
 * A joiner that publishes consumes the others' streams while it publishes its own, not after
 * (issue #21, time to first frame): publishing costs round trips of its own (the send transport's
 * connect, one `produce` per track) that must not delay the first remote frame. Seen at the SFU:
 * the joiner's first consumer exists before its first producer. Real WebRTC participants (wrtc,
 * child processes) against one agent with a stub router, as in permissions.test.ts.
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
const participants: Participant[] = [];

beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 0 }));
}, 60_000);
afterAll(async () => {
  await Promise.all(participants.map((p) => p.stop()));
  await agents.closeAll();
  await router.close();
});

it("a publishing joiner's consumes of the room's streams reach the SFU before its own produces", async () => {
  const roomId = 'sdk-join-order';
  const start = (id: string) => {
    const p = startParticipant({ routerUrl: router.url, roomId, participantId: id, allocation: directAllocation(agent.url, roomId, id), publish: true });
    participants.push(p);
    return p;
  };
  start('first');
  const room = await waitFor('the room', () => agent.sfu.rooms.getRoom(roomId), 30_000);
  await waitFor("first's two producers", () => room.getPeer('first')?.producers.size === 2, 30_000);
  // The joiner's SFU objects, in the order the SFU created them.
  const created: string[] = [];
  room.on('peerjoined', (peer: Peer) => {
    if (peer.id !== 'joiner') return;
    peer.observer.on('newconsumer', (c) => created.push(`consume ${c.kind}`));
    peer.observer.on('newproducer', (p) => created.push(`produce ${p.kind}`));
  });
  const joiner = start('joiner');
  await waitFor("the joiner's two consumers and two producers", () => created.length === 4, 30_000);
  await joiner.waitFor('frames from first', (x) => (x.stats()?.framesDecoded ?? 0) > 0, 30_000);
  console.log(`the joiner's SFU objects in creation order: ${created.join(', ')}`);
  expect(created.filter((c) => c.startsWith('consume')).sort()).toEqual(['consume audio', 'consume video']);
  expect(created.filter((c) => c.startsWith('produce')).sort()).toEqual(['produce audio', 'produce video']);
  expect(created[0]).toMatch(/^consume/);
});
