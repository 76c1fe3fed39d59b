import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrant } from '../../sdk/server.ts';
import { GeoSfuClientError, type GeoSfuRoom, type RoomEvents } from '../../sdk/index.ts';
import { waitForNodeAlive, type Cluster, fakeMediaClient, fakeTrack, GRANT_AUDIENCE, GRANT_KEY, startCluster, waitFor } from './helpers.ts';

/**
 * The SDK against the embedded default (router + one agent per region, real SFUs and socket.io
 * signaling) with the sample WAN profile (client RTTs us-west 20, us-east 75, eu-west 140, apac
 * 175 ms) and grants required at /allocate. Media here goes through mediasoup-client's FakeHandler
 * (real signaling, producers and consumers on the SFU, no ICE/DTLS); media.test.ts does real
 * WebRTC with wrtc in child processes.
 */
let cluster: Cluster;
// The agent tells clients to move min(5 s, deadline / 5) before its drain deadline: 4 s here, time
// enough for a make-before-break move on a loaded machine, so an exit before the deadline shows the
// agent emptied (a deadline exit comes at the deadline).
const DRAIN_DEADLINE_MS = 20_000;
const rooms: GeoSfuRoom[] = [];

const grant = (roomId: string, participantId: string) =>
  createGrant({ key: GRANT_KEY, issuer: 'sdk-test-app', audience: GRANT_AUDIENCE, roomId, participantId, ttlSeconds: 600, nowMs: Date.now() });

beforeAll(async () => {
  // A short drain deadline: `moved` comes at deadline − min(5 s, deadline / 5) after SIGTERM.
  cluster = await startCluster({ GEO_SFU_DRAIN_DEADLINE_MS: String(DRAIN_DEADLINE_MS) });
}, 90_000);
afterAll(async () => {
  await Promise.all(rooms.map((r) => r.leave().catch(() => undefined)));
  await cluster?.embedded.close();
});

function record(room: GeoSfuRoom): Array<{ event: keyof RoomEvents; at: number; payload: unknown }> {
  const log: Array<{ event: keyof RoomEvents; at: number; payload: unknown }> = [];
  for (const event of ['participantJoined', 'participantLeft', 'trackAdded', 'trackRemoved', 'moved', 'reconnecting', 'reconnected', 'error', 'closed'] as const) {
    room.on(event, (payload) => log.push({ event, at: performance.now(), payload }));
  }
  return log;
}

describe('probeRegions and allocate', () => {
  it('measured RTTs follow the WAN profile’s clientRttMs and the allocation follows them', async () => {
    const client = fakeMediaClient(cluster.embedded.routerUrl);
    const result = await client.probeRegions({ samples: 7, timeoutMs: 5_000 });
    const profile = cluster.embedded.wanProfile!.clientRttMs!;
    const lines: string[] = [];
    for (const r of result.regions) {
      const expected = profile[r.region]!;
      lines.push(`${r.region}: median ${r.medianMs} ms, jitter ${r.jitterMs} ms, loss ${r.loss} (profile ${expected} ms, ${r.received}/${r.sent} samples)`);
      expect(r.loss).toBe(0);
      // Node's millisecond timers in the delay proxy can fire up to 1 ms early in each direction (174.98 ms seen for 175).
      expect(r.medianMs!).toBeGreaterThanOrEqual(expected - 2);
      // The same bound as the CLI's probe test on a shared machine (a loaded event loop adds to every sample).
      expect(r.medianMs!).toBeLessThan(expected * 1.25 + 40);
    }
    console.log(`SDK probe (fetch, 7 samples after a warm-up):\n${lines.join('\n')}`);
    expect(result.recommended).toBe('us-west');
    expect(Object.keys(result.latencies).sort()).toEqual(['apac', 'eu-west', 'us-east', 'us-west']);

    const allocation = await client.allocate('probe-room', 'alice', { grant: grant('probe-room', 'alice') });
    expect(allocation.rttSource).toBe('client');
    expect(allocation.mode === 'sfu' && allocation.region).toBe('us-west');
    expect(allocation.candidates.find((c) => c.region === 'us-west')!.clientRttMs).toBe(result.latencies['us-west']);
  }, 30_000);

  it('grants work end to end; no credential, a grant for another room or another participant are refused', async () => {
    const client = fakeMediaClient(cluster.embedded.routerUrl);
    const latencies = { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 };
    const ok = await client.allocate('granted', 'bob', { grant: grant('granted', 'bob'), latencies });
    expect(ok.roomId).toBe('granted');
    const refuse = async (o: Parameters<typeof client.allocate>[2]) => {
      const err = await client.allocate('granted', 'bob', { ...o, latencies }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GeoSfuClientError);
      return err as GeoSfuClientError;
    };
    const none = await refuse({});
    const otherRoom = await refuse({ grant: grant('other-room', 'bob') });
    const otherSub = await refuse({ grant: grant('granted', 'mallory') });
    const forged = await refuse({ grant: createGrant({ key: { kid: GRANT_KEY.kid, secret: 'x'.repeat(40) }, issuer: 'x', audience: GRANT_AUDIENCE, roomId: 'granted', participantId: 'bob', ttlSeconds: 60, nowMs: Date.now() }) });
    console.log(`refusals: none ${none.status} ${none.code}; other room ${otherRoom.status} ${otherRoom.code}; other participant ${otherSub.status} ${otherSub.code}; forged ${forged.status} ${forged.code}`);
    expect(none.status).toBe(401);
    expect([401, 403]).toContain(otherRoom.status);
    expect([401, 403]).toContain(otherSub.status);
    expect(forged.status).toBe(401);
    // The API key (server side) works too.
    const server = await client.allocate('granted', 'carol', { apiKey: cluster.embedded.credentials.apiKey, latencies });
    expect(server.participantId).toBe('carol');
  });
});

