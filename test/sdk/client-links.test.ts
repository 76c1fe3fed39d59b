import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Embedded } from '../../infra/embedded/launcher.ts';
import type { WanProfile } from '../../infra/embedded/wan-profile.ts';
import { createGrant } from '../../sdk/server.ts';
import { GRANT_AUDIENCE, GRANT_KEY, startCluster } from './helpers.ts';
import { type Participant, type Stats, startParticipant } from './participants.ts';

/**
 * The WAN profile's client-link impairment on real media: the embedded default with two regions,
 * `clientLossPct` for us-west only. A real WebRTC publisher and receiver (test/sdk/wrtc-participant.ts)
 * in a room on each region: us-west's clients' media crosses the launcher's client relays
 * (infra/embedded/client-relays.ts), which drop about that share each way, and its receiver sees
 * the losses; us-east's has no relay and loses nothing.
 */
const LOSS_PCT = 10;
const REGIONS = [
  { id: 'us-west', displayName: 'US West', lat: 45.6, lon: -121.2 },
  { id: 'us-east', displayName: 'US East', lat: 38.9, lon: -77.4 },
];
const PROFILE: WanProfile = {
  interRegionRttMs: { 'us-west': { 'us-east': 68 } },
  clientRttMs: { 'us-west': 20, 'us-east': 20 },
  clientLossPct: { 'us-west': LOSS_PCT },
};
const NEAR = { 'us-west': { 'us-west': 5, 'us-east': 400 }, 'us-east': { 'us-west': 400, 'us-east': 5 } };

let embedded: Embedded | null = null;
let dir = '';
const participants: Participant[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'client-links-'));
  const profile = join(dir, 'wan-profile.json');
  writeFileSync(profile, JSON.stringify(PROFILE));
  ({ embedded } = await startCluster({ GEO_SFU_REGIONS: JSON.stringify(REGIONS) }, profile));
}, 90_000);

afterAll(async () => {
  await Promise.all(participants.map((p) => p.stop()));
  await embedded?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function join_(roomId: string, participantId: string, region: 'us-west' | 'us-east', publish: boolean): Participant {
  const grant = createGrant({ key: GRANT_KEY, issuer: 'client-links-test', audience: GRANT_AUDIENCE, roomId, participantId, ttlSeconds: 600, nowMs: Date.now() });
  const p = startParticipant({ routerUrl: embedded!.routerUrl, roomId, participantId, grant, latencies: NEAR[region], publish });
  participants.push(p);
  return p;
}

it('drops about clientLossPct of a region’s client media each way at its relay; that region’s receiver sees losses, the other region’s none', async () => {
  const relays = embedded!.clientRelays!;
  expect(relays).not.toBeNull();
  // Only us-west's agent announces a relay address; us-east's clients go straight to their agent.
  const byNode = Object.fromEntries(embedded!.agents.map((a) => [a.nodeId, relays.addressOf(a.nodeId)]));
  expect(byNode['us-west-1']).toMatch(/^127\.\d+\.\d+\.\d+$/);
  expect(byNode['us-east-1']).toBeUndefined();
  // The agent reported its WebRtcServer's port before registering: the relay is there already.
  const views = relays.list();
  expect(views.map((v) => [v.nodeId, v.region, v.lossPct, v.oneWayDelayMs, v.jitterMs])).toEqual([['us-west-1', 'us-west', LOSS_PCT, 10, 0]]);
  expect(views[0]!.relay.address).toEqual({ ip: byNode['us-west-1'], port: views[0]!.relay.target.port });

  const westPub = join_('lossy', 'west-pub', 'us-west', true);
  const westRecv = join_('lossy', 'west-recv', 'us-west', false);
  const eastPub = join_('clean', 'east-pub', 'us-east', true);
  const eastRecv = join_('clean', 'east-recv', 'us-east', false);
  for (const [p, region] of [[westPub, 'us-west'], [westRecv, 'us-west'], [eastPub, 'us-east'], [eastRecv, 'us-east']] as const) {
    const joined = await p.waitFor('joined', (x) => x.lines.find((l) => l.type === 'joined'), 30_000);
    expect((joined.edge as { region: string }).region, p.name).toBe(region);
  }
  // Enough media for the shares to mean something: ~15 s of audio (50 packets/s) at each receiver.
  const enough = (s: Stats | undefined) => s !== undefined && s.framesDecoded >= 60 && s.packets.audio >= 600;
  await Promise.all([westRecv, eastRecv].map((p) => p.waitFor('media', (x) => enough(x.stats()), 45_000)));
  const west = westRecv.stats()!;
  const east = eastRecv.stats()!;

  const totals = relays.totals('us-west');
  const share = (d: { packets: number; dropped: number }) => d.dropped / (d.packets + d.dropped);
  const relay = views[0]!.relay;
  const lostShare = (s: Stats) => s.lost.audio / (s.lost.audio + s.packets.audio);
  console.log(
    [
      `us-west client relay ${relay.address.ip}:${relay.address.port} → ${relay.target.ip}:${relay.target.port}, ${relay.clients.seen} client addresses:`,
      `  up (clients → SFU): ${totals.up.packets} forwarded, ${totals.up.dropped} dropped (${(share(totals.up) * 100).toFixed(2)} %), ${totals.up.bytes} bytes`,
      `  down (SFU → clients): ${totals.down.packets} forwarded, ${totals.down.dropped} dropped (${(share(totals.down) * 100).toFixed(2)} %), ${totals.down.bytes} bytes`,
      `  us-west receiver: audio ${west.packets.audio} received, ${west.lost.audio} lost (${(lostShare(west) * 100).toFixed(2)} %); video ${west.packets.video} received, ${west.lost.video} lost, ${west.nacks} NACKs sent; ${west.framesDecoded} frames decoded`,
      `  us-east receiver: audio ${east.packets.audio} received, ${east.lost.audio} lost (${(lostShare(east) * 100).toFixed(2)} %); video ${east.packets.video} received, ${east.lost.video} lost, ${east.nacks} NACKs sent; ${east.framesDecoded} frames decoded`,
    ].join('\n'),
  );

  // Each client is a tuple of its own behind the relay (a publisher and a receiver, at least).
  expect(relay.clients.seen).toBeGreaterThanOrEqual(2);
  // About 10 % each way (binomial: σ = sqrt(0.09 / n), under 1 % for these counts; the bounds are wide).
  for (const direction of [totals.up, totals.down]) {
    expect(direction.packets + direction.dropped).toBeGreaterThan(1_000);
    expect(share(direction)).toBeGreaterThan(0.05);
    expect(share(direction)).toBeLessThan(0.16);
  }
  // The us-west receiver lost audio (not retransmitted: losses on its uplink and its downlink,
  // 1 − 0.9² ≈ 19 % expected) and asked for video again; us-east's lost nothing.
  expect(lostShare(west)).toBeGreaterThan(0.05);
  expect(lostShare(west)).toBeLessThan(0.4);
  expect(west.nacks).toBeGreaterThan(0);
  expect(east.lost.audio + east.lost.video).toBe(0);
  expect(east.nacks).toBe(0);
  // Nothing was relayed for us-east.
  expect(relays.list().every((v) => v.region === 'us-west')).toBe(true);
}, 90_000);
