import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { SfuAgents, type SignalingRouter, joinWith, ok, recordEvents, sfuCounts, signalingConfig, startSignalingRouter, token, waitFor } from './helpers.ts';

let router: SignalingRouter;
const agents = new SfuAgents();
beforeEach(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
});
afterEach(async () => {
  await agents.closeAll();
  await router.close();
});

const vp8 = (ssrc: number) => ({ codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc }] });

describe('signaling lifecycle', () => {
  it('worker SIGKILL: its clients get `moved` (worker_died) and are disconnected, the router hears `left`, the pool replaces the worker', async () => {
    const agent = await agents.start(signalingConfig(router.url));
    const clients = await Promise.all(
      ['alice', 'bob'].map(async (sub) => {
        const { socket } = await joinWith(agent.url, { token: token({ room: 'room-kill', sub }).token });
        const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
        await ok(socket, 'join', { rtpCapabilities });
        await ok(socket, 'createWebRtcTransport', { direction: 'send' });
        return { socket, events: recordEvents(socket), disconnected: new Promise<string>((resolve) => socket.once('disconnect', resolve)) };
      }),
    );
    const replaced = new Promise<number>((resolve) => agent.sfu.pool.once('workerreplaced', ({ worker }) => resolve(worker.pid)));
    const oldPid = agent.sfu.pool.workers[0]!.pid;
    const killedAt = performance.now();
    process.kill(oldPid, 'SIGKILL');

    for (const c of clients) {
      expect(await c.disconnected).toBe('io server disconnect');
      expect(c.events.filter((e) => e.event === 'moved').map((e) => e.msg)).toEqual([{ reason: 'worker_died', excludeNodeIds: [] }]);
    }
    const movedMs = Math.max(...clients.map((c) => c.events.find((e) => e.event === 'moved')!.at)) - killedAt;
    const newPid = await replaced;
    console.log(`moved reached both clients ${movedMs.toFixed(0)} ms after SIGKILL; worker ${oldPid} replaced by ${newPid}`);
    expect(newPid).not.toBe(oldPid);
    await waitFor('left reported for both', () => router.participantEvents.filter((e) => e.event === 'left').length === 2);
    expect(agent.signaling?.sessionCount).toBe(0);
    // Load gauges are as of the last heartbeat: one may have run between the death and the replacement.
    await waitFor('a heartbeat that counts the replacement', () => agent.controller.load.workers === 1);
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    expect(metrics).toMatch(/^geo_sfu_agent_worker_deaths_total\{[^}]*\} 1$/m);
    expect(metrics).toMatch(/^geo_sfu_agent_workers\{[^}]*\} 1$/m);

    // The replaced worker serves new rooms.
    const { socket } = await joinWith(agent.url, { token: token({ room: 'room-kill', sub: 'carol' }).token });
    const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
    await ok(socket, 'join', { rtpCapabilities });
    expect(agent.sfu.rooms.getRoom('room-kill')?.routers[0]?.worker.pid).toBe(newPid);
    socket.close();
  });

  it('drain: clients get `moved` (draining, excluding this node) before the deadline; new tokens are refused', async () => {
    // `moved` is due a fifth of the deadline before it; the deadline leaves a loaded machine a second for that.
    const drainDeadlineMs = 5_000;
    const movedDueMs = drainDeadlineMs - drainDeadlineMs / 5;
    const agent = await agents.start(signalingConfig(router.url, { drainDeadlineMs }));
    await waitFor('registered', () => agent.controller.ready);
    const { socket } = await joinWith(agent.url, { token: token({ room: 'room-drain', sub: 'alice' }).token });
    const events = recordEvents(socket);
    const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
    await ok(socket, 'join', { rtpCapabilities });
    const startedAt = performance.now();
    let drainedAt: number | null = null;
    const drained = agent.controller.drain().then(() => (drainedAt = performance.now()));
    await waitFor('draining', () => agent.controller.draining);
    const refused = await joinWith(agent.url, { token: token({ room: 'room-drain', sub: 'bob' }).token }).catch((e: Error) => e.message);
    expect(refused).toMatch(/DRAINING/);
    const moved = await waitFor('moved', () => events.find((e) => e.event === 'moved'), 2 * drainDeadlineMs);
    expect(moved.msg).toEqual({ reason: 'draining', excludeNodeIds: ['west-1'] });
    const movedAfterMs = moved.at - startedAt;
    console.log(`drain deadline ${drainDeadlineMs} ms: moved due after ${movedDueMs} ms, sent after ${movedAfterMs.toFixed(0)} ms`);
    // Not before it is due (timers round to the millisecond), and while the drain still waits: the
    // client has until the deadline to leave.
    expect(movedAfterMs).toBeGreaterThanOrEqual(movedDueMs - 1);
    expect(drainedAt).toBeNull();
    // The client migrates: it leaves, the agent empties and finishes its drain only then.
    const leavingAt = performance.now();
    await ok(socket, 'leave', {});
    await drained;
    expect(drainedAt!).toBeGreaterThanOrEqual(leavingAt);
    expect(router.participantEvents.map((e) => e.event)).toEqual(['joined', 'left']);
  });

  it('heartbeats carry per-participant quality; the router’s alerts reach the affected client as `quality`', async () => {
    const agent = await agents.start(signalingConfig(router.url));
    const a = await joinWith(agent.url, { token: token({ room: 'room-q', sub: 'alice' }).token });
    const b = await joinWith(agent.url, { token: token({ room: 'room-q', sub: 'bob' }).token });
    const aEvents = recordEvents(a.socket);
    const bEvents = recordEvents(b.socket);
    for (const s of [a.socket, b.socket]) {
      const { rtpCapabilities } = await ok(s, 'getRouterRtpCapabilities', {});
      await ok(s, 'join', { rtpCapabilities });
      await ok(s, 'createWebRtcTransport', { direction: 'send' });
    }
    const hb = await waitFor('a heartbeat with quality', () => router.heartbeats.find((h) => (h.quality?.length ?? 0) === 2));
    expect(hb.quality!.map((q) => q.participantId)).toEqual(['alice', 'bob']);
    expect(hb.quality![0]).toEqual({ roomId: 'room-q', participantId: 'alice', packetLoss: 0, rttMs: null, jitterMs: null, bitrateBps: expect.any(Number), inBps: expect.any(Number), outBps: expect.any(Number) });
    expect(hb.media).toEqual({ inBps: expect.any(Number), outBps: expect.any(Number), links: [] });

    router.alerts = [{ roomId: 'room-q', participantId: 'bob', region: 'us-west', nodeId: 'west-1', kind: 'packet_loss', value: 0.12, threshold: 0.05, since: new Date().toISOString() }];
    const q = await waitFor('bob told about his quality', () => bEvents.find((e) => e.event === 'quality'), 3_000);
    expect(q.msg).toMatchObject({ peerId: 'bob', packetLoss: 0.12 });
    await new Promise((r) => setTimeout(r, 600)); // several heartbeats with the same alert
    expect(bEvents.filter((e) => e.event === 'quality')).toHaveLength(1);
    expect(aEvents.filter((e) => e.event === 'quality')).toHaveLength(0);
    a.socket.close();
    b.socket.close();
  });

  it('a `leave` followed at once by the connection closing (a closed tab) ends the session at once; a dropped connection is reported reconnecting until the grace ends', { timeout: 60_000 }, async () => {
    const resumeGraceMs = 30_000;
    const agent = await agents.start(signalingConfig(router.url, { resumeGraceMs }));
    const joined = await Promise.all(
      ['alice', 'bob'].map(async (sub) => {
        const { socket } = await joinWith(agent.url, { token: token({ room: 'room-gone', sub }).token });
        const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
        await ok(socket, 'join', { rtpCapabilities });
        return socket;
      }),
    );
    const [alice, bob] = joined as [typeof joined[number], typeof joined[number]];
    await waitFor('both joined', () => router.participantEvents.filter((e) => e.event === 'joined').length === 2);

    // What a tab's pagehide does: `leave` sent, and the connection gone before any answer, here
    // while an earlier request still runs (a transport being made, held in the SFU until alice is
    // reported left): it leaves at once, not after the grace and not when the request ahead ends.
    const alicePeer = agent.sfu.rooms.getRoom('room-gone')!.peers.get('alice')!;
    const makeTransport = alicePeer.createWebRtcTransport.bind(alicePeer);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let transportAsked = false;
    let transportSettled: string | null = null;
    alicePeer.createWebRtcTransport = async (options) => {
      transportAsked = true;
      await held;
      return makeTransport(options).then(
        (t) => ((transportSettled = 'made'), t),
        (err: Error) => {
          transportSettled = err.message;
          throw err;
        },
      );
    };
    alice.emit('createWebRtcTransport', { direction: 'recv' }, () => undefined);
    await waitFor('the transport request running in the SFU', () => transportAsked);
    const closedAt = performance.now();
    alice.emit('leave', {}, () => undefined);
    alice.io.engine.close();
    // "At once" means well before the grace: half of it leaves room for a loaded machine and still
    // fails a session that waited for the grace or for the request ahead.
    await waitFor('alice reported left', () => router.participantEvents.some((e) => e.event === 'left' && e.participantId === 'alice'), resumeGraceMs / 2);
    console.log(`leave + close with a request ahead: left reported after ${(performance.now() - closedAt).toFixed(0)} ms (resume grace ${resumeGraceMs} ms)`);
    // The held transport is then made for a closed peer: refused, and nothing of it left in the worker.
    expect(alicePeer.closed).toBe(true);
    release();
    expect(await waitFor('the held transport request settled', () => transportSettled)).toMatch(/peer alice (is closed|closed while creating a transport)/);
    expect((await sfuCounts(agent)).transports).toBe(0);
    expect(agent.signaling?.sessionCount).toBe(1);

    // Bob's connection drops without a word: his session waits for a resume, and says so.
    const droppedAt = performance.now();
    bob.io.engine.close();
    const hb = await waitFor('a heartbeat with bob reconnecting', () => router.heartbeats.find((h) => h.reconnecting?.some((r) => r.participantId === 'bob')), resumeGraceMs / 3);
    console.log(`dropped connection reported reconnecting after ${(performance.now() - droppedAt).toFixed(0)} ms`);
    expect(hb.reconnecting).toEqual([{ roomId: 'room-gone', participantId: 'bob', forMs: expect.any(Number) }]);
    expect(hb.reconnecting![0]!.forMs).toBeLessThan(resumeGraceMs);
    expect(router.participantEvents.some((e) => e.event === 'left' && e.participantId === 'bob')).toBe(false);
    expect(agent.signaling?.sessionCount).toBe(1);
  });

  it('no leak after many join/leave cycles (transports, producers, consumers, routers back to zero)', async () => {
    const agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 0 }));
    const cycles = 25;
    const startedAt = performance.now();
    for (let i = 0; i < cycles; i++) {
      const peers = await Promise.all(
        ['a', 'b'].map(async (sub) => {
          const { socket } = await joinWith(agent.url, { token: token({ room: `room-leak-${i % 3}`, sub: `${sub}${i}` }).token });
          const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
          await ok(socket, 'join', { rtpCapabilities });
          const send = await ok(socket, 'createWebRtcTransport', { direction: 'send' });
          const recv = await ok(socket, 'createWebRtcTransport', { direction: 'recv' });
          const { producerId } = await ok(socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8(1000 + i * 2 + (sub === 'a' ? 0 : 1)) });
          return { socket, recv: recv.transportId, producerId };
        }),
      );
      await ok(peers[0]!.socket, 'consume', { transportId: peers[0]!.recv, producerId: peers[1]!.producerId });
      await ok(peers[1]!.socket, 'consume', { transportId: peers[1]!.recv, producerId: peers[0]!.producerId });
      // One leaves properly, the other just drops (grace 0: ended at once).
      await ok(peers[0]!.socket, 'leave', {});
      peers[1]!.socket.close();
    }
    await waitFor('all sessions ended', () => agent.signaling?.sessionCount === 0, 5_000);
    await waitFor('all rooms closed', () => agent.sfu.rooms.rooms.size === 0, 5_000);
    const counts = await sfuCounts(agent);
    console.log(`${cycles} cycles of 2 peers (2 transports, 1 producer, 1 consumer each) in ${(performance.now() - startedAt).toFixed(0)} ms; after: ${JSON.stringify(counts)}`);
    expect(counts).toEqual({ rooms: 0, peers: 0, transports: 0, producers: 0, consumers: 0, routers: 0, sessions: 0 });
    await waitFor('every left reported', () => router.participantEvents.filter((e) => e.event === 'left').length === 2 * cycles, 5_000);
    expect(router.participantEvents.filter((e) => e.event === 'joined')).toHaveLength(2 * cycles);
  });
});
