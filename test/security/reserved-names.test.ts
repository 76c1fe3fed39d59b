import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import type { GeoSfuRoom, RemoteTrack } from '../../sdk/index.ts';
import { createGrant } from '../../sdk/server.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import { fakeMediaClient, fakeTrack, GRANT_AUDIENCE, GRANT_KEY, waitHealthy } from '../sdk/helpers.ts';
import { type Participant, startParticipant } from '../sdk/participants.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace } from '../utils/router-harness.ts';
import { OBJECT_PROTOTYPE_KEYS, RESERVED_NAMES, unexpectedErrors, until } from './helpers.ts';

/**
 * Issue #14's property test: names that collide with Object.prototype (`__proto__`,
 * `constructor`, `toString`... and random keys of Object.prototype) as room ids, participant ids
 * and display names, through the whole path on a real embedded cluster — a router (real Redis and
 * PostgreSQL) and two agents in two regions 80 ms apart (a WAN profile), cascade between them: /allocate, socket.io join,
 * produce (appData with reserved keys too) and consume (SDK with mediasoup-client's FakeHandler)
 * across the cascade, a live
 * rebalancing that moves two participants, leave. Afterwards every process is alive, no process
 * counted an unexpected error, and real media (wrtc participants, reserved names again) flows
 * across the cascade.
 */
const REGIONS = DEFAULT_REGIONS.filter((r) => r.id === 'us-west' || r.id === 'eu-west');
// The far region far enough that an inter-region RTT inflated by a loaded machine (the profile's
// 80 ms, measured through a delaying proxy) never makes staying in the other region look better.
const NEAR = { 'us-west': { 'us-west': 10, 'eu-west': 400 }, 'eu-west': { 'us-west': 400, 'eu-west': 10 } } as const;
type Region = keyof typeof NEAR;
const NAMES = [...new Set([...RESERVED_NAMES, ...OBJECT_PROTOTYPE_KEYS])];

let embedded: Embedded;
let profileDir: string;
const output: string[] = [];
const wrtc: Participant[] = [];
const joined: GeoSfuRoom[] = [];

const grant = (roomId: string, participantId: string) =>
  createGrant({ key: GRANT_KEY, issuer: 'reserved-names-test', audience: GRANT_AUDIENCE, roomId, participantId, ttlSeconds: 600, nowMs: Date.now() });

