import { afterAll, beforeAll, expect, it } from 'vitest';
import { createGrant } from '../../sdk/server.ts';
import { type Cluster, GRANT_AUDIENCE, GRANT_KEY, startCluster } from '../sdk/helpers.ts';
import { type Participant, startParticipant } from '../sdk/participants.ts';

/**
 * The whole path across three regions: /allocate places people from three continents on three
 * edges of one room, each joins its edge's SFU through the SDK with real WebRTC (wrtc, see
 * test/sdk/wrtc-participant.ts), and everyone receives everyone else's audio and video through the
 * agents' encrypted pipes, each track announced with its publisher's region.
 */
let cluster: Cluster;
const participants: Participant[] = [];

beforeAll(async () => {
  cluster = await startCluster();
}, 120_000);
afterAll(async () => {
  await Promise.all(participants.map((p) => p.stop()));
  await cluster?.embedded.close();
});

it('three participants on us-west, eu-west and apac edges see and hear each other through the cascade', async () => {
  const roomId = 'three-continents';
  const near = (region: string) => Object.fromEntries(['us-west', 'us-east', 'eu-west', 'apac'].map((r) => [r, r === region ? 5 : 400]));
  const placed: Array<{ who: string; region: string; p: Participant }> = [];
  for (const [who, region] of [['alice', 'us-west'], ['bob', 'eu-west'], ['carol', 'apac']] as const) {
    const grant = createGrant({ key: GRANT_KEY, issuer: 'cascade-e2e', audience: GRANT_AUDIENCE, roomId, participantId: who, ttlSeconds: 600, nowMs: Date.now() });
    const p = startParticipant({ routerUrl: cluster.embedded.routerUrl, roomId, participantId: who, grant, latencies: near(region) });
    participants.push(p);
    const joined = await p.waitFor('joined', (x) => x.lines.find((l) => l.type === 'joined'), 30_000);
    expect((joined.edge as { region: string }).region).toBe(region);
    placed.push({ who, region, p });
  }
  const room = (await (await fetch(`${cluster.embedded.routerUrl}/rooms/${roomId}`)).json()) as { cascade: { regions: string[]; links: unknown[] } };
  expect(room.cascade.regions).toEqual(['us-west', 'eu-west', 'apac']);
  expect(room.cascade.links).toHaveLength(3);

  for (const { who, p } of placed) {
    // Two remote peers, audio and video each: four consumers, all of media that crossed a pipe.
    await p.waitFor(`${who} consuming both others`, (x) => (x.stats()?.consumers ?? 0) >= 4, 45_000);
    await p.waitFor(`${who} decoding`, (x) => (x.stats()?.framesDecoded ?? 0) >= 30 && (x.stats()?.packets.audio ?? 0) >= 100, 45_000);
  }
  // Every stream keeps flowing: a second's worth of each publisher's video (15 fps) and audio
  // (10 ms chunks) rendered from each of the two others, counted per peer by the sinks.
  const SOURCE_FPS = 15;
  const AUDIO_CHUNKS_PER_S = 100;
  const before = placed.map(({ p }) => p.stats()!);
  const since = performance.now();
  const grown = (i: number, s: { received: Record<string, { video: number; audio: number }> }) =>
    placed.filter((o) => o.who !== placed[i]!.who).map((o) => ({
      from: o.who,
      video: (s.received[o.who]?.video ?? 0) - (before[i]!.received[o.who]?.video ?? 0),
      audio: (s.received[o.who]?.audio ?? 0) - (before[i]!.received[o.who]?.audio ?? 0),
    }));
  const after = await Promise.all(
    placed.map(({ who, p }, i) =>
      p.waitFor(`${who}: a second's worth of video and audio from each other peer`, (x) => {
        const s = x.stats()!;
        return grown(i, s).every((g) => g.video >= SOURCE_FPS && g.audio >= AUDIO_CHUNKS_PER_S) ? { stats: s, at: performance.now() } : null;
      }, 30_000),
    ),
  );
  const regionOf = new Map(placed.map((x) => [x.who, x.region]));
  for (const [i, { who, region, p }] of placed.entries()) {
    const added = p.events('trackAdded') as Array<{ peerId: string; kind: string; region: string }>;
    const seconds = (after[i]!.at - since) / 1000;
    console.log(
      `${who} (${region}): tracks from ${added.map((t) => `${t.peerId}/${t.kind}@${t.region}`).join(', ')}; over ${seconds.toFixed(1)} s: ` +
        grown(i, after[i]!.stats).map((g) => `${g.from} ${(g.video / seconds).toFixed(1)} frames/s, ${g.audio} audio chunks`).join('; ') +
        `; ${((after[i]!.stats.framesDecoded - before[i]!.framesDecoded) / seconds).toFixed(1)} frames/s decoded in all`,
    );
    expect([...new Set(added.map((t) => t.peerId))].sort()).toEqual(placed.filter((o) => o.who !== who).map((o) => o.who).sort());
    // Piped tracks carry the region their publisher is connected to, not this edge's.
    for (const t of added) expect(t.region, `${who} got ${t.peerId}/${t.kind}`).toBe(regionOf.get(t.peerId));
    expect(after[i]!.stats.framesDecoded).toBeGreaterThan(before[i]!.framesDecoded);
  }
}, 180_000);
