import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type Participant, startParticipant } from '../sdk/participants.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, directAllocation, waitFor } from './helpers.ts';

/**
 * Real WebRTC: two SDK participants with @roamhq/wrtc (child processes, see
 * test/sdk/wrtc-participant.ts) publishing synthetic video (320×240, 15 fps) and audio through the
 * agent's SFU; they join a hand-made allocation (no /allocate: the router here is a stub).
 * (DTLS with Debian's kernel-TLS libssl needs the worker patch in infra/mediasoup/patches/worker/.)
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


function start(participantId: string): Participant {
  const p = startParticipant({ routerUrl: router.url, roomId: 'room-media', participantId, allocation: directAllocation(agent.url, 'room-media', participantId), publish: true });
  participants.push(p);
  return p;
}

describe('real media through the agent (SDK + wrtc)', () => {
  it('two clients see each other’s media grow; a pause reaches the other side; leave reports `left`', async () => {
    const alice = start('alice');
    const bob = start('bob');
    for (const c of [alice, bob]) await c.waitFor('decoded frames', (x) => (x.stats()?.framesDecoded ?? 0) >= 15 && (x.stats()?.packets.audio ?? 0) >= 50, 30_000);
    const first = [alice.stats()!.firstFrameMs!, bob.stats()!.firstFrameMs!];
    console.log(`start → first decoded frame: alice ${first[0]} ms, bob ${first[1]} ms`);

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

    // Alice pauses her video: bob hears it (trackPaused) and his decoded frames stop growing.
    alice.send('pause');
    await bob.waitFor('trackPaused', (c) => c.events('trackPaused').some((m) => (m as { paused: boolean }).paused));
    await new Promise((r) => setTimeout(r, 500));
    const paused = bob.stats()!.framesDecoded;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(bob.stats()!.framesDecoded - paused).toBeLessThanOrEqual(1);
    alice.send('resume');
    await bob.waitFor('track resumed', (c) => c.events('trackPaused').some((m) => !(m as { paused: boolean }).paused));
    await bob.waitFor('frames again', (c) => c.stats()!.framesDecoded > paused + 5, 10_000);

    alice.send('leave');
    await alice.waitFor('left', (c) => c.lines.some((l) => l.type === 'left'));
    await waitFor('left reported', () => router.participantEvents.find((e) => e.participantId === 'alice' && e.event === 'left'));
    await bob.waitFor('participantLeft', (c) => c.events('participantLeft').length > 0);
  }, 90_000);
});