beforeAll(async () => {
  profileDir = mkdtempSync(path.join(tmpdir(), 'geo-sfu-reserved-'));
  const profile = path.join(profileDir, 'wan.json');
  writeFileSync(profile, JSON.stringify({ interRegionRttMs: { 'us-west': { 'eu-west': 80 } } }));
  const ns = runNamespace();
  const env = {
    REDIS_URL,
    DATABASE_URL,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_PG_SCHEMA: ns.pgSchema,
    GEO_SFU_LOG_LEVEL: 'warn',
    GEO_SFU_REGIONS: JSON.stringify(REGIONS),
    GEO_SFU_PROBE_INTERVAL_MS: '250',
    GEO_SFU_GRANT_SECRETS: `${GRANT_KEY.kid}:${GRANT_KEY.secret}`,
    GEO_SFU_REQUIRE_AUTH: 'true',
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE: '0',
    GEO_SFU_REBALANCE: 'true',
    GEO_SFU_REBALANCE_DEBOUNCE_MS: '300',
  };
  const config = loadConfig({ ...env, GEO_SFU_WAN_PROFILE: profile });
  embedded = await launchEmbedded({ config, fixedPorts: false, env, onOutput: (name, line) => output.push(`[${name}] ${line}`) });
  await waitHealthy(embedded, output);
}, 90_000);
afterAll(async () => {
  await Promise.all(joined.map((r) => r.leave().catch(() => undefined)));
  await Promise.all(wrtc.map((p) => p.stop()));
  await embedded?.close();
  await cleanupNamespaces();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

async function join(roomId: string, participantId: string, displayName: string, latencies: Record<string, number>): Promise<GeoSfuRoom> {
  const client = fakeMediaClient(embedded.routerUrl);
  const allocation = await client.allocate(roomId, participantId, { grant: grant(roomId, participantId), latencies });
  // Producers' appData with reserved keys too (JSON.parse makes `__proto__` an own key, as the wire does).
  const appData = JSON.parse('{"__proto__":{"polluted":true},"constructor":"c","toString":"s"}') as Record<string, unknown>;
  const room = await client.join({ allocation, displayName, tracks: (['audio', 'video'] as const).map((kind) => ({ track: fakeTrack(kind), options: { appData } })) });
  joined.push(room);
  return room;
}

async function leave(room: GeoSfuRoom): Promise<void> {
  await room.leave();
  joined.splice(joined.indexOf(room), 1);
}

interface RoomView {
  participants?: Array<{ participantId: string; region: string }>;
  cascade?: { regions: string[]; links: unknown[] };
}
const roomView = async (roomId: string): Promise<RoomView> =>
  (await (await fetch(`${embedded.routerUrl}/rooms/${encodeURIComponent(roomId)}`, { headers: { authorization: `Bearer ${embedded.credentials.adminToken}` } })).json()) as RoomView;

const tracksFrom = (room: GeoSfuRoom) => new Set(room.remoteTracks.map((t: RemoteTrack) => `${t.peerId}/${t.kind}`));

/** Every process of the cluster still running, and none counted an unexpected error. */
async function expectHealthy(): Promise<void> {
  const exited = [embedded.router, ...embedded.agents.map((a) => a.process)].filter((p) => p.exitCode !== null || p.signalCode !== null);
  expect(exited.length, `processes exited:\n${output.slice(-40).join('\n')}`).toBe(0);
  expect(await unexpectedErrors(embedded.routerUrl)).toBe(0);
  for (const agent of embedded.agents) expect(await unexpectedErrors(agent.directUrl), agent.nodeId).toBe(0);
}

const scenario = fc.record({
  roomId: fc.constantFrom(...NAMES),
  people: fc.uniqueArray(fc.record({ id: fc.constantFrom(...NAMES), displayName: fc.constantFrom(...NAMES), region: fc.constantFrom<Region>('us-west', 'eu-west') }), {
    minLength: 2,
    maxLength: 3,
    selector: (p) => p.id,
  }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

it('reserved names as room, participant and display names: allocate, join, produce and consume across the cascade, leave', async () => {
  // Each reserved name once as the room, with reserved participants in both regions; then random cases.
  const examples: Array<[Scenario]> = RESERVED_NAMES.map((roomId, i) => [
    {
      roomId,
      people: [
        { id: RESERVED_NAMES[(i + 1) % RESERVED_NAMES.length]!, displayName: RESERVED_NAMES[(i + 2) % RESERVED_NAMES.length]!, region: 'us-west' },
        { id: RESERVED_NAMES[(i + 3) % RESERVED_NAMES.length]!, displayName: roomId, region: 'eu-west' },
      ],
    },
  ]);
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async ({ roomId, people }) => {
      cases++;
      const rooms: GeoSfuRoom[] = [];
      for (const p of people) rooms.push(await join(roomId, p.id, p.displayName, NEAR[p.region]));
      for (const [i, room] of rooms.entries()) expect(room.edge.region, `${people[i]!.id} placed`).toBe(people[i]!.region);
      // Everyone consumes everyone else's audio and video, piped across the cascade when in the other region.
      for (const [i, room] of rooms.entries()) {
        const expected = people.filter((_, j) => j !== i).flatMap((p) => [`${p.id}/audio`, `${p.id}/video`]);
        await until(`${people[i]!.id} in ${roomId} consuming ${expected.join(', ')}`, async () => expected.every((t) => tracksFrom(room).has(t)), 15_000);
        // Display names do not cross the cascade (the pipes carry media, not peers' appData).
        const others = people.filter((_, j) => j !== i).map((p): [string, string | undefined] => [p.id, p.region === people[i]!.region ? p.displayName : undefined]);
        expect(new Map(room.participants.map((p) => [p.peerId, p.displayName]))).toEqual(new Map(others));
      }
      const regions = new Set(people.map((p) => p.region));
      const view = await roomView(roomId);
      expect(new Set(view.participants?.map((p) => p.participantId))).toEqual(new Set(people.map((p) => p.id)));
      expect(view.cascade?.links.length ?? 0).toBe(regions.size - 1);
      await Promise.all(rooms.map(leave));
      await until(`${roomId} empty`, async () => ((await roomView(roomId)).participants ?? []).length === 0, 10_000);
      await expectHealthy();
    }),
    { examples, numRuns: examples.length + 3, endOnFailure: true },
  );
  console.log(`${cases} rooms run (${examples.length} fixed, the rest drawn from ${NAMES.join(', ')})`);
}, 150_000);

it('live rebalancing moves participants with reserved names', async () => {
  const decisions = async () => {
    const text = await (await fetch(`${embedded.routerUrl}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('geo_sfu_rebalance_decisions_total{'))
      .map((l) => l.replace('geo_sfu_rebalance_decisions_total', ''));
  };
  const roomId = 'valueOf';
  // One near eu-west joins first; two nearer us-west join next and are placed next to it (80 ms
  // away across the cascade); when the first leaves, both are closer on us-west and are moved.
  const first = await join(roomId, '__proto__', 'constructor', { 'us-west': 125, 'eu-west': 29 });
  const x = await join(roomId, 'hasOwnProperty', '__proto__', { 'us-west': 70, 'eu-west': 117 });
  const y = await join(roomId, 'toString', 'prototype', { 'us-west': 72, 'eu-west': 110 });
  const placed = [x, y].map((r) => r.edge.region);
  await leave(first);
  await until('both moved to us-west', async () => x.edge.region === 'us-west' && y.edge.region === 'us-west', 20_000);
  console.log(`placed on ${placed.join(', ')}; after the first left: ${x.edge.region}, ${y.edge.region}; rebalance decisions ${(await decisions()).join(' ')}`);
  expect(placed).toEqual(['eu-west', 'eu-west']);
  expect((await decisions()).some((d) => d.startsWith('{outcome="moved"}') && !d.endsWith(' 0'))).toBe(true);
  await until('x and y consuming each other', async () => tracksFrom(x).has('toString/video') && tracksFrom(y).has('hasOwnProperty/video'), 15_000);
  await Promise.all([x, y].map(leave));
  await expectHealthy();
}, 60_000);

it('afterwards, real media still flows across the cascade (wrtc participants with reserved names)', async () => {
  const roomId = '__proto__';
  for (const [participantId, region] of [['constructor', 'us-west'], ['__proto__', 'eu-west']] as const) {
    const p = startParticipant({ routerUrl: embedded.routerUrl, roomId, participantId, grant: grant(roomId, participantId), latencies: NEAR[region] });
    wrtc.push(p);
    const joinedLine = await p.waitFor('joined', (x) => x.lines.find((l) => l.type === 'joined'), 30_000);
    expect((joinedLine.edge as { region: string }).region).toBe(region);
  }
  for (const p of wrtc) {
    await p.waitFor(`${p.name} decoding the other`, (x) => (x.stats()?.framesDecoded ?? 0) >= 30 && (x.stats()?.packets.audio ?? 0) >= 100, 30_000);
    const s = p.stats()!;
    console.log(`${p.name} on ${s.edge}: ${s.framesDecoded} frames decoded, ${s.packets.audio} audio packets, peers ${JSON.stringify(s.regions)}`);
    expect(Object.keys(s.regions)).toEqual([p.name === '__proto__' ? 'constructor' : '__proto__']);
  }
  expect((await roomView(roomId)).cascade?.links.length).toBe(1);
  await expectHealthy();
}, 90_000);
