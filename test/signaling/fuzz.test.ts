import fc from 'fast-check';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { validateAuth, validateRequest } from '../../region-agent/signaling/validate.ts';
import { type Ack, PROTOCOL_VERSION, REQUESTS, type RequestName } from '../../shared/signaling.ts';
import { type JoinClaims, signJoinToken } from '../../shared/tokens.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { OBJECT_PROTOTYPE_KEYS, RESERVED_NAMES } from '../security/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, TOKEN_KEY, connect, joinWith, ok, request, sfuCounts, signalingConfig, startSignalingRouter, token, waitFor } from './helpers.ts';

/**
 * Property-based bad input on every signaling message and on the connection handshake, against a
 * real agent with a real SFU: malformed and random payloads, wrong types, huge strings, unknown
 * ids, random request names, random auth objects, forged, expired, replayed and other-node
 * tokens; names of Object.prototype's keys (`__proto__`, `constructor`...) mixed into every id,
 * string, key and request name. Only error acks (never INTERNAL) or refused connections; the SFU's state is counted
 * before and after each case and never changes; the agent never crashes.
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
/** A joined participant holding transports and a producer: the state the fuzzing must not change. */
let alice: { socket: Socket; send: string; recv: string; producerId: string };
/** Connected, not joined. */
let bob: Socket;

const vp8 = { codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000 }], encodings: [{ ssrc: 1111 }] };

beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  // A thousand requests on alice's connection: the documented override of the per-connection
  // request rate (test/security/per-client-caps.test.ts tests the limit).
  agent = await agents.start(signalingConfig(router.url, { signalingRequestsPerSecond: 0 }));
  const { socket } = await joinWith(agent.url, { token: token({ room: 'fuzz', sub: 'alice' }).token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities });
  const send = await ok(socket, 'createWebRtcTransport', { direction: 'send', sctp: true });
  const recv = await ok(socket, 'createWebRtcTransport', { direction: 'recv', sctp: true });
  const { producerId } = await ok(socket, 'produce', { transportId: send.transportId, kind: 'video', rtpParameters: vp8 });
  alice = { socket, send: send.transportId, recv: recv.transportId, producerId };
  bob = (await joinWith(agent.url, { token: token({ room: 'fuzz', sub: 'bob' }).token })).socket;
});
afterAll(async () => {
  alice?.socket.close();
  bob?.close();
  await agents.closeAll();
  await router.close();
});

/** Error codes a request may be refused with; INTERNAL would be an unhandled failure. */
const REFUSALS = ['INVALID_PAYLOAD', 'UNKNOWN_REQUEST', 'NOT_JOINED', 'ALREADY_JOINED', 'WRONG_DIRECTION', 'NOT_FOUND', 'CANNOT_CONSUME', 'NO_RTP_CAPABILITIES', 'INVALID_ARGUMENT', 'NOT_SUPPORTED'];
const NAMES = Object.keys(REQUESTS) as RequestName[];

/** Names that collide with Object.prototype's keys: as ids, strings, object keys and request names. */
const reserved = fc.constantFrom(...new Set([...RESERVED_NAMES, ...OBJECT_PROTOTYPE_KEYS]));
const key = fc.oneof(fc.string({ maxLength: 10 }), reserved);
const junk = fc.oneof(
  reserved,
  fc.string({ maxLength: 200 }),
  fc.string({ minLength: 65, maxLength: 300 }),
  // Huge strings; a payload of a few of them stays under the agent's 256 KiB message limit (tested apart).
  fc.integer({ min: 10_000, max: 50_000 }).map((n) => 'x'.repeat(n)),
  fc.integer(),
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 1e308, null, true, false),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 }),
  fc.dictionary(key, fc.anything({ maxDepth: 2 }), { maxKeys: 5 }),
);
/** The ids alice really holds, so a bad payload can point at live state too. */
const liveId = () => fc.constantFrom(alice.send, alice.recv, alice.producerId);
const anyId = () => fc.oneof(liveId(), fc.stringMatching(/^[A-Za-z0-9-]{1,64}$/), reserved, junk);
/** A payload built from the request's own field names, each with a random value (often of the wrong type). */
const fieldPayload = (name: RequestName) => {
  const fields = Object.keys((REQUESTS[name] as { properties?: Record<string, unknown> }).properties ?? {});
  const value = fc.oneof(anyId(), junk, fc.constantFrom('send', 'recv', 'audio', 'video', 'sideways'), fc.integer({ min: -5, max: 20 }));
  return fc.record(Object.fromEntries([...fields, 'extra'].map((f) => [f, value])), { requiredKeys: [] });
};
const payloadFor = (name: RequestName) => fc.oneof(fieldPayload(name), junk, fc.constant(undefined));

