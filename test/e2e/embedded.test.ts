import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import type { RegionsResponse } from '../../shared/schemas/index.ts';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { allocate } from '../utils/http.ts';

/**
 * The embedded default as a newcomer runs it (router + four agents as child processes), with the
 * sample WAN profile: the prober and the agents must measure the profile's RTTs, and people from
 * three continents must be placed as the delay model says.
 */
const PROFILE = fileURLToPath(new URL('../../infra/embedded/sample-wan-profile.json', import.meta.url));
let embedded: Embedded;
const output: string[] = [];

beforeAll(async () => {
  const config = loadConfig({ GEO_SFU_WAN_PROFILE: PROFILE, GEO_SFU_PROBE_INTERVAL_MS: '250' });
  embedded = await launchEmbedded({
    config,
    fixedPorts: false,
    env: { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250' },
    onOutput: (name, line) => output.push(`[${name}] ${line}`),
  });
}, 60_000);
afterAll(async () => {
  await embedded?.close();
});

async function regions(): Promise<RegionsResponse> {
  const res = await fetch(`${embedded.routerUrl}/regions`);
  return (await res.json()) as RegionsResponse;
}

it('shows four healthy regions with measured RTTs matching the WAN profile', async () => {
  const deadline = Date.now() + 90_000;
  let body: RegionsResponse | null = null;
  // Wait until every region pair has at least 8 samples in its window.
  while (Date.now() < deadline) {
    try {
      body = await regions();
      const pairs = Object.values(body.interRegion).flatMap((row) => Object.values(row));
      const probes = body.regions.flatMap((r) => r.nodes.map((n) => n.probe.samples));
      if (body.regions.every((r) => r.healthy) && pairs.length === 12 && pairs.every((p) => p.samples >= 8) && probes.every((s) => s >= 8)) break;
    } catch {
      // Router not up yet.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(body, output.slice(-20).join('\n')).not.toBeNull();
  expect(body!.regions.map((r) => [r.id, r.healthy])).toEqual([['us-west', true], ['us-east', true], ['eu-west', true], ['apac', true]]);
  const profile = embedded.wanProfile!;
  const lines: string[] = [];
  for (const [from, row] of Object.entries(body!.interRegion)) {
    for (const [to, stats] of Object.entries(row)) {
      const expected = profile.interRegionRttMs[from]?.[to] ?? profile.interRegionRttMs[to]![from]!;
      lines.push(`${from}→${to}: median ${stats.medianMs} ms (profile ${expected})`);
      // Node's millisecond timers in the delay proxies can fire up to 1 ms early in each direction.
      expect(stats.medianMs!).toBeGreaterThanOrEqual(expected - 2);
      expect(stats.medianMs!).toBeLessThan(expected * 1.25 + 40);
      expect(stats.loss).toBe(0);
    }
  }
  for (const r of body!.regions) {
    const expected = profile.clientRttMs![r.id]!;
    const probe = r.nodes[0]!.probe;
    lines.push(`router→${r.id}: median ${probe.medianMs} ms (profile clientRttMs ${expected})`);
    expect(probe.medianMs!).toBeGreaterThanOrEqual(expected - 2);
    expect(probe.medianMs!).toBeLessThan(expected * 1.25 + 40);
  }
  console.log(lines.join('\n'));
}, 120_000);

it('places people from three continents into one room as the delay model says', async () => {
  const NEW_YORK = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };
  // Margins of 30+ ms, so a loaded machine's measurement error cannot flip a decision.
  // eu-west (5+72+10)/2 = 43.5 beats us-east (140+10)/2 = 75.
  const LONDON = { 'us-west': 200, 'us-east': 140, 'eu-west': 5, apac: 180 };
  // apac mean((5+224+10)/2, (5+176+5)/2) = 106.25 beats eu-west mean((260+72+10)/2, (260+5)/2) = 149.75.
  const SINGAPORE = { 'us-west': 250, 'us-east': 300, 'eu-west': 260, apac: 5 };
  const results = [];
  for (const [who, latencies] of [['alice', NEW_YORK], ['bob', LONDON], ['carol', SINGAPORE]] as const) {
    const res = await allocate(embedded.routerUrl, { roomId: 'world', participantId: who, latencies });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    results.push([who, res.body.homeRegion, res.body.region]);
    const agent = embedded.agents.find((a) => a.nodeId === res.body.node.id)!;
    expect(res.body.node.signalingUrl.startsWith(agent.publicUrl)).toBe(true);
  }
  expect(results).toEqual([
    ['alice', 'us-east', 'us-east'],
    ['bob', 'us-east', 'eu-west'],
    ['carol', 'us-east', 'apac'],
  ]);
  const room = (await (await fetch(`${embedded.routerUrl}/rooms/world`)).json()) as { cascade: { regions: string[] } };
  expect(room.cascade.regions).toEqual(['us-east', 'eu-west', 'apac']);
});
