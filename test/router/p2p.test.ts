import { Ajv } from 'ajv';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { P2P_RELAY_PATH, type RelayForwarded } from '../../shared/p2p-relay.ts';
import { AllocateP2pResponse } from '../../shared/schemas/index.ts';
import { signJoinToken, signRelayToken } from '../../shared/tokens.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { connectRelay as connectTo, NEAR_US_EAST, p2pAllocation } from '../utils/p2p-relay.ts';
import { allocate } from '../utils/http.ts';
import { type Backend, cleanupNamespaces, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { waitFor } from '../utils/wait.ts';

/**
 * The P2P fallback from the router's side, against a real router (fake nodes through its signed
 * control API) on both state backends: /allocate's answers, the mesh limit, the relay (auth,
 * forwarding, validation, rate limit) and the move back to an SFU.
 */
const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];

const routers: RunningRouter[] = [];
const fleets: FakeNodes[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.disconnect();
  await Promise.all(fleets.splice(0).map((f) => f.close()));
  await Promise.all(routers.splice(0).map((r) => r.close()));
});
afterAll(cleanupNamespaces);

const connectRelay = (url: string, token: unknown) => connectTo(url, token, sockets);
const until = <T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 5_000) => waitFor(what, probe, timeoutMs, 20);

/** A router whose every region has one node, all cordoned (so nothing can take a room). */
async function cordonedCluster(backend: Backend, overrides: Parameters<typeof testConfig>[1] = {}) {
  const router = await startRouter(testConfig(backend, { p2pFallback: true, p2pCheckIntervalMs: 200, p2pLeaseMs: 2_000, ...overrides }));
  routers.push(router);
  const nodes = new FakeNodes(router.url, router.config.clusterSecret);
  fleets.push(nodes);
  await nodes.start(200);
  for (const region of REGIONS) await nodes.add({ nodeId: `${region}-1`, region, cordoned: true });
  await router.app.registry.refresh();
  return { router, nodes };
}

