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
  const before = placed.map(({ p }) => p.stats()!);
  await new Promise((r) => setTimeout(r, 2_000));
  const after = placed.map(({ p }) => p.stats()!);
  const regionOf = new Map(placed.map((x) => [x.who, x.region]));
  for (const [i, { who, region, p }] of placed.entries()) {
    const added = p.events('trackAdded') as Array<{ peerId: string; kind: string; region: string }>;
    const fps = (after[i]!.framesDecoded - before[i]!.framesDecoded) / 2;
    console.log(`${who} (${region}): tracks from ${added.map((t) => `${t.peerId}/${t.kind}@${t.region}`).join(', ')}; ${fps.toFixed(1)} frames/s decoded over 2 streams, audio +${after[i]!.packets.audio - before[i]!.packets.audio} packets`);
    expect([...new Set(added.map((t) => t.peerId))].sort()).toEqual(placed.filter((o) => o.who !== who).map((o) => o.who).sort());
    // Piped tracks carry the region their publisher is connected to, not this edge's.
    for (const t of added) expect(t.region, `${who} got ${t.peerId}/${t.kind}`).toBe(regionOf.get(t.peerId));
    // Two 15 fps streams: well above what one stream alone could give.
    expect(fps).toBeGreaterThan(18);
    expect(after[i]!.packets.audio - before[i]!.packets.audio).toBeGreaterThan(100);
  }
}, 180_000);
