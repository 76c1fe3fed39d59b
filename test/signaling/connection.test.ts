import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../shared/signaling.ts';
import { signJoinToken } from '../../shared/tokens.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, TOKEN_KEY, connect, joinWith, ok, recordEvents, sfuCounts, signalingConfig, startSignalingRouter, token, waitFor } from './helpers.ts';

let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 800 }));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});

describe('signaling connection', () => {
  it('refuses a connection without a valid credential, with the reason in connect_error', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['no token', {}, 'AUTH_REQUIRED'],
      ['malformed token', { token: 'not-a-token' }, 'TOKEN_MALFORMED'],
      ['forged token (right kid, wrong secret)', { token: signJoinToken({ kid: TOKEN_KEY.kid, secret: 'x'.repeat(48) }, token().claims) }, 'TOKEN_BAD_SIGNATURE'],
      ['unknown key id', { token: signJoinToken({ kid: 'k9', secret: TOKEN_KEY.secret }, token().claims) }, 'TOKEN_UNKNOWN_KEY'],
      ['expired token', { token: token({ iat: now - 120, exp: now - 60 }).token }, 'TOKEN_EXPIRED'],
      ['token for another node', { token: token({ node: 'west-2' }).token }, 'TOKEN_WRONG_BINDING'],
      ['token for another region', { token: token({ region: 'eu-west' }).token }, 'TOKEN_WRONG_BINDING'],
      ['incompatible protocol version', { protocolVersion: '2.0', token: token().token }, 'PROTOCOL_VERSION'],
      ['not a version', { protocolVersion: 'one', token: token().token }, 'PROTOCOL_VERSION'],
      ['unknown auth property', { token: token().token, room: 'other' }, 'BAD_AUTH'],
      ['forged resume credential', { resume: 'eyJ2IjoxfQ.AAAA' }, 'RESUME_INVALID'],
    ];
    for (const [what, auth, code] of cases) {
      const r = await connect(agent.url, auth);
      expect(r.welcome, what).toBeUndefined();
      expect(r.error?.data?.code, what).toBe(code);
      expect(r.error?.data?.message, what).toEqual(expect.any(String));
    }
    expect(agent.signaling?.sessionCount).toBe(0);
    expect(await sfuCounts(agent)).toMatchObject({ rooms: 0, peers: 0, transports: 0 });
  });

  it('welcomes a client with its identity from the token and a resume credential', async () => {
    const t = token({ room: 'room-welcome', sub: 'alice' });
    const { socket, welcome } = await joinWith(agent.url, { token: t.token });
    expect(welcome).toMatchObject({ peerId: 'alice', roomId: 'room-welcome', region: 'us-west', nodeId: 'west-1', resumeGraceMs: 800, protocolVersion: PROTOCOL_VERSION, resumed: false, joined: false });
    expect(welcome.resume).toEqual(expect.any(String));
    // What getRouterRtpCapabilities and join would answer, so the client need not wait for them.
    expect(welcome.rtpCapabilities).toEqual((await ok(socket, 'getRouterRtpCapabilities', {})).rtpCapabilities);
    expect(welcome.permissions).toEqual({ publish: true, subscribe: true, publishData: true });
    const viewer = await joinWith(agent.url, { token: token({ room: 'room-welcome', sub: 'viewer', perm: { publish: false, subscribe: true } }).token });
    expect(viewer.welcome.permissions).toEqual({ publish: false, subscribe: true, publishData: false });
    viewer.socket.close();
    // A minor version the agent does not know is compatible.
    const minor = await connect(agent.url, { protocolVersion: '1.7', token: token({ room: 'room-welcome', sub: 'bob' }).token });
    expect(minor.welcome?.peerId).toBe('bob');
    socket.close();
    minor.socket.close();
    await waitFor('sessions to end after the grace period', () => agent.signaling?.sessionCount === 0, 3_000);
  });

  it('resumes a dropped session within the grace period (peer, room and transports kept), even after the token expired', async () => {
    // Its own agent, with a grace period longer than the token's remaining life.
    const agent = await agents.start(signalingConfig(router.url, { agentId: 'west-3', resumeGraceMs: 4_000 }));
    // 1 to 2 s from now (claims are in whole seconds).
    const exp = Math.floor(Date.now() / 1000) + 2;
    const t = token({ room: 'room-resume', sub: 'carol', exp, node: 'west-3' });
    const { socket, welcome } = await joinWith(agent.url, { token: t.token });
    const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
    await ok(socket, 'join', { rtpCapabilities, displayName: 'Carol' });
    const transport = await ok(socket, 'createWebRtcTransport', { direction: 'recv' });
    await waitFor('joined reported', () => router.participantEvents.some((e) => e.participantId === 'carol' && e.event === 'joined'));
    socket.close(); // the connection drops
    await waitFor('the token to expire', () => Date.now() > exp * 1000 + 50, 4_000);
    expect((await connect(agent.url, { token: t.token })).error?.data?.code).toBe('TOKEN_EXPIRED');

    const again = await joinWith(agent.url, { resume: welcome.resume });
    expect(again.welcome).toMatchObject({ peerId: 'carol', roomId: 'room-resume', resumed: true, joined: true });
    expect(again.welcome.session).toMatchObject({ transports: [{ transportId: transport.transportId, direction: 'recv' }], producerIds: [], consumers: [] });
    expect(agent.sfu.rooms.getRoom('room-resume')?.getPeer('carol')?.transports.has(transport.transportId)).toBe(true);
    // The resumed session goes on: requests work on the kept transport.
    await ok(again.socket, 'restartIce', { transportId: transport.transportId });
    expect(router.participantEvents.filter((e) => e.participantId === 'carol').map((e) => e.event)).toEqual(['joined']);

    // Dropped again and not back within the grace period: the session ends and the router hears `left`.
    const droppedAt = performance.now();
    again.socket.close();
    await waitFor('left reported', () => router.participantEvents.find((e) => e.participantId === 'carol' && e.event === 'left'), 6_000);
    const leftAfterMs = router.participantEvents.find((e) => e.participantId === 'carol' && e.event === 'left')!.receivedAt - droppedAt;
    console.log(`left reported ${leftAfterMs.toFixed(0)} ms after the drop (grace 4000 ms)`);
    expect(leftAfterMs).toBeGreaterThanOrEqual(3_950);
    expect(router.participantEvents.find((e) => e.event === 'left' && e.participantId === 'carol')).toMatchObject({ nodeId: 'west-3', roomId: 'room-resume', allocationId: t.claims.aid });
    const late = await connect(agent.url, { resume: welcome.resume });
    expect(late.error?.data?.code).toBe('RESUME_EXPIRED');
    expect(agent.sfu.rooms.getRoom('room-resume')).toBeUndefined();
  });

  it('a resume credential from this node does not resume another session', async () => {
    const a = await joinWith(agent.url, { token: token({ room: 'room-x', sub: 'dave' }).token });
    const resume = String(a.welcome.resume);
    const [payload, mac] = resume.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${Buffer.from(JSON.stringify({ ...claims, peer: 'erin' })).toString('base64url')}.${mac}`;
    expect((await connect(agent.url, { resume: tampered })).error?.data?.code).toBe('RESUME_INVALID');
    a.socket.close();
  });

  it('a second connection of the same participant replaces the first', async () => {
    const first = await joinWith(agent.url, { token: token({ room: 'room-replace', sub: 'frank', aid: 'alloc-frank-1' }).token });
    const { rtpCapabilities } = await ok(first.socket, 'getRouterRtpCapabilities', {});
    await ok(first.socket, 'join', { rtpCapabilities });
    const other = await joinWith(agent.url, { token: token({ room: 'room-replace', sub: 'gina' }).token });
    await ok(other.socket, 'join', { rtpCapabilities });
    const seen = recordEvents(other.socket);
    const firstClosed = new Promise<string>((resolve) => first.socket.once('disconnect', resolve));

    const second = await joinWith(agent.url, { token: token({ room: 'room-replace', sub: 'frank', aid: 'alloc-frank-2' }).token });
    expect(await firstClosed).toBe('io server disconnect');
    expect(second.welcome).toMatchObject({ peerId: 'frank', resumed: false, joined: false });
    expect(first.socket.connected).toBe(false);
    await ok(second.socket, 'join', { rtpCapabilities });
    await waitFor('peerLeft then peerJoined for frank', () => seen.filter((e) => (e.msg as { peerId?: string }).peerId === 'frank').length >= 2);
    expect(seen.map((e) => e.event)).toEqual(['peerLeft', 'peerJoined']);
    expect(agent.sfu.rooms.getRoom('room-replace')?.peers.size).toBe(2);
    await waitFor('old allocation left', () => router.participantEvents.find((e) => e.allocationId === 'alloc-frank-1' && e.event === 'left'));
    await ok(second.socket, 'leave', {});
    await ok(other.socket, 'leave', {});
    await waitFor('room closed', () => agent.sfu.rooms.rooms.size === 0);
  });
});
