import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegionsResponse } from '../../shared/schemas/index.ts';
import { createGrant } from '../../sdk/server.ts';
import { allocate } from '../utils/http.ts';
import { type Cluster, GRANT_AUDIENCE, GRANT_KEY, startCluster } from './helpers.ts';
import { type Participant, resumedAt, startParticipant } from './participants.ts';

/**
 * The P2P fallback with real WebRTC through the SDK: wrtc participants (child processes, see
 * test/sdk/wrtc-participant.ts) against the embedded default, every agent cordoned through its
 * admin API so no region can take a room; then one region uncordoned, so the router tells the
 * peers through its relay and the SDK moves them onto the SFU.
 */
let cluster: Cluster;
const participants: Participant[] = [];
const grant = (roomId: string, participantId: string) =>
  createGrant({ key: GRANT_KEY, issuer: 'sdk-p2p-test', audience: GRANT_AUDIENCE, roomId, participantId, ttlSeconds: 600, nowMs: Date.now() });
const NEW_YORK = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };
const LONDON = { 'us-west': 150, 'us-east': 75, 'eu-west': 5, apac: 180 };

async function cordon(nodeId: string, cordoned: boolean): Promise<void> {
  const agent = cluster.embedded.agents.find((a) => a.nodeId === nodeId)!;
  const res = await fetch(`${agent.directUrl}/admin/cordon`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cluster.embedded.credentials.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ cordoned }),
  });
  expect(res.status).toBe(200);
}

async function untilRouterSees(what: string, ok: (view: RegionsResponse) => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (ok((await (await fetch(`${cluster.embedded.routerUrl}/regions`)).json()) as RegionsResponse)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`router did not see ${what} within 15 s`);
}

beforeAll(async () => {
  cluster = await startCluster({ GEO_SFU_P2P_FALLBACK: 'true', GEO_SFU_P2P_CHECK_INTERVAL_MS: '250' });
}, 120_000);
afterAll(async () => {
  await Promise.all(participants.map((p) => p.stop()));
  await cluster?.embedded.close();
});

const grows = (p: Participant, what: string, since: { framesDecoded: number; audio: number }, timeoutMs = 30_000) =>
  p.waitFor(what, (x) => {
    const s = x.stats();
    return s && s.framesDecoded >= since.framesDecoded + 10 && s.packets.audio >= since.audio + 50 ? s : null;
  }, timeoutMs);