async function send(socket: Socket, name: string, payload: unknown): Promise<Ack<unknown>> {
  return request(socket, name as RequestName, payload);
}

function expectRefused(reply: Ack<unknown>, what: string): void {
  expect(reply.ok, what).toBe(false);
  if (!reply.ok) expect(REFUSALS, `${what}: ${JSON.stringify(reply.error).slice(0, 300)}`).toContain(reply.error.code);
}

it('every request with a malformed payload, from a joined participant: INVALID_PAYLOAD naming the field, nothing changes', async () => {
  const before = await sfuCounts(agent);
  expect(before).toMatchObject({ peers: 1, transports: 2, producers: 1, sessions: 2 });
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...NAMES).chain((name) => fc.tuple(fc.constant(name), payloadFor(name))).filter(([name, payload]) => validateRequest[name](payload ?? {}) !== null),
      async ([name, payload]) => {
        cases++;
        const reply = await send(alice.socket, name, payload);
        expectRefused(reply, name);
        if (!reply.ok) expect([reply.error.code, typeof reply.error.field]).toEqual(['INVALID_PAYLOAD', 'string']);
      },
    ),
    { numRuns: 400 },
  );
  expect(await sfuCounts(agent)).toEqual(before);
  expect(alice.socket.connected).toBe(true);
  console.log(`signaling fuzz: ${cases} malformed requests refused, SFU state unchanged`);
});

it('well-formed requests naming ids that do not exist, or with random mediasoup parameters: refused with a reason, nothing changes', async () => {
  const before = await sfuCounts(agent);
  const unknownId = fc.oneof(fc.stringMatching(/^[A-Za-z0-9-]{1,64}$/), reserved).filter((id) => ![alice.send, alice.recv, alice.producerId].includes(id));
  const mediasoupJunk = fc.dictionary(fc.oneof(fc.constantFrom('codecs', 'encodings', 'fingerprints', 'role', 'streamId', 'mid', 'rtcp', 'headerExtensions', 'x'), reserved), fc.anything({ maxDepth: 3 }), { maxKeys: 5 });
  const wellFormed = fc.oneof(
    unknownId.map((id) => ['connectTransport', { transportId: id, dtlsParameters: {} }] as const),
    mediasoupJunk.map((d) => ['connectTransport', { transportId: alice.send, dtlsParameters: d }] as const),
    unknownId.map((id) => ['restartIce', { transportId: id }] as const),
    fc.tuple(unknownId, fc.constantFrom('audio', 'video')).map(([id, kind]) => ['produce', { transportId: id, kind, rtpParameters: vp8 }] as const),
    fc.tuple(mediasoupJunk, fc.constantFrom('audio', 'video')).map(([p, kind]) => ['produce', { transportId: alice.send, kind, rtpParameters: p }] as const),
    fc.constantFrom('closeProducer', 'pauseProducer', 'resumeProducer').chain((n) => unknownId.map((id) => [n, { producerId: id }] as const)),
    fc.tuple(fc.oneof(unknownId, fc.constant(alice.recv)), unknownId).map(([t, p]) => ['consume', { transportId: t, producerId: p }] as const),
    fc.constant(['consume', { transportId: alice.send, producerId: alice.producerId }] as const),
    unknownId.map((id) => ['resumeConsumer', { consumerId: id }] as const),
    fc.tuple(unknownId, fc.integer({ min: 0, max: 15 })).map(([id, l]) => ['setPreferredLayers', { consumerId: id, spatialLayer: l }] as const),
    fc.tuple(fc.oneof(unknownId, fc.constant(alice.recv)), mediasoupJunk).map(([t, s]) => ['produceData', { transportId: t, sctpStreamParameters: s }] as const),
    fc.tuple(fc.oneof(unknownId, fc.constant(alice.recv)), unknownId).map(([t, d]) => ['consumeData', { transportId: t, dataProducerId: d }] as const),
    mediasoupJunk.map((c) => ['join', { rtpCapabilities: c }] as const),
  );
  await fc.assert(
    fc.asyncProperty(wellFormed, async ([name, payload]) => {
      expect(validateRequest[name](payload)).toBeNull();
      expectRefused(await send(alice.socket, name, payload), `${name} ${JSON.stringify(payload).slice(0, 200)}`);
    }),
    { numRuns: 300 },
  );
  expect(await sfuCounts(agent)).toEqual(before);
});

