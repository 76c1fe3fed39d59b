import { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { connectRelay as connectTo, NEAR_US_EAST, p2pAllocation, type RelayClient } from '../utils/p2p-relay.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';
import { waitFor } from '../utils/wait.ts';

/**
 * The P2P relay across router replicas on one (real) Redis: participants of one P2P room
 * connected to different routers reach each other through the relay bus, other rooms hear
 * nothing, the migrate notice reaches every replica, a participant may come back on another
 * replica, and with Redis away a replica keeps relaying between its own peers.
 */
const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];

const routers: RunningRouter[] = [];
const fleets: FakeNodes[] = [];
const sockets: Socket[] = [];
const proxies: TcpFaultProxy[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.disconnect();
  await Promise.all(fleets.splice(0).map((f) => f.close()));
  await Promise.all(routers.splice(0).map((r) => r.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(cleanupNamespaces);

const connectRelay = (url: string, token: string) => connectTo(url, token, sockets);
const until = <T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 8_000) => waitFor(what, probe, timeoutMs, 20);

type Overrides = Parameters<typeof testConfig>[1];

/** `count` routers on one Redis namespace; every region has one node, all cordoned (nothing can take a room). */
async function cordonedReplicas(count: number, overrides: Overrides = {}, perRouter: (i: number) => Overrides = () => ({})) {
  const ns = runNamespace();
  const replicas: RunningRouter[] = [];
  for (let i = 0; i < count; i++) {
    const router = await startRouter(testConfig('real', { p2pFallback: true, p2pCheckIntervalMs: 200, p2pLeaseMs: 2_000, ...overrides, ...perRouter(i) }, ns));
    routers.push(router);
    replicas.push(router);
  }
  // Nodes register with the first router; the others see them through the shared registry.
  const nodes = new FakeNodes(replicas[0]!.url, replicas[0]!.config.clusterSecret);
  fleets.push(nodes);
  await nodes.start(200);
  for (const region of REGIONS) await nodes.add({ nodeId: `${region}-1`, region, cordoned: true });
  for (const r of replicas) await r.app.registry.refresh();
  return { replicas, nodes };
}

const metricsOf = async (router: RunningRouter) => (await fetch(`${router.url}/metrics`)).text();

it('two participants of one P2P room on different routers exchange offer, answer and candidates; another room on a third router hears nothing; migrate reaches both', async () => {
  // No periodic check: the migrate notice below can only come through the bus.
  const { replicas, nodes } = await cordonedReplicas(3, { p2pCheckIntervalMs: 60_000, p2pLeaseMs: 180_000 });
  const [ra, rb, rc] = replicas as [RunningRouter, RunningRouter, RunningRouter];
  const a = await p2pAllocation(ra.url, 'mesh', 'a');
  const b = await p2pAllocation(rb.url, 'mesh', 'b');
  const x = await p2pAllocation(rc.url, 'elsewhere', 'x');
  const alice = await connectRelay(ra.url, a.relay.token);
  expect(alice.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'a', peers: [] } });
  const xavier = await connectRelay(rc.url, x.relay.token);
  const bob = await connectRelay(rb.url, b.relay.token);
  // Bob, on router B, is told of alice on router A (and offers to her); she hears he joined.
  expect(bob.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'b', peers: ['a'] } });
  await until('peerJoined at alice', () => alice.of('peerJoined').length > 0);
  expect(alice.of('peerJoined')).toEqual([{ peerId: 'b' }]);

  const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n' };
  const answer = { type: 'answer', sdp: 'v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\n' };
  const candidate = (i: number) => ({ candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${5000 + i} typ host`, sdpMid: '0', sdpMLineIndex: 0 });
  expect(await bob.signal({ to: 'a', description: offer })).toEqual({ ok: true });
  await until('the offer at alice', () => alice.of('signal').length === 1);
  expect(await alice.signal({ to: 'b', description: answer })).toEqual({ ok: true });
  for (let i = 0; i < 3; i++) {
    expect(await alice.signal({ to: 'b', candidate: candidate(i) })).toEqual({ ok: true });
    expect(await bob.signal({ to: 'a', candidate: candidate(10 + i) })).toEqual({ ok: true });
  }
  await until('everything at both', () => alice.of('signal').length === 4 && bob.of('signal').length === 4);
  // In order, from the right sender, exactly as sent.
  expect(alice.of('signal')).toEqual([{ from: 'b', description: offer }, ...[10, 11, 12].map((i) => ({ from: 'b', candidate: candidate(i) }))]);
  expect(bob.of('signal')).toEqual([{ from: 'a', description: answer }, ...[0, 1, 2].map((i) => ({ from: 'a', candidate: candidate(i) }))]);

  // Xavier (another room, router C) reaches nobody in "mesh" and is reached by no one.
  expect(await xavier.signal({ to: 'a', description: offer })).toMatchObject({ ok: false, error: { code: 'NOT_IN_ROOM', field: 'to' } });
  expect(await alice.signal({ to: 'x', description: offer })).toMatchObject({ ok: false, error: { code: 'NOT_IN_ROOM', field: 'to' } });
  // Still validated and refused by the sender's router before anything crosses Redis.
  expect(await bob.signal({ to: 'a', description: { type: 'offer', sdp: 'x'.repeat(100_001) } })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST', field: 'description.sdp' } });
  for (const r of replicas) expect(await metricsOf(r)).toMatch(/geo_sfu_p2p_relay_connections 1\b/);

  // A region is back: an SFU allocation for the room through router A ends P2P mode; the notice
  // reaches bob on router B too.
  nodes.set('us-east-1', { cordoned: false });
  await nodes.heartbeatAll();
  await ra.app.registry.refresh();
  const freedAt = performance.now();
  const onSfu = await allocate(ra.url, { roomId: 'mesh', participantId: 'newcomer', latencies: NEAR_US_EAST });
  expect(onSfu.body).toMatchObject({ mode: 'sfu', region: 'us-east' });
  await until('migrate at alice and bob', () => alice.of('migrate').length > 0 && bob.of('migrate').length > 0);
  console.log(`SFU allocation on router A → migrate at bob on router B after ${Math.round(performance.now() - freedAt)} ms`);
  expect(bob.of('migrate')).toEqual([{ reason: 'region_available' }]);
  expect(alice.of('migrate')).toEqual([{ reason: 'region_available' }]);
  expect(xavier.events.map((e) => e.event)).toEqual(['welcome']);

  // Leaving on router B: alice on router A hears it.
  bob.socket.disconnect();
  await until('peerLeft at alice', () => alice.of('peerLeft').length > 0);
  expect(alice.of('peerLeft')).toEqual([{ peerId: 'b' }]);
  expect(xavier.events.map((e) => e.event)).toEqual(['welcome']);
});

it('two participants joining at once through two routers are told of each other exactly once: one in its welcome, the other by peerJoined', async () => {
  const { replicas } = await cordonedReplicas(2);
  const [ra, rb] = replicas as [RunningRouter, RunningRouter];
  for (let round = 0; round < 5; round++) {
    const room = `race-${round}`;
    const [p, q] = [await p2pAllocation(ra.url, room, 'p'), await p2pAllocation(rb.url, room, 'q')];
    const [peter, quinn] = await Promise.all([connectRelay(ra.url, p.relay.token), connectRelay(rb.url, q.relay.token)]);
    const welcomed = (c: RelayClient) => (c.events[0]?.msg as { peers: string[] }).peers;
    const [first, second] = welcomed(peter).length === 0 ? [peter, quinn] : [quinn, peter];
    // The later one offers to the earlier one, who hears it joined; never both ways (glare).
    expect(welcomed(first)).toEqual([]);
    expect(welcomed(second)).toHaveLength(1);
    await until('peerJoined at the first', () => first.of('peerJoined').length > 0);
    expect(first.of('peerJoined')).toHaveLength(1);
    expect(second.of('peerJoined')).toEqual([]);
  }
});

it('participant ids named like Object.prototype members reach each other across routers; malformed bus messages are ignored', async () => {
  const { replicas } = await cordonedReplicas(2);
  const [ra, rb] = replicas as [RunningRouter, RunningRouter];
  const [p, c] = [await p2pAllocation(ra.url, 'toString', '__proto__'), await p2pAllocation(rb.url, 'toString', 'constructor')];
  const proto = await connectRelay(ra.url, p.relay.token);
  const ctor = await connectRelay(rb.url, c.relay.token);
  expect(ctor.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'constructor', peers: ['__proto__'] } });
  await until('peerJoined at __proto__', () => proto.of('peerJoined').length > 0);

  // Garbage on the relay channel (wrong shapes, an oversized SDP, unknown kinds) reaches nobody.
  const publisher = new Redis(REDIS_URL);
  const channel = `${ra.config.redisKeyPrefix}p2p-relay`;
  const forged = { origin: 'elsewhere', room: 'toString', from: 'constructor' };
  for (const raw of [
    'not json',
    JSON.stringify(null),
    JSON.stringify({ ...forged, kind: 'signal', signal: { to: '__proto__', description: { type: 'offer', sdp: 'x'.repeat(100_001) } } }),
    JSON.stringify({ ...forged, kind: 'signal', signal: { to: '__proto__', candidate: { candidate: 'c' }, extra: 1 } }),
    JSON.stringify({ ...forged, kind: 'joined', peer: 'mallory', returning: false, before: '__proto__' }),
    JSON.stringify({ ...forged, kind: 'migrate', reason: 'because' }),
    JSON.stringify({ ...forged, kind: '__proto__' }),
  ]) {
    await publisher.publish(channel, raw);
  }
  await publisher.quit();
  expect(await ctor.signal({ to: '__proto__', candidate: { candidate: 'after the garbage' } })).toEqual({ ok: true });
  await until('the candidate at __proto__', () => proto.of('signal').length > 0);
  expect(proto.events.map((e) => e.event)).toEqual(['welcome', 'peerJoined', 'signal']);
  expect(proto.of('signal')).toEqual([{ from: 'constructor', candidate: { candidate: 'after the garbage' } }]);
});

it('a participant whose connection dropped comes back on another router: nobody hears it left or joined again, and signals reach it there', async () => {
  const { replicas } = await cordonedReplicas(2);
  const [ra, rb] = replicas as [RunningRouter, RunningRouter];
  const a = await p2pAllocation(ra.url, 'mesh', 'a');
  const b = await p2pAllocation(ra.url, 'mesh', 'b');
  const alice = await connectRelay(ra.url, a.relay.token);
  const bob = await connectRelay(ra.url, b.relay.token);
  await until('peerJoined at alice', () => alice.of('peerJoined').length > 0);
  // Bob's transport drops and he comes back through router B.
  bob.socket.io.engine.close();
  const back = await connectRelay(rb.url, b.relay.token);
  expect(back.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'b', peers: ['a'] } });
  await until('alice reaches bob on router B', async () => (await alice.signal({ to: 'b', candidate: { candidate: 'c1' } })).ok);
  await until('the candidate at bob', () => back.of('signal').length > 0);
  expect(await back.signal({ to: 'a', candidate: { candidate: 'c2' } })).toEqual({ ok: true });
  await until('the candidate at alice', () => alice.of('signal').length > 0);
  // Longer than the lease (2 s): router A's drop timer has run out, yet bob did not leave.
  await new Promise((r) => setTimeout(r, 3_000));
  expect(alice.events.map((e) => e.event).filter((e) => e === 'peerLeft' || e === 'peerJoined')).toEqual(['peerJoined']);
  expect((await ra.app.rooms.getP2pRoom('mesh', Date.now()))?.participants.map((p) => p.participantId).sort()).toEqual(['a', 'b']);
  expect(await metricsOf(ra)).toMatch(/geo_sfu_p2p_relay_connections 1\b/);
  expect(await metricsOf(rb)).toMatch(/geo_sfu_p2p_relay_connections 1\b/);
});

it('with Redis away from one router, its relay keeps serving the peers connected to it, counts it, and reaches the others again once Redis is back', async () => {
  const target = new URL(REDIS_URL);
  const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
  proxies.push(proxy);
  const viaProxy = new URL(REDIS_URL);
  viaProxy.port = String(proxy.port);
  // Router 1 reaches Redis through the proxy; router 0 directly.
  const { replicas } = await cordonedReplicas(2, {}, (i) => (i === 1 ? { redisUrl: viaProxy.href, redisTimeoutMs: 500 } : {}));
  const [direct, cut] = replicas as [RunningRouter, RunningRouter];
  const [c, d, e] = [await p2pAllocation(cut.url, 'cut', 'c'), await p2pAllocation(cut.url, 'cut', 'd'), await p2pAllocation(direct.url, 'cut', 'e')];
  const carol = await connectRelay(cut.url, c.relay.token);
  const dave = await connectRelay(cut.url, d.relay.token);
  const erin = await connectRelay(direct.url, e.relay.token);
  expect(erin.events[0]).toEqual({ event: 'welcome', msg: { participantId: 'e', peers: ['c', 'd'] } });
  expect(await carol.signal({ to: 'e', candidate: { candidate: 'before' } })).toEqual({ ok: true });

  proxy.cut();
  // Same router: still relayed. Across routers: refused, saying why, and counted.
  expect(await carol.signal({ to: 'd', candidate: { candidate: 'local' } })).toEqual({ ok: true });
  await until('the local candidate at dave', () => dave.of('signal').length === 1);
  const refused = await carol.signal({ to: 'e', candidate: { candidate: 'during' } });
  expect(refused).toMatchObject({ ok: false, error: { code: 'NOT_IN_ROOM', field: 'to' } });
  expect((refused as { error: { message: string } }).error.message).toMatch(/cannot be reached/);
  expect(await metricsOf(cut)).toMatch(/geo_sfu_p2p_relay_local_only_total\{operation="signal"\} 1\b/);
  expect(await direct.app.rooms.getP2pRoom('cut', Date.now())).not.toBeNull();

  proxy.restore();
  await until('carol reaches erin again', async () => (await carol.signal({ to: 'e', candidate: { candidate: 'after' } })).ok, 15_000);
  // Erin's router may accept a message before router 1 has subscribed again: retry until one arrives.
  await until('erin reaches dave again', async () => (await erin.signal({ to: 'd', candidate: { candidate: 'back' } })).ok && dave.of('signal').length > 1, 15_000);
  expect(erin.of('signal').map((s) => (s as { candidate: { candidate: string } }).candidate.candidate)).toEqual(['before', 'after']);
  expect(dave.of('signal')[0]).toEqual({ from: 'c', candidate: { candidate: 'local' } });
  expect(new Set(dave.of('signal').slice(1).map((m) => JSON.stringify(m)))).toEqual(new Set([JSON.stringify({ from: 'e', candidate: { candidate: 'back' } })]));
});