describe('P2P fallback with real media (wrtc)', () => {
  beforeAll(async () => {
    for (const a of cluster.embedded.agents) await cordon(a.nodeId, true);
    await untilRouterSees('every node cordoned', (v) => v.regions.every((r) => r.nodes.every((n) => n.cordoned)));
  }, 30_000);

  it('a full mesh of three: everyone receives every publisher, also a participant that only receives', async () => {
    const roomId = 'mesh-of-three';
    const start = (participantId: string, publish: boolean) => {
      const p = startParticipant({ routerUrl: cluster.embedded.routerUrl, roomId, participantId, grant: grant(roomId, participantId), latencies: NEW_YORK, publish });
      participants.push(p);
      return p;
    };
    const a = start('a', true);
    const b = start('b', true);
    const viewer = start('viewer', false);
    const tracksFrom = (p: Participant) => (p.events('trackAdded') as Array<{ peerId: string; kind: string; region: string }>).map((t) => `${t.peerId}/${t.kind}@${t.region}`).sort();
    await viewer.waitFor('four tracks at the viewer', (p) => tracksFrom(p).length === 4, 30_000);
    expect(tracksFrom(viewer)).toEqual(['a/audio@p2p', 'a/video@p2p', 'b/audio@p2p', 'b/video@p2p']);
    await a.waitFor('b’s tracks at a', (p) => tracksFrom(p).length === 2, 20_000);
    await b.waitFor('a’s tracks at b', (p) => tracksFrom(p).length === 2, 20_000);
    expect(tracksFrom(a)).toEqual(['b/audio@p2p', 'b/video@p2p']);
    expect(tracksFrom(b)).toEqual(['a/audio@p2p', 'a/video@p2p']);
    for (const p of [a, b, viewer]) expect((p.events('participantJoined') as Array<{ peerId: string }>).map((e) => e.peerId).sort()).toEqual(['a', 'b', 'viewer'].filter((x) => x !== p.name));
    await viewer.waitFor('frames at the viewer', (p) => p.stats()?.framesDecoded, 20_000);
    // Both direct streams flow: a second's worth of each publisher's video (15 fps) and audio (10 ms
    // chunks) rendered at the viewer, counted per peer by its sinks.
    const { received: before, framesDecoded: decodedBefore } = viewer.stats()!;
    const since = performance.now();
    const grown = (s: { received: Record<string, { video: number; audio: number }> }) =>
      ['a', 'b'].map((from) => ({ from, video: (s.received[from]?.video ?? 0) - (before[from]?.video ?? 0), audio: (s.received[from]?.audio ?? 0) - (before[from]?.audio ?? 0) }));
    const after = await viewer.waitFor('a second\'s worth of video and audio from a and from b', (p) => {
      const s = p.stats()!;
      return grown(s).every((g) => g.video >= 15 && g.audio >= 100) ? s : null;
    }, 30_000);
    const seconds = (performance.now() - since) / 1000;
    console.log(
      `mesh of three: over ${seconds.toFixed(1)} s the viewer renders ${grown(after).map((g) => `${(g.video / seconds).toFixed(1)} frames/s and ${g.audio} audio chunks from ${g.from}`).join(', ')}; ` +
        `${((after.framesDecoded - decodedBefore) / seconds).toFixed(1)} frames/s decoded in all`,
    );
    expect(after.framesDecoded).toBeGreaterThan(decodedBefore);
    // Leaving: the others hear it.
    b.send('leave');
    await a.waitFor('b left', (p) => (p.events('participantLeft') as Array<{ peerId: string }>).some((e) => e.peerId === 'b'), 10_000);
    await viewer.waitFor('b’s tracks removed', (p) => p.events('trackRemoved').length === 2, 10_000);
    await Promise.all([a, b, viewer].map((p) => p.stop()));
  }, 90_000);

  it('no region can take the room: peers exchange media directly; a region comes back: they move onto the SFU and media flows again', async () => {
    const roomId = 'p2p-media';
    const start = (participantId: string, latencies: Record<string, number>) => {
      const p = startParticipant({ routerUrl: cluster.embedded.routerUrl, roomId, participantId, grant: grant(roomId, participantId), latencies });
      participants.push(p);
      return p;
    };
    const nyc = start('nyc', NEW_YORK);
    const ldn = start('ldn', LONDON);
    for (const p of [nyc, ldn]) {
      const joined = await p.waitFor('joined', (x) => x.lines.find((l) => l.type === 'joined'));
      expect(joined.edge).toMatchObject({ mode: 'p2p', region: 'p2p' });
    }
    const [a, b] = await Promise.all([grows(nyc, 'frames from ldn (direct)', { framesDecoded: 0, audio: 0 }), grows(ldn, 'frames from nyc (direct)', { framesDecoded: 0, audio: 0 })]);
    expect([a.mode, b.mode]).toEqual(['p2p', 'p2p']);
    expect([a.regions, b.regions]).toEqual([{ ldn: 'p2p' }, { nyc: 'p2p' }]);
    const fps = async (p: Participant) => {
      const before = p.stats()!.framesDecoded;
      await new Promise((r) => setTimeout(r, 1_000));
      return p.stats()!.framesDecoded - before;
    };
    const rates = await Promise.all([fps(nyc), fps(ldn)]);
    const growth = await Promise.all([grows(nyc, 'more frames', { framesDecoded: nyc.stats()!.framesDecoded, audio: nyc.stats()!.packets.audio }), grows(ldn, 'more frames', { framesDecoded: ldn.stats()!.framesDecoded, audio: ldn.stats()!.packets.audio })]);
    console.log(
      `P2P: first frame at nyc ${nyc.stats()!.firstFrameMs} ms, at ldn ${ldn.stats()!.firstFrameMs} ms after start; ${rates[0]} / ${rates[1]} fps received directly; frames ${growth[0].framesDecoded} / ${growth[1].framesDecoded}, audio packets ${growth[0].packets.audio} / ${growth[1].packets.audio}`,
    );
    expect(rates[0]).toBeGreaterThan(5);
    expect(rates[1]).toBeGreaterThan(5);

    // The mesh is full at 4: two more fit, the fifth gets 503 with Retry-After.
    for (const id of ['third', 'fourth']) {
      const res = await allocate(cluster.embedded.routerUrl, { roomId, participantId: id, latencies: NEW_YORK }, { authorization: `Bearer ${grant(roomId, id)}` });
      expect((res.body as unknown as { mode: string }).mode).toBe('p2p');
    }
    const fifth = await allocate(cluster.embedded.routerUrl, { roomId, participantId: 'fifth', latencies: NEW_YORK }, { authorization: `Bearer ${grant(roomId, 'fifth')}` });
    expect(fifth.status).toBe(503);
    expect(Number(fifth.headers['retry-after'])).toBeGreaterThan(0);

    // A region can take the room again.
    const usEast = cluster.embedded.agents.find((x) => x.region === 'us-east')!.nodeId;
    const freedAt = performance.now();
    await cordon(usEast, false);
    const moved = await Promise.all(
      [nyc, ldn].map((p) =>
        p.waitFor(`${p.name}: on the SFU with video and audio again`, (q) => {
          const s = q.stats();
          if (s?.mode !== 'sfu') return null;
          const v = resumedAt(q, freedAt, (x) => x.framesDecoded);
          const au = resumedAt(q, freedAt, (x) => x.packets.audio);
          return v !== null && au !== null ? { at: Math.max(v, au), stats: s } : null;
        }, 30_000),
      ),
    );
    const migrateSeen = [nyc, ldn].map((p) => p.lines.find((l) => l.type === 'event' && l.event === 'moved' && l.at >= freedAt)!.at - freedAt);
    // The gap seen by the application: the last stats line of direct media before the move, to media through the SFU.
    const gaps = [nyc, ldn].map((p, i) => {
      const lines = p.lines.filter((l) => l.type === 'stats' && l.at >= freedAt) as unknown as Array<{ at: number; mode: string; framesDecoded: number }>;
      const lastDirect = lines.filter((l) => l.mode === 'p2p').at(-1)?.at ?? freedAt;
      return Math.round(moved[i]!.at - lastDirect);
    });
    console.log(
      `region back → migrate heard after ${migrateSeen.map(Math.round).join(' / ')} ms; media through the SFU (${moved.map((m) => m.stats.edge).join(', ')}) ${moved.map((m) => Math.round(m.at - freedAt)).join(' / ')} ms after the uncordon; gap between the last direct stats and media via the SFU ${gaps.join(' / ')} ms`,
    );
    expect(moved.every((m) => m.stats.edge === usEast)).toBe(true);
    await Promise.all([grows(nyc, 'frames through the SFU', { framesDecoded: moved[0]!.stats.framesDecoded, audio: moved[0]!.stats.packets.audio }), grows(ldn, 'frames through the SFU', { framesDecoded: moved[1]!.stats.framesDecoded, audio: moved[1]!.stats.packets.audio })]);
    for (const p of [nyc, ldn]) expect(p.lines.filter((l) => l.type === 'event' && l.event === 'participantLeft')).toEqual([]);
    // Each knows the other where it now is: the region of the edge its producers come from, not "p2p".
    expect([nyc.stats()!.regions, ldn.stats()!.regions]).toEqual([{ ldn: 'us-east' }, { nyc: 'us-east' }]);
  }, 180_000);
});
