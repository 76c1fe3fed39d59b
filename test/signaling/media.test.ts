import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type MediaClient, startMediaClient } from './clients.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, token, waitFor } from './helpers.ts';

/**
 * Real WebRTC: two wrtc + mediasoup-client participants (child processes, see wrtc-client.ts)
 * publishing synthetic video (320×240, 15 fps) and audio through the agent's SFU.
 * (DTLS with Debian's kernel-TLS libssl needs the worker patch in infra/mediasoup/patches/worker/.)
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
const clients: MediaClient[] = [];

beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 0 }));
}, 60_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await agents.closeAll();
  await router.close();
});

describe('real media through the agent (wrtc + mediasoup-client)', () => {
  it('two clients see each other’s media grow; a pause reaches the other side; leave reports `left`', async () => {
    const alice = startMediaClient(agent.url, token({ room: 'room-media', sub: 'alice' }).token);
    const bob = startMediaClient(agent.url, token({ room: 'room-media', sub: 'bob' }).token);
    clients.push(alice, bob);
    for (const c of [alice, bob]) await c.waitFor('decoded frames', (x) => (x.stats()?.framesDecoded ?? 0) >= 15 && (x.stats()?.packets.audio ?? 0) >= 50, 30_000);
    const first = [alice.stats()!.firstFrameMs!, bob.stats()!.firstFrameMs!];
    console.log(`connect → first decoded frame: alice ${first[0]} ms, bob ${first[1]} ms`);

    // Media keeps growing on both sides.
    const before = [alice.stats()!, bob.stats()!];
    await new Promise((r) => setTimeout(r, 1_500));
    const after = [alice.stats()!, bob.stats()!];
    for (const i of [0, 1]) {
      const fps = ((after[i]!.framesDecoded - before[i]!.framesDecoded) / 1.5).toFixed(1);
      console.log(`${i === 0 ? 'alice' : 'bob'} decodes ${fps} fps, audio packets +${after[i]!.packets.audio - before[i]!.packets.audio}`);
      expect(after[i]!.framesDecoded).toBeGreaterThan(before[i]!.framesDecoded + 5);
      expect(after[i]!.packets.audio).toBeGreaterThan(before[i]!.packets.audio + 50);
    }

    // Alice pauses her video: bob hears producerPaused and his decoded frames stop growing.
    alice.send('pause');
    await bob.waitFor('producerPaused', (c) => c.events('producerPaused').length > 0);
    await new Promise((r) => setTimeout(r, 500));
    const paused = bob.stats()!.framesDecoded;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(bob.stats()!.framesDecoded - paused).toBeLessThanOrEqual(1);
    alice.send('resume');
    await bob.waitFor('producerResumed', (c) => c.events('producerResumed').length > 0);
    await bob.waitFor('frames again', (c) => c.stats()!.framesDecoded > paused + 5, 10_000);

    alice.send('leave');
    await alice.waitFor('left', (c) => c.lines.some((l) => l.type === 'left'));
    await waitFor('left reported', () => router.participantEvents.find((e) => e.participantId === 'alice' && e.event === 'left'));
    await bob.waitFor('peerLeft', (c) => c.events('peerLeft').length > 0);
  }, 90_000);
});