describe('join, publish, consume (FakeHandler)', () => {
  it('two participants on one edge see each other and each other’s tracks', async () => {
    const latencies = { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 };
    const [a, b] = [fakeMediaClient(cluster.embedded.routerUrl), fakeMediaClient(cluster.embedded.routerUrl)];
    const alice = await a.join({ allocation: await a.allocate('same-edge', 'alice', { grant: grant('same-edge', 'alice'), latencies }), tracks: [fakeTrack('audio'), fakeTrack('video')] });
    rooms.push(alice);
    const aliceLog = record(alice);
    // lastN (large rooms) is accepted by the agent's join and kept across edges.
    const bob = await b.join({ allocation: await b.allocate('same-edge', 'bob', { grant: grant('same-edge', 'bob'), latencies }), tracks: [fakeTrack('audio'), fakeTrack('video')], lastN: 4 });
    rooms.push(bob);
    expect(bob.edge.nodeId).toBe(alice.edge.nodeId);
    expect(bob.participants.map((p) => p.peerId)).toEqual(['alice']);
    expect(bob.remoteTracks.map((t) => `${t.peerId}:${t.kind}`).sort()).toEqual(['alice:audio', 'alice:video']);
    await waitFor('alice gets bob’s tracks', () => alice.remoteTracks.length === 2);
    expect(aliceLog.filter((e) => e.event === 'participantJoined').map((e) => (e.payload as { peerId: string }).peerId)).toEqual(['bob']);
    // Video is published with three simulcast encodings.
    const video = alice.producers.find((p) => p.kind === 'video')!;
    expect(video.rtpParameters.encodings?.length).toBe(3);

    await bob.leave();
    await waitFor('alice hears bob leave', () => aliceLog.some((e) => e.event === 'participantLeft'));
    expect(alice.remoteTracks).toEqual([]);
    expect(aliceLog.filter((e) => e.event === 'trackRemoved')).toHaveLength(2);
  });

  // ldn is far from every region but eu-west: a loaded machine inflates the measured inter-region
  // RTTs (seen: us-west↔eu-west 234 ms), and a nearer direct edge could beat the cascade.
  it('latencies put two participants on different edges', async () => {
    const a = fakeMediaClient(cluster.embedded.routerUrl);
    const b = fakeMediaClient(cluster.embedded.routerUrl);
    const sf = await a.allocate('two-edges', 'sf', { grant: grant('two-edges', 'sf'), latencies: { 'us-west': 10, 'us-east': 70, 'eu-west': 140, apac: 170 } });
    const ldn = await b.allocate('two-edges', 'ldn', { grant: grant('two-edges', 'ldn'), latencies: { 'us-west': 400, 'us-east': 400, 'eu-west': 5, apac: 400 } });
    if (sf.mode !== 'sfu' || ldn.mode !== 'sfu') throw new Error('expected SFU allocations');
    expect([sf.region, ldn.region], JSON.stringify({ reasons: ldn.reasons, candidates: ldn.candidates })).toEqual(['us-west', 'eu-west']);
    const sfRoom = await a.join({ allocation: sf, tracks: [fakeTrack('audio')] });
    const ldnRoom = await b.join({ allocation: ldn, tracks: [fakeTrack('audio')] });
    rooms.push(sfRoom, ldnRoom);
    expect(sfRoom.edge.region).toBe('us-west');
    expect(ldnRoom.edge.region).toBe('eu-west');
    // Through the cascade each sees the other and consumes the other's track, piped from its region.
    const seen = await Promise.all([
      waitFor('sf consumes ldn', () => sfRoom.remoteTracks.find((t) => t.peerId === 'ldn'), 15_000),
      waitFor('ldn consumes sf', () => ldnRoom.remoteTracks.find((t) => t.peerId === 'sf'), 15_000),
    ]);
    // Known agent-side issue: piped producers are announced with the consuming edge's region (see the report).
    console.log(`cross-edge: sf sees ldn's track (announced region ${seen[0].region}) and participants ${JSON.stringify(sfRoom.participants)}; ldn sees sf's (announced region ${seen[1].region}) and ${JSON.stringify(ldnRoom.participants)}`);
    expect(sfRoom.participants.map((p) => p.peerId)).toEqual(['ldn']);
    expect(ldnRoom.participants.map((p) => p.peerId)).toEqual(['sf']);
  }, 30_000);
});

