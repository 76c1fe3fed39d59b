/**
 * A participant moving between nodes (rebalancing, drain: make-before-break) is for a while in a
 * room twice on one node: as a local peer, and as a remote peer whose producers arrive over the
 * region pipe from the node it is leaving (or going to). The other participants must see it stay:
 * when one of its two presences goes, only that presence's producers close; `peerLeft` is sent
 * only when it is gone from the room altogether (else an SDK drops the tracks of the presence that
 * stays, and never consumes them again).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegionPipe, RoomRouter, WorkerPool, type Peer } from '../../sfu/index.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { vp8RtpParameters } from '../sfu/helpers/rtp.ts';
import { SfuAgents, type RunningAgent, type SignalingRouter, joinWith, ok, recordEvents, signalingConfig, startSignalingRouter, token, vp8Parameters, waitFor } from './helpers.ts';

const ROOM = 'room-move';
let router: SignalingRouter;
const agents = new SfuAgents();
let farPool: WorkerPool;
let far: RoomRouter;
beforeEach(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  farPool = await WorkerPool.create({ numWorkers: 1 });
  far = new RoomRouter({ pool: farPool, spread: false });
});
afterEach(async () => {
  await agents.closeAll();
  far.close();
  farPool.close();
  await router.close();
});

/** The cascade between the agent's room and the far node's, one pipe each way (what region-agent/cascade/ does over HTTP). */
async function link(agent: RunningAgent) {
  const here = { nodeId: 'west-1', region: 'us-west' };
  const there = { nodeId: 'east-1', region: 'us-east' };
  const near = await RegionPipe.create(agent.sfu.rooms.getRoom(ROOM)!, { local: here, remote: there, listenIp: '127.0.0.1', enableSrtp: false });
  // A participant of the far node's own keeps its room open while y comes and goes there.
  await far.join(ROOM, 'far-watcher');
  const away = await RegionPipe.create(far.getRoom(ROOM)!, { local: there, remote: here, listenIp: '127.0.0.1', enableSrtp: false });
  await near.connect(away.localEndpoint);
  await away.connect(near.localEndpoint);
  const sync = async () => {
    await near.importState(await away.exportState());
    await away.importState(await near.exportState());
  };
  return {
    // A producer's close reaches its pipe consumer as a worker notification, after close() returns:
    // the cascade pushes the changed export then; here the test exchanges exports until `done`.
    syncUntil: async (what: string, done: () => boolean) => {
      const deadline = performance.now() + 5_000;
      for (await sync(); !done(); await sync()) {
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** A participant on the far node publishing video. */
async function publishFar(peerId: string, ssrc: number): Promise<Peer> {
  const peer = await far.join(ROOM, peerId);
  const transport = await peer.createWebRtcTransport();
  await peer.produce({ transportId: transport.id, kind: 'video', rtpParameters: vp8RtpParameters(ssrc) });
  return peer;
}

/** A participant on the agent, joined with a recv transport (and publishing video when `ssrc` is given). */
async function joinHere(agent: RunningAgent, sub: string, ssrc?: number) {
  const { socket } = await joinWith(agent.url, { token: token({ room: ROOM, sub }).token });
  const events = recordEvents(socket);
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  const recv = await ok(socket, 'createWebRtcTransport', { direction: 'recv' });
  let producerId: string | undefined;
  if (ssrc !== undefined) {
    const send = await ok(socket, 'createWebRtcTransport', { direction: 'send' });
    ({ producerId } = await ok(socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8Parameters(ssrc) }));
  }
  return { socket, events, recv: recv.transportId, producerId };
}

const peerLefts = (events: Array<{ event: string; msg: unknown }>) => {
  const left = events.filter((e) => e.event === 'peerLeft');
  return left.length > 0 ? left : undefined;
};

describe('a participant in a room twice on one node while it moves', () => {
  it('moving here: the far presence going closes its producers only; watchers keep consuming the local one; `peerLeft` once it leaves for good', async () => {
    const agent = await agents.start(signalingConfig(router.url));
    const x = await joinHere(agent, 'x');
    const { syncUntil } = await link(agent);

    // y on the far node: x sees it through the pipe and consumes it.
    const farY = await publishFar('y', 3001);
    await syncUntil('y piped here', () => agent.sfu.rooms.getRoom(ROOM)!.remotePeers.has('y'));
    const pipedIn = await waitFor('x told of y’s piped video', () => x.events.find((e) => e.event === 'newProducer' && (e.msg as { peerId: string }).peerId === 'y'));
    const piped = pipedIn.msg as { producerId: string; region: string };
    expect(piped.region).toBe('us-east');
    await ok(x.socket, 'consume', { transportId: x.recv, producerId: piped.producerId });

    // y moves here: joins and publishes before it leaves the far node (make-before-break).
    const y = await joinHere(agent, 'y', 3002);
    await waitFor('x told of y’s local video', () => x.events.some((e) => e.event === 'newProducer' && (e.msg as { producerId: string }).producerId === y.producerId));
    await ok(x.socket, 'consume', { transportId: x.recv, producerId: y.producerId! });
    expect(agent.sfu.rooms.getRoom(ROOM)!.remotePeers.has('y')).toBe(true);

    farY.close();
    await syncUntil('y’s far presence gone here', () => !agent.sfu.rooms.getRoom(ROOM)!.remotePeers.has('y'));
    await waitFor('x told the piped video closed', () => x.events.some((e) => (e.event === 'producerClosed' || e.event === 'consumerClosed') && (e.msg as { producerId: string }).producerId === piped.producerId));
    // Events reach x in order: anything sent about the far presence is in by now.
    await ok(x.socket, 'getRouterRtpCapabilities', {});
    expect(x.events.filter((e) => e.event === 'peerLeft')).toEqual([]);

    // y leaves for good: now x hears it.
    await ok(y.socket, 'leave', {});
    const left = await waitFor('x told y left', () => peerLefts(x.events));
    expect(left.map((e) => e.msg)).toEqual([{ peerId: 'y' }]);
    y.socket.close();
    x.socket.close();
  });

  it('moving away: the local presence leaving while the far one publishes sends no `peerLeft`; the far one going does', async () => {
    const agent = await agents.start(signalingConfig(router.url));
    const x = await joinHere(agent, 'x');
    const y = await joinHere(agent, 'y', 3003);
    const { syncUntil } = await link(agent);

    // y moves to the far node: publishes there first, then leaves here.
    const farY = await publishFar('y', 3004);
    await syncUntil('y piped here', () => agent.sfu.rooms.getRoom(ROOM)!.remotePeers.has('y'));
    await waitFor('x told of y’s piped video', () => x.events.some((e) => e.event === 'newProducer' && (e.msg as { region: string }).region === 'us-east'));
    await ok(y.socket, 'leave', {});
    await waitFor('x told y’s local video closed', () => x.events.some((e) => e.event === 'producerClosed' && (e.msg as { producerId: string }).producerId === y.producerId));
    await ok(x.socket, 'getRouterRtpCapabilities', {});
    expect(x.events.filter((e) => e.event === 'peerLeft')).toEqual([]);

    farY.close();
    await syncUntil('y’s far presence gone here', () => !agent.sfu.rooms.getRoom(ROOM)!.remotePeers.has('y'));
    const left = await waitFor('x told y left', () => peerLefts(x.events));
    expect(left.map((e) => e.msg)).toEqual([{ peerId: 'y' }]);
    y.socket.close();
    x.socket.close();
  });
});