describe.each(['memory', 'real'] as const)('P2P fallback on the %s backend', (backend) => {
  it('answers mode "p2p" when every region is cordoned, up to the mesh size; then 503 with Retry-After', async () => {
    const { router } = await cordonedCluster(backend);
    const answers = [];
    for (const id of ['a', 'b', 'c', 'd']) answers.push(await p2pAllocation(router.url, 'small', id));
    const validate = new Ajv({ strict: false, allErrors: true })
      .addFormat('date-time', (v: string) => !Number.isNaN(Date.parse(v)))
      .compile(AllocateP2pResponse);
    for (const a of answers) expect(validate(a), JSON.stringify(validate.errors)).toBe(true);
    expect(answers[0]).toMatchObject({ mode: 'p2p', roomId: 'small', participantId: 'a', maxParticipants: 4, relay: { path: P2P_RELAY_PATH }, rttSource: 'client' });
    expect(answers[0]!.candidates.map((c) => [c.region, c.excludedBecause])).toEqual(REGIONS.map((r) => [r, 'CORDONED']));

    const fifth = await allocate(router.url, { roomId: 'small', participantId: 'e', latencies: NEAR_US_EAST });
    expect(fifth.status).toBe(503);
    expect(Number(fifth.headers['retry-after'])).toBeGreaterThan(0);
    expect(fifth.body.error?.message).toMatch(/P2P mesh is full \(4 participants\)/);
    // A participant already in the mesh allocating again keeps its place.
    expect((await p2pAllocation(router.url, 'small', 'b')).participantId).toBe('b');

    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(metrics).toMatch(/geo_sfu_allocations_total\{outcome="p2p"\} 5/);
    expect(metrics).toMatch(/geo_sfu_allocations_total\{outcome="refused"\} 1/);
    await router.app.sessions.flush();
    const row = await router.app.sessions.get(answers[0]!.allocationId);
    expect(row).toMatchObject({ roomId: 'small', userId: 'a', serverId: 'p2p', status: 'allocated' });
  });

  it('P2P ICE servers carry TURN credentials for the TURN servers of the client\'s nearest region', async () => {
    const { router } = await cordonedCluster(backend, { turnSecret: 't'.repeat(40), turnUrls: { 'us-east': ['turn:turn-use.example.com:3478'], '*': ['turn:turn-any.example.com:3478'] } });
    const a = await p2pAllocation(router.url, 'turn-room', 'a');
    expect(a.iceServers).toHaveLength(1);
    expect(a.iceServers[0]).toMatchObject({ urls: ['turn:turn-use.example.com:3478'], username: expect.stringMatching(/^\d+:a$/) as unknown as string });
  });

  it('with GEO_SFU_P2P_FALLBACK off, the same situation is 503 with Retry-After and no relay', async () => {
    const { router } = await cordonedCluster(backend, { p2pFallback: false });
    const res = await allocate(router.url, { roomId: 'small', participantId: 'a', latencies: NEAR_US_EAST });
    expect(res.status).toBe(503);
    expect(res.body.error?.code).toBe('NO_CAPACITY');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(router.app.p2pRelay).toBeNull();
    expect(await router.app.rooms.getP2pRoom('small', Date.now())).toBeNull();
  });

  it('the relay forwards signaling only between connected participants of one room, and tells them when a region is back', async () => {
    const { router, nodes } = await cordonedCluster(backend);
    const [a, b] = [await p2pAllocation(router.url, 'mesh', 'a'), await p2pAllocation(router.url, 'mesh', 'b')];
    const x = await p2pAllocation(router.url, 'elsewhere', 'x');
    const alice = await connectRelay(router.url, a.relay.token);
    expect(alice.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'a', peers: [] } });
    const bob = await connectRelay(router.url, b.relay.token);
    expect(bob.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'b', peers: ['a'] } });
    await until('peerJoined at alice', () => alice.events.find((e) => e.event === 'peerJoined'));
    const xavier = await connectRelay(router.url, x.relay.token);

    const offer = { type: 'offer', sdp: 'v=0\r\n' };
    expect(await bob.signal({ to: 'a', description: offer })).toEqual({ ok: true });
    expect(await alice.signal({ to: 'b', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 } })).toEqual({ ok: true });
    const atAlice = await until('the offer at alice', () => alice.events.find((e) => e.event === 'signal'));
    expect(atAlice.msg as RelayForwarded).toEqual({ from: 'b', description: offer });
    await until('the candidate at bob', () => bob.events.find((e) => e.event === 'signal'));
    // Another room's participant is not reachable, in either direction.
    expect(await xavier.signal({ to: 'a', description: offer })).toMatchObject({ ok: false, error: { code: 'NOT_IN_ROOM', field: 'to' } });
    expect(await alice.signal({ to: 'x', description: offer })).toMatchObject({ ok: false, error: { code: 'NOT_IN_ROOM' } });
    expect(alice.events.filter((e) => e.event === 'signal')).toHaveLength(1);
    expect(await (await fetch(`${router.url}/metrics`)).text()).toMatch(/geo_sfu_p2p_relay_connections 3/);

    // A region is available again: the relay ends P2P mode and tells everyone in the room.
    nodes.set('us-east-1', { cordoned: false });
    const freedAt = performance.now();
    await until('migrate at alice and bob', () => alice.events.some((e) => e.event === 'migrate') && bob.events.some((e) => e.event === 'migrate'));
    console.log(`region uncordoned → relay said migrate after ${Math.round(performance.now() - freedAt)} ms`);
    expect(alice.events.find((e) => e.event === 'migrate')?.msg).toEqual({ reason: 'region_available' });
    expect(await router.app.rooms.getP2pRoom('mesh', Date.now())).toBeNull();
    const back = await allocate(router.url, { roomId: 'mesh', participantId: 'a', latencies: NEAR_US_EAST });
    expect(back.body).toMatchObject({ mode: 'sfu', region: 'us-east' });
    // The other P2P room moves as well.
    await until('migrate at xavier', () => xavier.events.some((e) => e.event === 'migrate'));
    expect(await (await fetch(`${router.url}/metrics`)).text()).toMatch(/geo_sfu_p2p_migrations_total 2/);

    // Leaving: the others hear it.
    bob.socket.disconnect();
    await until('peerLeft at alice', () => alice.events.find((e) => e.event === 'peerLeft' && (e.msg as { peerId: string }).peerId === 'b'));
  });

  it('an SFU allocation for a P2P room (a region is back) ends P2P mode at once and the relay tells the peers', async () => {
    const { router, nodes } = await cordonedCluster(backend, { p2pCheckIntervalMs: 60_000, p2pLeaseMs: 180_000 });
    const a = await p2pAllocation(router.url, 'mesh', 'a');
    const alice = await connectRelay(router.url, a.relay.token);
    nodes.set('eu-west-1', { cordoned: false });
    await nodes.heartbeatAll();
    await router.app.registry.refresh();
    const res = await allocate(router.url, { roomId: 'mesh', participantId: 'newcomer', latencies: NEAR_US_EAST });
    expect(res.body).toMatchObject({ mode: 'sfu', homeRegion: 'eu-west' });
    await until('migrate at alice', () => alice.events.find((e) => e.event === 'migrate'), 2_000);
  });

  it('the relay refuses bad, expired, foreign and stale tokens and malformed messages, and keeps serving', async () => {
    const { router } = await cordonedCluster(backend);
    const key = router.config.tokenKeys[0]!;
    const a = await p2pAllocation(router.url, 'mesh', 'a');
    await p2pAllocation(router.url, 'mesh', 'b');
    const nowS = Math.floor(Date.now() / 1000);
    const refused = async (token: unknown) => {
      const err = (await connectRelay(router.url, token).then(
        () => {
          throw new Error('connected');
        },
        (e: Error & { code?: string }) => e,
      )) as Error & { code?: string };
      return err.code;
    };
    expect(await refused(undefined)).toBe('BAD_AUTH');
    expect(await refused('x'.repeat(5_000))).toBe('BAD_AUTH');
    expect(await refused('not.a.jws')).toBe('TOKEN_MALFORMED');
    expect(await refused(`${a.relay.token.slice(0, -4)}AAAA`)).toBe('TOKEN_BAD_SIGNATURE');
    expect(await refused(signRelayToken({ kid: 'k1', secret: 'z'.repeat(40) }, { aid: a.allocationId, room: 'mesh', sub: 'a', iat: nowS, exp: nowS + 60 }))).toBe('TOKEN_BAD_SIGNATURE');
    expect(await refused(signRelayToken(key, { aid: a.allocationId, room: 'mesh', sub: 'a', iat: nowS - 120, exp: nowS - 60 }))).toBe('TOKEN_EXPIRED');
    // A join token (SFU) is not a relay token.
    expect(await refused(signJoinToken(key, { aid: a.allocationId, room: 'mesh', sub: 'a', region: 'us-east', node: 'us-east-1', iat: nowS, exp: nowS + 60 }))).toBe('TOKEN_WRONG_AUDIENCE');
    // Signed, but for a room that is not P2P, or an allocation that is not (any more) current.
    expect(await refused(signRelayToken(key, { aid: a.allocationId, room: 'other-room', sub: 'a', iat: nowS, exp: nowS + 60 }))).toBe('NOT_P2P');
    expect(await refused(signRelayToken(key, { aid: 'old-allocation', room: 'mesh', sub: 'a', iat: nowS, exp: nowS + 60 }))).toBe('NOT_IN_ROOM');
    expect(await refused(signRelayToken(key, { aid: a.allocationId, room: 'mesh', sub: 'mallory', iat: nowS, exp: nowS + 60 }))).toBe('NOT_IN_ROOM');

    const alice = await connectRelay(router.url, a.relay.token);
    const bad = [
      [null, 'signal'],
      [{ to: 'b' }, 'description'],
      [{ to: 'b', description: { type: 'offer', sdp: 'x' }, candidate: { candidate: '' } }, 'description'],
      [{ to: '', description: { type: 'offer', sdp: 'x' } }, 'to'],
      [{ to: 'b', description: { type: 'pranswer', sdp: 'x' } }, 'description.type'],
      [{ to: 'b', description: { type: 'offer', sdp: 'x'.repeat(100_001) } }, 'description.sdp'],
      [{ to: 'b', description: { type: 'offer', sdp: 'x', extra: 1 } }, 'description.extra'],
      [{ to: 'b', candidate: { candidate: 1 } }, 'candidate.candidate'],
      [{ to: 'b', candidate: { candidate: 'c', sdpMLineIndex: -1 } }, 'candidate.sdpMLineIndex'],
      [{ to: 'a', candidate: { candidate: 'c' } }, 'to'],
    ] as const;
    for (const [msg, field] of bad) expect(await alice.signal(msg), JSON.stringify(msg).slice(0, 80)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', field } });
    expect(await alice.socket.timeout(2_000).emitWithAck('join', { roomId: 'x' })).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EVENT' } });
    expect(alice.socket.connected).toBe(true);
    expect((await allocate(router.url, { roomId: 'fine', participantId: 'z', latencies: NEAR_US_EAST })).status).toBe(200);
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(metrics).toMatch(/geo_sfu_p2p_relay_refusals_total\{reason="BAD_REQUEST"\} 10/);
    expect(metrics).toMatch(/geo_sfu_p2p_relay_refusals_total\{reason="TOKEN_EXPIRED"\} 1/);
  });

  it('a dropped relay connection keeps its place for the lease: back in time, nobody hears it left; gone, the others do', async () => {
    const { router } = await cordonedCluster(backend);
    const [a, b, c] = [await p2pAllocation(router.url, 'mesh', 'a'), await p2pAllocation(router.url, 'mesh', 'b'), await p2pAllocation(router.url, 'mesh', 'c')];
    const alice = await connectRelay(router.url, a.relay.token);
    const bob = await connectRelay(router.url, b.relay.token);
    const carol = await connectRelay(router.url, c.relay.token);
    // Alice's transport drops (not a disconnect she asked for) and she comes back with the same token.
    alice.socket.io.engine.close();
    await until('bob cannot reach alice meanwhile', async () => (await bob.signal({ to: 'a', candidate: { candidate: 'x' } })).ok === false);
    const back = await connectRelay(router.url, a.relay.token);
    expect(back.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'a', peers: ['b', 'c'] } });
    expect(await bob.signal({ to: 'a', candidate: { candidate: 'y' } })).toEqual({ ok: true });
    // Carol drops for good: after the lease (2 s here) the others hear she left and her place is free.
    const droppedAt = performance.now();
    carol.socket.io.engine.close();
    await until('peerLeft for carol', () => bob.events.find((e) => e.event === 'peerLeft'), 6_000);
    console.log(`dropped relay connection → peerLeft after ${Math.round(performance.now() - droppedAt)} ms (lease 2000 ms)`);
    expect(bob.events.filter((e) => e.event === 'peerLeft').map((e) => e.msg)).toEqual([{ peerId: 'c' }]);
    expect((await router.app.rooms.getP2pRoom('mesh', Date.now()))?.participants.map((p) => p.participantId)).toEqual(['a', 'b']);
  });

  it('rate-limits signaling per connection', async () => {
    const rate = 5;
    // A full token bucket holds two seconds' worth; then `rate` more a second.
    const bucket = 2 * rate;
    const { router } = await cordonedCluster(backend, { p2pRelayMessagesPerSecond: rate });
    const a = await p2pAllocation(router.url, 'mesh', 'a');
    const b = await p2pAllocation(router.url, 'mesh', 'b');
    const alice = await connectRelay(router.url, a.relay.token);
    const bob = await connectRelay(router.url, b.relay.token);
    const burst = 4 * bucket;
    const sentAt = performance.now();
    const acks = await Promise.all(Array.from({ length: burst }, (_, i) => alice.signal({ to: 'b', candidate: { candidate: `c${i}` } })));
    const burstMs = performance.now() - sentAt;
    const passed = acks.filter((x) => x.ok).length;
    const refused = acks.filter((x) => !x.ok);
    const allowed = bucket + (rate * burstMs) / 1000;
    console.log(`relay rate limit ${rate}/s: ${passed} of a ${burst}-message burst passed in ${burstMs.toFixed(0)} ms (bucket ${bucket}, at most ${allowed.toFixed(1)} by then)`);
    // The whole bucket passes, plus at most what refilled while the burst went out; the rest is refused.
    expect(passed).toBeGreaterThanOrEqual(bucket);
    expect(passed).toBeLessThanOrEqual(allowed);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    await until('what passed reached bob', () => bob.events.filter((e) => e.event === 'signal').length === passed);
    // 1 / rate seconds refill a token; wait three times that.
    await new Promise((r) => setTimeout(r, 3_000 / rate));
    expect(await alice.signal({ to: 'b', candidate: { candidate: 'later' } })).toEqual({ ok: true });
    await until('the later one at bob', () => bob.events.filter((e) => e.event === 'signal').length === passed + 1);
  });
});