it('before join, any request but join/leave, and random request names: refused, nothing changes', async () => {
  const before = await sfuCounts(agent);
  const notJoined = NAMES.filter((n) => !['join', 'leave', 'getRouterRtpCapabilities'].includes(n));
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.constantFrom(...notJoined).chain((name) => fc.tuple(fc.constant(name as string), payloadFor(name))),
        fc.tuple(fc.oneof(fc.string({ maxLength: 100 }), reserved).filter((n) => !Object.hasOwn(REQUESTS, n) && !['connect', 'disconnect', 'connect_error', 'disconnecting', 'newListener', 'removeListener'].includes(n)), junk),
      ),
      async ([name, payload]) => {
        // Unknown names go to alice too (joined); known ones only to bob, since alice may do them.
        const known = Object.hasOwn(REQUESTS, name);
        for (const socket of known ? [bob] : [bob, alice.socket]) {
          const reply = await send(socket, name, payload);
          expectRefused(reply, name);
          if (!known && !reply.ok) expect(reply.error.code).toBe('UNKNOWN_REQUEST');
        }
      },
    ),
    { numRuns: 300 },
  );
  // A request without an acknowledgement is ignored, whatever it carries.
  for (const name of [...NAMES.filter((n) => n !== 'leave'), 'nonsense']) bob.emit(name, { transportId: 'x'.repeat(100_000) });
  expect((await send(bob, 'getRouterRtpCapabilities', {})).ok).toBe(true);
  expect(await sfuCounts(agent)).toEqual(before);
  expect([bob.connected, alice.socket.connected]).toEqual([true, true]);

  // A message over the 256 KiB limit drops that client's connection only (its session waits out
  // the resume grace, then ends); everyone else is untouched.
  const { socket: dave } = await joinWith(agent.url, { token: token({ room: 'fuzz', sub: 'dave' }).token });
  const dropped = new Promise((resolve) => dave.once('disconnect', resolve));
  dave.emit('join', { rtpCapabilities: { x: 'x'.repeat(300_000) } }, () => undefined);
  expect(await dropped).toBe('transport close');
  await waitFor('the dropped session ends after its grace', () => agent.signaling?.sessionCount === before.sessions, 5_000);
  expect(await sfuCounts(agent)).toEqual(before);
  expect((await send(alice.socket, 'getRouterRtpCapabilities', {})).ok).toBe(true);
});

