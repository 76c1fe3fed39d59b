import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionLimiter } from '../../region-agent/signaling/connection-limiter.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, connect, sfuCounts, signalingConfig, startSignalingRouter, token } from './helpers.ts';

const LIMIT = 5;
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { signalingConnectionsPerMinute: LIMIT }));
});
afterAll(async () => {
  await agents.closeAll();
  await router.close();
});

describe('signaling connections per IP (GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE)', () => {
  it('accepts connections up to the limit, then refuses the next with RATE_LIMITED before looking at its token', async () => {
    const under = [];
    for (let i = 0; i < LIMIT; i++) under.push(await connect(agent.url, { token: token({ room: 'limited' }).token }));
    expect(under.map((r) => (r.welcome ? 'welcome' : r.error?.data?.code))).toEqual(Array(LIMIT).fill('welcome'));
    const before = await sfuCounts(agent);
    const over = await connect(agent.url, { token: token({ room: 'limited' }).token });
    // A bad credential counts too (floods of forged tokens are what the limit is for).
    const overForged = await connect(agent.url, { token: 'not-a-token' });
    console.log(`over the limit: ${over.error?.data?.code}: ${over.error?.message}`);
    expect(over.welcome).toBeUndefined();
    expect(over.error?.data?.code).toBe('RATE_LIMITED');
    expect(over.error?.message).toMatch(/more than 5 signaling connections per minute from this address/);
    expect(overForged.error?.data?.code).toBe('RATE_LIMITED');
    expect(await sfuCounts(agent)).toEqual(before);
    // The connections admitted before stay up.
    expect(under.every((r) => r.socket.connected)).toBe(true);
    for (const r of under) r.socket.close();
  });

  it('counts per address and per one-minute window; 0 turns it off', () => {
    let nowMs = 1_000_000;
    const limiter = new ConnectionLimiter(2, () => nowMs);
    expect(['a', 'a', 'a', 'b', 'b'].map((ip) => limiter.admit(ip))).toEqual([true, true, false, true, true]);
    nowMs += 59_999;
    expect(limiter.admit('a')).toBe(false);
    nowMs += 1;
    expect(limiter.admit('a')).toBe(true);
    const off = new ConnectionLimiter(0, () => nowMs);
    expect(Array.from({ length: 1_000 }, () => off.admit('a')).every(Boolean)).toBe(true);
  });
});
