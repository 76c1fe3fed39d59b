import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { type MediaClient, startMediaClient } from '../signaling/clients.ts';
import { allocate } from '../utils/http.ts';

/**
 * The whole path across three regions: /allocate places people from three continents on three
 * edges of one room, each joins its edge's SFU with a real WebRTC client (wrtc + mediasoup-client),
 * and everyone receives everyone else's audio and video through the agents' encrypted pipes.
 */
const PROFILE = fileURLToPath(new URL('../../infra/embedded/sample-wan-profile.json', import.meta.url));
let embedded: Embedded;
const clients: MediaClient[] = [];

beforeAll(async () => {
  const config = loadConfig({ GEO_SFU_WAN_PROFILE: PROFILE });
  embedded = await launchEmbedded({ config, fixedPorts: false, env: { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250' } });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const body = await fetch(`${embedded.routerUrl}/regions`).then((r) => r.json() as Promise<{ regions: Array<{ healthy: boolean }>; interRegion: Record<string, Record<string, unknown>> }>).catch(() => null);
    const pairs = body ? Object.values(body.interRegion).reduce((n, row) => n + Object.keys(row).length, 0) : 0;
    if (body?.regions.every((r) => r.healthy) && pairs === 12) break;
    if (Date.now() > deadline) throw new Error('embedded default did not come up');
    await new Promise((r) => setTimeout(r, 500));
  }
}, 90_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await embedded?.close();
});

it('three participants on us-west, eu-west and apac edges see and hear each other through the cascade', async () => {
  const near = (region: string) => Object.fromEntries(['us-west', 'us-east', 'eu-west', 'apac'].map((r) => [r, r === region ? 5 : 400]));
  const placed: Array<{ who: string; region: string; client: MediaClient }> = [];
  for (const [who, region] of [['alice', 'us-west'], ['bob', 'eu-west'], ['carol', 'apac']] as const) {
    const res = await allocate(embedded.routerUrl, { roomId: 'three-continents', participantId: who, latencies: near(region) });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.region).toBe(region);
    // The client connects to the agent directly (the WAN delay proxies carry TCP only).
    const agent = embedded.agents.find((a) => a.nodeId === res.body.node.id)!;
    const client = startMediaClient(agent.directUrl, res.body.token);
    clients.push(client);
    placed.push({ who, region, client });
  }
  const room = (await (await fetch(`${embedded.routerUrl}/rooms/three-continents`)).json()) as { cascade: { regions: string[]; links: unknown[] } };
  expect(room.cascade.regions).toEqual(['us-west', 'eu-west', 'apac']);
  expect(room.cascade.links).toHaveLength(3);

  for (const { who, client } of placed) {
    // Two remote peers, audio and video each: four consumers, all of media that crossed a pipe.
    await client.waitFor(`${who} consuming both others`, (c) => (c.stats()?.consumers ?? 0) >= 4, 45_000);
    await client.waitFor(`${who} decoding`, (c) => (c.stats()?.framesDecoded ?? 0) >= 30 && (c.stats()?.packets.audio ?? 0) >= 100, 45_000);
  }
  const before = placed.map((p) => p.client.stats()!);
  await new Promise((r) => setTimeout(r, 2_000));
  const after = placed.map((p) => p.client.stats()!);
  for (const [i, p] of placed.entries()) {
    const peers = new Set(p.client.lines.filter((l) => l.type === 'consuming').map((l) => l.peerId));
    const fps = (after[i]!.framesDecoded - before[i]!.framesDecoded) / 2;
    console.log(`${p.who} (${p.region}): consuming from ${[...peers].join(', ')}; ${fps.toFixed(1)} frames/s decoded over 2 streams, audio +${after[i]!.packets.audio - before[i]!.packets.audio} packets`);
    expect([...peers].sort()).toEqual(placed.filter((o) => o !== p).map((o) => o.who).sort());
    // Two 15 fps streams: well above what one stream alone could give.
    expect(fps).toBeGreaterThan(18);
    expect(after[i]!.packets.audio - before[i]!.packets.audio).toBeGreaterThan(100);
  }
}, 150_000);