describe('failures', () => {
  it('a killed agent: the SDK allocates elsewhere (excluding it), rejoins and republishes; the other side gets the new tracks', async () => {
    const { embedded } = cluster;
    const SF = { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 };
    const NEW_YORK = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };
    const SINGAPORE = { 'us-west': 180, 'us-east': 240, 'eu-west': 170, apac: 5 };
    // Far from every region but eu-west: a loaded machine's inflated inter-region RTTs (seen: 234 ms
    // us-west↔eu-west) must not make a direct far edge beat eu-west through the cascade.
    const LONDON = { 'us-west': 400, 'us-east': 400, 'eu-west': 5, apac: 400 };
    // Rounds 0–2: alice (us-west, us-east, apac: a different agent each time, so that no round
    // depends on an agent restarted by an earlier one) and bob (eu-west) on different edges;
    // alice's agent is killed. Round 3: both on the killed agent.
    const plan = [
      { alice: SF, bob: LONDON, regions: ['us-west', 'eu-west'] },
      { alice: NEW_YORK, bob: LONDON, regions: ['us-east', 'eu-west'] },
      { alice: SINGAPORE, bob: LONDON, regions: ['apac', 'eu-west'] },
      { alice: SF, bob: SF, regions: ['us-west', 'us-west'] },
    ];
    const gaps: number[] = [];
    for (const [round, p] of plan.entries()) {
      const roomId = `kill-${round}`;
      const sameEdge = round === 3;
      const a = fakeMediaClient(embedded.routerUrl);
      const b = fakeMediaClient(embedded.routerUrl);
      // Alice's grant comes from a function (a fresh one per /allocate, as a backend call would give).
      let aliceGrants = 0;
      const aliceGrant = () => (aliceGrants++, grant(roomId, 'alice'));
      const errors: string[] = [];
      const on = (who: string) => ({ error: ({ error }: RoomEvents['error']) => errors.push(`${who}: ${error.message}`) });
      const alice = await a.join({ allocation: await a.allocate(roomId, 'alice', { grant: aliceGrant, latencies: p.alice }), tracks: [fakeTrack('audio'), fakeTrack('video')], on: on('alice') });
      const bob = await b.join({ allocation: await b.allocate(roomId, 'bob', { grant: grant(roomId, 'bob'), latencies: p.bob }), tracks: [fakeTrack('audio')], on: on('bob') });
      rooms.push(alice, bob);
      expect([alice.edge.region, bob.edge.region]).toEqual(p.regions);
      await waitFor('both consuming', () => alice.remoteTracks.length === 1 && bob.remoteTracks.length === 2).catch((err: Error) => {
        throw new Error(`${err.message}: alice has ${JSON.stringify(alice.remoteTracks.map((t) => `${t.peerId}:${t.kind}`))}, participants ${JSON.stringify(alice.participants)}; bob has ${JSON.stringify(bob.remoteTracks.map((t) => `${t.peerId}:${t.kind}`))}, participants ${JSON.stringify(bob.participants)}; errors ${JSON.stringify(errors)}`);
      });
      const aliceLog = record(alice);
      const bobLog = record(bob);
      const killed = alice.edge.nodeId;
      const agent = embedded.agents.find((x) => x.nodeId === killed)!;
      const aliceBack = alice.next('reconnected', () => true, 20_000);
      const killedAt = performance.now();
      agent.process.kill('SIGKILL');
      const back = (await aliceBack.catch((err: Error) => {
        throw new Error(`${err.message}; alice: ${JSON.stringify(aliceLog.map((e) => [e.event, String((e.payload as { error?: Error }).error ?? '')]))}`);
      })) as RoomEvents['reconnected'];
      // Media back: alice consumes bob's producer on her new edge, bob consumes alice's new producers.
      const aliceProducers = () => new Set(alice.localProducers.map((p) => p.producerId));
      await waitFor('alice consumes bob again', () => alice.remoteTracks.length === 1 && alice.remoteTracks[0]!.consumer?.closed === false, 10_000);
      await waitFor('bob consumes alice’s new producers', () => bob.remoteTracks.filter((t) => aliceProducers().has(t.producerId)).length === 2, 10_000);
      const gap = performance.now() - killedAt;
      gaps.push(gap);
      console.log(
        `round ${round}${sameEdge ? ' (same edge)' : ''}: killed ${killed}; alice → ${back.edge.nodeId} (reconnected ${back.gapMs} ms after the drop), bob on ${bob.edge.nodeId}; both consuming again ${Math.round(gap)} ms after the kill; alice: ${aliceLog.map((e) => e.event).join(',')}; bob: ${bobLog.map((e) => e.event).join(',')}${errors.length ? `; errors ${errors.join(' | ')}` : ''}`,
      );
      expect(back.resumed).toBe(false);
      expect(back.edge.nodeId).not.toBe(killed);
      expect(bob.edge.nodeId).not.toBe(killed);
      expect(aliceGrants).toBe(2);
      if (sameEdge) expect(bobLog.some((e) => e.event === 'reconnected')).toBe(true);
      else expect(bobLog.some((e) => e.event === 'reconnecting')).toBe(false);
      await alice.leave();
      await bob.leave();
      await embedded.restartAgent(killed);
      await waitForNodeAlive(embedded.routerUrl, killed);
    }
    const sorted = gaps.slice(0, 3).sort((x, y) => x - y);
    console.log(`kill → both consuming again (alice and bob in different regions): p50 ${Math.round(sorted[1]!)} ms (${gaps.map(Math.round).join(', ')})`);
    expect(sorted[1]!).toBeLessThan(5_000);
  }, 150_000);

  it('a draining agent sends `moved`: the SDK joins and publishes on another edge before leaving the old one', async () => {
    const { embedded } = cluster;
    const latencies = { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 };
    const roomId = 'drain';
    const a = fakeMediaClient(embedded.routerUrl);
    const b = fakeMediaClient(embedded.routerUrl);
    const alice = await a.join({ allocation: await a.allocate(roomId, 'alice', { grant: grant(roomId, 'alice'), latencies }), tracks: [fakeTrack('audio'), fakeTrack('video')] });
    const bob = await b.join({ allocation: await b.allocate(roomId, 'bob', { grant: grant(roomId, 'bob'), latencies }), tracks: [fakeTrack('audio')] });
    rooms.push(alice, bob);
    const aliceLog = record(alice);
    const drained = alice.edge.nodeId;
    const agent = embedded.agents.find((x) => x.nodeId === drained)!;
    const exited = new Promise<number>((resolve) => agent.process.once('exit', () => resolve(performance.now())));
    const aliceBack = alice.next('reconnected', () => true, DRAIN_DEADLINE_MS + 10_000);
    const bobBack = bob.next('reconnected', () => true, DRAIN_DEADLINE_MS + 10_000);
    const termAt = performance.now();
    agent.process.kill('SIGTERM');
    const [back] = await Promise.all([aliceBack, bobBack]);
    const moved = aliceLog.find((e) => e.event === 'moved')!;
    expect(moved.payload).toMatchObject({ reason: 'draining', excludeNodeIds: [drained] });
    // Make-before-break: no disconnect/reconnecting before the new edge was joined and published.
    expect(aliceLog.map((e) => e.event).filter((e) => e === 'reconnecting' || e === 'moved' || e === 'reconnected')).toEqual(['moved', 'reconnecting', 'reconnected']);
    expect(back.resumed).toBe(false);
    expect(back.edge.nodeId).not.toBe(drained);
    expect(alice.localProducers.every((p) => p.producerId !== null)).toBe(true);
    await waitFor('both consuming on the new edge', () => alice.remoteTracks.length === 1 && bob.remoteTracks.length === 2);
    // The old sessions left: the agent had nobody left and exited before its drain deadline.
    const exitAt = await exited;
    console.log(`drain: moved ${Math.round(moved.at - termAt)} ms after SIGTERM; alice on ${back.edge.nodeId} ${back.gapMs} ms after moved; agent exited ${Math.round(exitAt - termAt)} ms after SIGTERM (deadline ${DRAIN_DEADLINE_MS})`);
    expect(exitAt - termAt).toBeLessThan(DRAIN_DEADLINE_MS - 500);
    await alice.leave();
    await bob.leave();
    await embedded.restartAgent(drained);
    await waitForNodeAlive(embedded.routerUrl, drained);
  }, 90_000);
});