it('handshakes with random auth, forged, expired, other-node and malformed tokens are refused; a replayed token never opens a second session', { timeout: 60_000 }, async () => {
  const before = await sfuCounts(agent);
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (over: Partial<Record<keyof JoinClaims, unknown>>) => ({ aid: 'a-1', room: 'fuzz', sub: 'mallory', region: 'us-west', node: 'west-1', iat: now(), exp: now() + 60, ...over }) as JoinClaims;
  const badToken = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ maxLength: 4_096 }).map((s) => `${s}.${s}.${s}`),
    // Other node or region, expired, wrong key, random claim values: each signed properly.
    fc.stringMatching(/^[a-z0-9-]{1,20}$/).filter((n) => n !== 'west-1').map((node) => signJoinToken(TOKEN_KEY, claims({ node }))),
    fc.constantFrom('us-east', 'eu-west', 'apac').map((region) => signJoinToken(TOKEN_KEY, claims({ region }))),
    fc.integer({ min: 1, max: 1e6 }).map((ago) => signJoinToken(TOKEN_KEY, claims({ exp: now() - ago }))),
    fc.string({ minLength: 32, maxLength: 64 }).map((secret) => signJoinToken({ kid: TOKEN_KEY.kid, secret: `${secret}#` }, claims({}))),
    fc.stringMatching(/^[a-z0-9]{1,10}$/).filter((kid) => kid !== TOKEN_KEY.kid).map((kid) => signJoinToken({ kid, secret: TOKEN_KEY.secret }, claims({}))),
    fc.record({ aid: junk, room: junk, sub: junk, exp: fc.oneof(junk, fc.constant(now() - 1)) }, { requiredKeys: [] }).map((c) => signJoinToken(TOKEN_KEY, claims({ ...c, node: 'elsewhere' }))),
    fc.record({ aid: fc.oneof(fc.constant(''), fc.string({ minLength: 129, maxLength: 300 }), fc.integer()), room: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null)) }, { requiredKeys: [] })
      .filter((c) => Object.keys(c).length > 0)
      .map((c) => signJoinToken(TOKEN_KEY, claims(c))),
  );
  const auth = fc.oneof(
    badToken.map((t) => ({ protocolVersion: PROTOCOL_VERSION, token: t })),
    fc.string({ maxLength: 500 }).map((r) => ({ protocolVersion: PROTOCOL_VERSION, resume: r })),
    fc.dictionary(key, fc.anything({ maxDepth: 2 }), { maxKeys: 4 }),
    fc.record({ protocolVersion: fc.oneof(fc.constantFrom('2.0', '0.9', '1', '', 'x'.repeat(20)), junk), token: fc.oneof(fc.constant(token({ room: 'fuzz', sub: 'mallory' }).token), junk) }, { requiredKeys: [] }),
  );
  let refused = 0;
  const startedAt = performance.now();
  await fc.assert(
    fc.asyncProperty(auth, async (a) => {
      const { socket, welcome, error } = await connectRaw(a);
      socket.close();
      // A random auth object may by chance be a valid one only if it carries a valid token; none here does.
      expect(welcome, JSON.stringify(a).slice(0, 300)).toBeUndefined();
      expect(error?.data?.code, JSON.stringify(a).slice(0, 300)).toMatch(/^(BAD_AUTH|PROTOCOL_VERSION|AUTH_REQUIRED|TOKEN_[A-Z_]+|RESUME_INVALID|RESUME_EXPIRED)$/);
      refused++;
    }),
    { numRuns: 150 },
  );
  const handshakesMs = performance.now() - startedAt;
  expect(await sfuCounts(agent)).toEqual(before);
  expect(validateAuth({ protocolVersion: PROTOCOL_VERSION, token: 't' })).toBeNull();

  // Replaying a participant's token replaces its connection (the same participant reconnecting):
  // never a second session, never a second peer in the room.
  const carol = token({ room: 'fuzz', sub: 'carol' }).token;
  const first = await joinWith(agent.url, { token: carol });
  const replays = await Promise.all(Array.from({ length: 5 }, () => connect(agent.url, { token: carol })));
  await new Promise((r) => setTimeout(r, 300));
  const open = [first.socket, ...replays.map((r) => r.socket)].filter((s) => s.connected);
  expect(open).toHaveLength(1);
  expect(await sfuCounts(agent)).toEqual({ ...before, sessions: before.sessions + 1 });
  for (const s of [first.socket, ...replays.map((r) => r.socket)]) s.close();
  console.log(`signaling handshake fuzz: ${refused} connections refused in ${handshakesMs.toFixed(0)} ms, SFU state unchanged; 5 replays of one token left 1 session`);
});

/** connect() without the default protocolVersion, so the auth object is exactly the generated one. */
async function connectRaw(auth: unknown) {
  const { io } = await import('socket.io-client');
  const socket = io(agent.url, { auth: auth as Record<string, unknown>, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise<{ socket: Socket; welcome?: unknown; error?: { data?: { code: string } } }>((resolve) => {
    socket.once('welcome', (welcome: unknown) => resolve({ socket, welcome }));
    socket.once('connect_error', (error: Error & { data?: { code: string } }) => resolve({ socket, error: { ...(error.data ? { data: error.data } : {}) } }));
    setTimeout(() => resolve({ socket, error: { data: { code: `NO ANSWER in 5 s to ${JSON.stringify(auth).slice(0, 200)}` } } }), 5_000).unref();
  });
}
