import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignalingError, type GeoSfuRoom } from '../../sdk/index.ts';
import type { Permissions } from '../../shared/tokens.ts';
import type { Peer } from '../../sfu/index.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { type RunningAgent, SfuAgents, type SignalingRouter, signalingConfig, startSignalingRouter, directAllocation, waitFor } from '../signaling/helpers.ts';
import { fakeMediaClient, fakeTrack } from './helpers.ts';
import { type Participant, startParticipant } from './participants.ts';

/**
 * The SDK honours its permissions (issue 14): they reach it in the join answer; a publish-only
 * participant opens no recv transport and consumes nothing, a subscribe-only one opens no send
 * transport, and FORBIDDEN is final (no retry, no failover). Real WebRTC participants (wrtc, child
 * processes as in media.test.ts) against one agent with a stub router: they join hand-made
 * allocations whose join tokens carry the permissions.
 */
let router: SignalingRouter;
let agent: RunningAgent;
const agents = new SfuAgents();
const participants: Participant[] = [];
const rooms: GeoSfuRoom[] = [];

beforeAll(async () => {
  router = await startSignalingRouter(CLUSTER_SECRET);
  agent = await agents.start(signalingConfig(router.url, { resumeGraceMs: 0 }));
}, 60_000);
afterAll(async () => {
  await Promise.all(participants.map((p) => p.stop()));
  await Promise.all(rooms.map((r) => r.leave().catch(() => undefined)));
  await agents.closeAll();
  await router.close();
});


const sfuPeer = (roomId: string, peerId: string): Peer | undefined => agent.sfu.rooms.rooms.get(roomId)?.getPeer(peerId);
const directions = (peer: Peer | undefined) => [...(peer?.transports.values() ?? [])].map((t) => (t.appData as { direction?: string }).direction).sort();

describe('SDK permissions (real media)', () => {
  it('a publish-only and a subscribe-only participant: each opens only its transport; media flows one way', async () => {
    const room = 'sdk-perm-media';
    const start = (id: string, perm: Permissions, publish: boolean) => {
      const p = startParticipant({ routerUrl: router.url, roomId: room, participantId: id, allocation: directAllocation(agent.url, room, id, perm), publish });
      participants.push(p);
      return p;
    };
    const speaker = start('speaker', { publish: true, subscribe: false }, true);
    const viewer = start('viewer', { publish: false, subscribe: true }, false);
    const joined = await Promise.all([speaker, viewer].map((p) => p.waitFor('joined', (x) => x.lines.find((l) => l.type === 'joined'))));
    expect(joined.map((j) => j.permissions)).toEqual([
      { publish: true, subscribe: false, publishData: true },
      { publish: false, subscribe: true, publishData: false },
    ]);
    await viewer.waitFor('frames and audio from the speaker', (x) => (x.stats()?.framesDecoded ?? 0) >= 15 && (x.stats()?.packets.audio ?? 0) >= 50, 30_000);
    // The speaker announced the viewer's arrival but consumes nothing (there is nothing to; it would not anyway).
    await speaker.waitFor('a stats line', (x) => x.stats());
    const speakerPeer = sfuPeer(room, 'speaker');
    const viewerPeer = sfuPeer(room, 'viewer');
    console.log(
      `publish-only: transports ${JSON.stringify(directions(speakerPeer))}, ${speakerPeer?.producers.size} producers, ${speakerPeer?.consumers.size} consumers; subscribe-only: transports ${JSON.stringify(directions(viewerPeer))}, ${viewerPeer?.producers.size} producers, ${viewerPeer?.consumers.size} consumers, ${viewer.stats()!.framesDecoded} frames decoded`,
    );
    expect(directions(speakerPeer)).toEqual(['send']);
    expect(speakerPeer?.producers.size).toBe(2);
    expect(speakerPeer?.consumers.size).toBe(0);
    expect(directions(viewerPeer)).toEqual(['recv']);
    expect(viewerPeer?.producers.size).toBe(0);
    expect(viewerPeer?.consumers.size).toBe(2);
    expect(speaker.stats()!.consumers).toBe(0);
    // Nobody hit a refusal on the way: the SDK asked only for what it may do.
    expect([...speaker.events('error'), ...viewer.events('error')]).toEqual([]);
  }, 60_000);

  it('FORBIDDEN is final: publishing without permission fails at once, the room stays on its edge, nothing is asked of the SFU', async () => {
    const client = fakeMediaClient(router.url);
    let reallocations = 0;
    const events: string[] = [];
    const room = await client.join({
      allocation: directAllocation(agent.url, 'sdk-perm-final', 'watcher', { publish: false, subscribe: true }),
      reallocate: async () => {
        reallocations++;
        throw new Error('no reallocation expected');
      },
      on: { reconnecting: () => events.push('reconnecting'), moved: () => events.push('moved'), closed: () => events.push('closed') },
    });
    rooms.push(room);
    expect(room.permissions).toEqual({ publish: false, subscribe: true, publishData: false });
    const err = await room.publish(fakeTrack('video')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SignalingError);
    expect((err as SignalingError).code).toBe('FORBIDDEN');
    expect(room.localProducers).toEqual([]);
    expect(directions(sfuPeer('sdk-perm-final', 'watcher'))).toEqual(['recv']);

    // Joining with tracks but no publish permission: the join fails with FORBIDDEN, no failover.
    const failed = await client
      .join({ allocation: directAllocation(agent.url, 'sdk-perm-final', 'mute', { publish: false, subscribe: true }), tracks: [fakeTrack('audio')], reallocate: async () => {
        reallocations++;
        throw new Error('no reallocation expected');
      } })
      .catch((e: unknown) => e);
    expect((failed as SignalingError).code).toBe('FORBIDDEN');
    await waitFor('the refused participant gone from the SFU', () => !sfuPeer('sdk-perm-final', 'mute'));
    expect({ reallocations, events, closed: room.closed }).toEqual({ reallocations: 0, events: [], closed: false });
  });
});
