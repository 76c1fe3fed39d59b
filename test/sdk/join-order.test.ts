import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SfuAllocation } from '../../sdk/router-api.ts';
import type { Peer } from '../../sfu/index.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, directAllocation, waitFor } from '../signaling/helpers.ts';
import { fakeMediaClient } from './helpers.ts';
import { type Participant, startParticipant } from './participants.ts';

/**
 * A joiner gets the room's media without waiting on round trips it does not need (issue #21, time
 * to first frame), seen at the SFU in the order it creates the joiner's objects:
 * - protocol 1.2: its recv transport comes with consumers of the room's producers
 *   (`createWebRtcTransport { consumeAll }`), made before its send transport, which is asked for
 *   right behind it (with `consume` requests they would come after both transports);
 * - it resumes those consumers while it publishes, not after: publishing takes its own round trips
 *   (the send transport's connect, one `produce` per track).
 * - protocol 1.3: given the agent's RTP capabilities in the allocation, the join and both
 *   transports ride in the connection's handshake: the joiner emits none of them.
 * Real WebRTC participants (wrtc, child processes) against one agent with a stub router, as in
 * permissions.test.ts.
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

/**
 * Once `first` publishes its two tracks in `roomId`: the SFU objects of the peer `joiner`, in the
 * order the SFU makes them (transports, consumers, producers) and resumes its consumers.
 */
async function joinerObjects(roomId: string): Promise<string[]> {
  const room = await waitFor('the room', () => agent.sfu.rooms.getRoom(roomId), 30_000);
  await waitFor("first's two producers", () => room.getPeer('first')?.producers.size === 2, 30_000);
  const order: string[] = [];
  room.on('peerjoined', (peer: Peer) => {
    if (peer.id !== 'joiner') return;
    peer.observer.on('newtransport', (t) => order.push(`transport ${(t.appData as { direction?: string }).direction}`));
    peer.observer.on('newconsumer', (c) => {
      order.push(`consumer ${c.kind}`);
      c.observer.once('resume', () => order.push(`resume ${c.kind}`));
    });
    peer.observer.on('newproducer', (p) => order.push(`producer ${p.kind}`));
  });
  return order;
}

it("a publishing joiner's recv transport comes with the room's consumers, which it resumes before it has published", async () => {
  const roomId = 'sdk-join-order';
  const start = (id: string) => {
    const p = startParticipant({ routerUrl: router.url, roomId, participantId: id, allocation: directAllocation(agent.url, roomId, id), publish: true });
    participants.push(p);
    return p;
  };
  start('first');
  const order = await joinerObjects(roomId);
  const joiner = start('joiner');
  await waitFor("the joiner's transports, consumers (resumed) and producers", () => order.length === 8, 30_000);
  await joiner.waitFor('frames from first', (x) => (x.stats()?.framesDecoded ?? 0) > 0, 30_000);
  console.log(`the joiner's SFU objects in order: ${order.join(', ')}`);
  expect(order.filter((c) => c.startsWith('consumer')).sort()).toEqual(['consumer audio', 'consumer video']);
  expect(order.filter((c) => c.startsWith('producer')).sort()).toEqual(['producer audio', 'producer video']);
  const at = (what: string) => order.indexOf(what);
  const all = (prefix: string) => order.flatMap((c, i) => (c.startsWith(prefix) ? [i] : []));
  // Made with the recv transport: both consumers before the send transport.
  expect(Math.max(...all('consumer'))).toBeLessThan(at('transport send'));
  // Resumed while publishing: the first resume before the last producer.
  expect(Math.min(...all('resume'))).toBeLessThan(Math.max(...all('producer')));
});

it("with the agent's RTP capabilities in its allocation, a joiner joins and opens both transports within the connection's handshake", async () => {
  const roomId = 'sdk-join-handshake';
  const rtpCapabilities = (await agent.sfu.rooms.rtpCapabilities()) as unknown as NonNullable<SfuAllocation['node']['rtpCapabilities']>;
  const start = (id: string, withCapabilities: boolean) => {
    const allocation = directAllocation(agent.url, roomId, id);
    const p = startParticipant({ routerUrl: router.url, roomId, participantId: id, allocation: withCapabilities ? { ...allocation, node: { ...allocation.node, rtpCapabilities } } : allocation, publish: true });
    participants.push(p);
    return p;
  };
  // What each participant's connection emitted, as the agent received it.
  const emitted = new Map<string, string[]>();
  agent.signaling!.io.on('connection', (socket) => {
    const peerId = (socket.data as { claims?: { sub: string } }).claims?.sub ?? '?';
    emitted.set(peerId, []);
    socket.onAny((event: string) => emitted.get(peerId)!.push(event));
  });
  const first = start('first', false);
  const objects = await joinerObjects(roomId);
  const joiner = start('joiner', true);
  await joiner.waitFor('frames from first', (x) => (x.stats()?.framesDecoded ?? 0) > 0, 30_000);
  await first.waitFor('frames from the joiner', (x) => (x.stats()?.framesDecoded ?? 0) > 0, 30_000);
  const order = objects.filter((o) => !o.startsWith('resume'));
  console.log(`emitted by the joiner: ${emitted.get('joiner')!.join(', ')}; by first: ${emitted.get('first')!.join(', ')}; the joiner's SFU objects: ${order.join(', ')}`);
  // The old path asks for each; the handshake carried them.
  expect(emitted.get('first')).toEqual(expect.arrayContaining(['join', 'createWebRtcTransport']));
  expect(emitted.get('joiner')!.filter((e) => e === 'join' || e === 'createWebRtcTransport' || e === 'getRouterRtpCapabilities')).toEqual([]);
  expect(emitted.get('joiner')).toEqual(expect.arrayContaining(['connectTransport', 'produce']));
  // The recv transport with the room's consumers, then the send transport.
  expect(order[0]).toBe('transport recv');
  expect(order.filter((c) => c.startsWith('consumer')).sort()).toEqual(['consumer audio', 'consumer video']);
  expect(Math.max(order.indexOf('consumer audio'), order.indexOf('consumer video'))).toBeLessThan(order.indexOf('transport send'));
});

it('capabilities in the allocation that a Device cannot load fail the join with its error, and leave no session on the agent', async () => {
  const allocation = directAllocation(agent.url, 'sdk-join-bad-caps', 'bad-caps');
  const client = fakeMediaClient(router.url);
  const broken = { ...allocation, node: { ...allocation.node, rtpCapabilities: { codecs: [{ kind: 'video', mimeType: 'nothing/at-all', clockRate: 90000 }], headerExtensions: [] } } };
  const joined = client.join({ allocation: broken }).then(
    () => 'joined',
    (err: unknown) => (err as Error).message,
  );
  const outcome = await joined;
  console.log(`join with capabilities no Device loads: ${outcome}`);
  expect(outcome).not.toBe('joined');
  await waitFor('no session of the participant', () => agent.signaling!.sessionCount === 0 || !agent.signaling!.inventory().some((r) => r.roomId === 'sdk-join-bad-caps'), 5_000);
  expect(agent.sfu.rooms.getRoom('sdk-join-bad-caps')?.getPeer('bad-caps')).toBeUndefined();
});
