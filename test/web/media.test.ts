import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import type { PipeRelayView } from '../../infra/embedded/pipe-relays.ts';
import { interRegionRtt } from '../../infra/embedded/wan-profile.ts';
import { CONFIG_SPEC, loadConfig } from '../../shared/config/index.ts';
import type { RegionsResponse, RoomView } from '../../shared/schemas/index.ts';
import { startRouter, testConfig } from '../utils/router-harness.ts';
import { ARTIFACTS, capturePeerConnections, demoEdge, type DemoInbound, demoInboundMedia, demoInboundQuality, launchChromium, MEDIA_ARGS, prepareWeb, ROOT } from './browser.ts';

/**
 * Real browsers, real media, across emulated continents: chromium pages open /demo (the SDK
 * bundled for the browser) against the embedded default with the sample WAN profile and media
 * relays, each emulating a region so /allocate puts it on that region's edge. Their peer
 * connections' getStats() must show the others' video decoded and audio received, growing; the
 * launcher's UDP relays must show that media crossing the emulated inter-region links with the
 * profile's delay. Then an agent is killed and its browser must come back through the SDK.
 *
 * The cascade cases share one embedded default and run in order (each builds on the room of the
 * one before). The P2P fallback runs on the same embedded default afterwards, in its own room:
 * every agent cordoned through the admin API, two pages connect directly (the launcher turns the
 * fallback on outside production mode), then one region is uncordoned and the router's relay moves
 * them onto the SFU.
 */
const PROFILE = join(ROOT, 'infra/embedded/sample-wan-profile.json');
const ROOM = 'browsers-across-regions';
const SAMPLE_MS = 4_000;

let embedded: Embedded;
let browser: Browser;
const output: string[] = [];

interface Participant {
  name: string;
  region: string;
  context: BrowserContext;
  page: Page;
  nodeId: string;
}
const people = new Map<string, Participant>();

beforeAll(async () => {
  prepareWeb();
  const config = loadConfig({ GEO_SFU_WAN_PROFILE: PROFILE });
  [embedded, browser] = await Promise.all([
    launchEmbedded({
      config,
      fixedPorts: false,
      pipeRelays: true,
      env: { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250' },
      onOutput: (name, line) => output.push(`[${name}] ${line}`),
    }),
    launchChromium(MEDIA_ARGS),
  ]);
  await healthy();
}, 120_000);

afterAll(async () => {
  for (const p of people.values()) await p.context.close().catch(() => undefined);
  await browser?.close();
  await embedded?.close();
});

async function healthy(): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const body = await fetch(`${embedded.routerUrl}/regions`).then((r) => r.json() as Promise<RegionsResponse>).catch(() => null);
    const pairs = body ? Object.values(body.interRegion).flatMap((row) => Object.values(row)) : [];
    if (body?.regions.every((r) => r.healthy) && pairs.length === 12 && pairs.every((p) => p.samples >= 3)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`embedded default did not come up\n${output.slice(-20).join('\n')}`);
}

/**
 * Opens /demo as `name` emulating `region`, joins `room`, and waits until the page says it is
 * joined: on that region's edge, or (`direct`) in P2P mode, where `region` and `nodeId` become "p2p".
 */
async function joinDemo(name: string, region: string, opts: { room?: string; direct?: boolean } = {}): Promise<Participant> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await capturePeerConnections(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => output.push(`[page ${name}] ${err.message}`));
  await page.goto(`${embedded.routerUrl}/demo?room=${opts.room ?? ROOM}&name=${name}&region=${region}`);
  // The region list and the browser's own RTT measurement are in.
  await page.waitForFunction((r) => (document.querySelector('#region') as HTMLSelectElement | null)?.value === r, region, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('#rtt td[data-rtt]:not([data-rtt=""])').length === 4, null, { timeout: 30_000 });
  await page.click('#join');
  await page.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-state') === 'joined', null, { timeout: 60_000 }).catch(async (err: Error) => {
    throw new Error(`${name} did not join: ${await page.locator('#log').innerText()}\n${err.message}`);
  });
  const edge = await demoEdge(page);
  const p: Participant = { name, region: edge.region!, context, page, nodeId: edge.node! };
  expect(edge.mode, `${name}'s connection`).toBe(opts.direct ? 'p2p' : 'sfu');
  expect(edge.region, `${name} emulating ${region} was placed on ${edge.region}`).toBe(opts.direct ? 'p2p' : region);
  people.set(name, p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `p` decodes video and receives audio from each of `from`. */
async function waitForMedia(p: Participant, from: string[], timeoutMs = 60_000): Promise<DemoInbound> {
  const deadline = Date.now() + timeoutMs;
  let last: DemoInbound = {};
  while (Date.now() < deadline) {
    last = await demoInboundMedia(p.page);
    if (from.every((o) => (last[o]?.framesDecoded ?? 0) > 0 && (last[o]?.audioPackets ?? 0) > 0)) return last;
    await sleep(500);
  }
  throw new Error(`${p.name} gets no media from ${from.join(', ')}: ${JSON.stringify(last)}\n${await p.page.locator('#log').innerText()}\n${output.slice(-15).join('\n')}`);
}

/** Media growth at each participant from each other one over SAMPLE_MS; asserts ≥ 1/3 of 15 fps video and of 50 packets/s audio. */
async function expectFlowing(names: string[]): Promise<void> {
  const ps = names.map((n) => people.get(n)!);
  for (const p of ps) await waitForMedia(p, names.filter((n) => n !== p.name));
  const before = await Promise.all(ps.map((p) => demoInboundMedia(p.page)));
  await sleep(SAMPLE_MS);
  const after = await Promise.all(ps.map((p) => demoInboundMedia(p.page)));
  for (const [i, p] of ps.entries()) {
    for (const other of names.filter((n) => n !== p.name)) {
      const fps = (after[i]![other]!.framesDecoded - before[i]![other]!.framesDecoded) / (SAMPLE_MS / 1000);
      const pps = (after[i]![other]!.audioPackets - before[i]![other]!.audioPackets) / (SAMPLE_MS / 1000);
      console.log(`${p.name} (${p.region}) ← ${other} (${after[i]![other]!.region}): ${fps.toFixed(1)} frames/s decoded, ${pps.toFixed(1)} audio packets/s`);
      // The tile says where the other one is connected: its own edge's region, not this page's.
      expect(after[i]![other]!.region, `${p.name}'s tile of ${other}`).toBe(people.get(other)!.region);
      expect(fps, `${p.name} decoding ${other}`).toBeGreaterThan(5);
      expect(pps, `${p.name} hearing ${other}`).toBeGreaterThan(16);
    }
  }
}

/** The room's relays between two nodes, with their traffic now. */
function relaysOf(nodeA: string, nodeB: string): PipeRelayView[] {
  return embedded.pipeRelays!.list().filter((r) => r.roomId === ROOM && r.nodes.includes(nodeA) && r.nodes.includes(nodeB));
}

/** Shows the media between two edges crossed the emulated link: packets both ways while sampling, held for the profile's one-way delay. */
async function expectRelayed(a: Participant, b: Participant): Promise<void> {
  const [relay] = relaysOf(a.nodeId, b.nodeId);
  expect(relay, `a relay between ${a.nodeId} and ${b.nodeId}`).toBeDefined();
  const oneWay = interRegionRtt(embedded.wanProfile!, a.region, b.region)! / 2;
  expect(relay!.oneWayDelayMs).toBe(oneWay);
  const snap = () => ({ ab: { ...relay!.relay.stats.ab }, ba: { ...relay!.relay.stats.ba } });
  const before = snap();
  await sleep(2_000);
  const after = snap();
  for (const dir of ['ab', 'ba'] as const) {
    const forwarded = after[dir].forwarded - before[dir].forwarded;
    const meanHeld = (after[dir].heldTotalMs - before[dir].heldTotalMs) / Math.max(1, forwarded);
    const ssrcs = after[dir].rtpBySsrc.size;
    console.log(
      `relay ${relay!.nodes.join(' ↔ ')} ${dir === 'ab' ? '→' : '←'} (${relay!.regions.join('/')}, profile ${oneWay} ms one way): ${forwarded} packets in 2 s, ${ssrcs} RTP streams, held ${meanHeld.toFixed(1)} ms mean, ${after[dir].heldMaxMs.toFixed(1)} ms max`,
    );
    // Audio and video of one participant each way at least.
    expect(forwarded).toBeGreaterThan(100);
    expect(ssrcs).toBeGreaterThanOrEqual(2);
    // Timers fire late, never early; the bound on lateness is generous for a busy 2-core machine.
    expect(meanHeld).toBeGreaterThanOrEqual(oneWay - 1);
    expect(meanHeld).toBeLessThan(oneWay + 60);
  }
}

describe('browsers in different regions through the cascade', () => {
  it('us-west and eu-west: placed on their regions\' edges, each decodes the other\'s video and receives its audio across the delayed pipe', async () => {
    const alice = await joinDemo('alice', 'us-west');
    const bob = await joinDemo('bob', 'eu-west');
    expect(alice.nodeId).not.toBe(bob.nodeId);

    // The page shows the browser's own RTTs, which follow the profile's clientRttMs (via the agents' delay proxies).
    const rtts = await alice.page.locator('#rtt td[data-rtt]').evaluateAll((tds) => tds.map((td) => [td.closest('tr')!.getAttribute('data-region'), Number(td.getAttribute('data-rtt'))] as const));
    console.log(`alice's measured RTTs: ${rtts.map(([r, v]) => `${r} ${v.toFixed(1)} ms`).join(', ')}`);
    for (const [region, rtt] of rtts) expect(rtt, region!).toBeGreaterThanOrEqual(embedded.wanProfile!.clientRttMs![region!]! * 0.9);

    await expectFlowing(['alice', 'bob']);
    await expectRelayed(alice, bob);
    // Both pages list the other under its region.
    for (const [p, other] of [[alice, bob], [bob, alice]] as const) {
      await p.page.waitForSelector(`#groups .group[data-region="${other.region}"] li[data-participant="${other.name}"]`, { timeout: 10_000 });
    }
    const room = (await (await fetch(`${embedded.routerUrl}/rooms/${ROOM}`)).json()) as RoomView;
    expect(room.cascade.regions.sort()).toEqual(['eu-west', 'us-west']);
  }, 180_000);

  it('a third browser in apac joins: all three see and hear each other', async () => {
    const carol = await joinDemo('carol', 'apac');
    await expectFlowing(['alice', 'bob', 'carol']);
    // carol's links are seconds old: too few packets to tell they are clean, so the agent asked
    // her browser to hold the video piped in over them (protocol 1.4; the SDK sets it): the
    // setting, or the link's round trip once the conditioners measured it, the longer.
    const young = await demoInboundQuality(carol.page);
    for (const other of ['alice', 'bob']) {
      const rtt = interRegionRtt(embedded.wanProfile!, 'apac', people.get(other)!.region)!;
      const target = young[other]?.videoJitterBufferTargetMs;
      console.log(`carol's receiver of ${other}'s video (link ${rtt} ms): jitter buffer target ${target ?? 'own'}`);
      expect(target, `carol's receiver of ${other}'s video`).toBeGreaterThanOrEqual(CONFIG_SPEC.pipeVideoBufferMs.default);
      expect(target, `carol's receiver of ${other}'s video`).toBeLessThanOrEqual(Math.max(CONFIG_SPEC.pipeVideoBufferMs.default, rtt + 60));
    }
    await expectRelayed(people.get('bob')!, carol);
    for (const p of people.values()) await p.page.screenshot({ path: join(ARTIFACTS, `demo-${p.name}-${p.region}.png`), fullPage: true });
    await people.get('alice')!.page.waitForSelector('#groups .group[data-region="apac"] li[data-participant="carol"]', { timeout: 10_000 });
  }, 180_000);

  it('once each link has shown itself clean, the browsers play the video piped in over it with their own delay again', async () => {
    // A link is clean once the far end's media came 1,000 packets with fewer than 3 lost in its
    // conditioner's last minute of reports (about 15 s of one camera and microphone); the agent checks every second.
    const started = Date.now();
    const deadline = started + 120_000;
    let targets: Array<[string, number | null]> = [];
    while (Date.now() < deadline) {
      targets = [];
      for (const p of people.values()) {
        const q = await demoInboundQuality(p.page);
        for (const [other, inbound] of Object.entries(q)) targets.push([`${p.name} ← ${other}`, inbound.videoJitterBufferTargetMs]);
      }
      if (targets.length === 6 && targets.every(([, t]) => t === null)) break;
      await sleep(1_000);
    }
    console.log(`jitter buffer targets after ${((Date.now() - started) / 1000).toFixed(0)} s: ${targets.map(([k, t]) => `${k} ${t ?? 'own'}`).join(', ')}`);
    expect(targets).toHaveLength(6);
    for (const [receiver, target] of targets) expect(target, receiver).toBeNull();
  }, 150_000);

  it("the agent serving one browser is killed: that browser rejoins through the SDK and media resumes both ways", async () => {
    const bob = people.get('bob')!;
    const others = ['alice', 'carol'];
    const agent = embedded.agents.find((a) => a.nodeId === bob.nodeId)!;
    const baseline = await demoInboundMedia(bob.page);
    const killedAt = Date.now();
    agent.process.kill('SIGKILL');

    // Bob decodes both others again: frames grow past what he had when his edge died.
    const resumedAt: Record<string, number> = {};
    const deadline = killedAt + 60_000;
    while (Object.keys(resumedAt).length < others.length && Date.now() < deadline) {
      const now = await demoInboundMedia(bob.page);
      for (const o of others) {
        // After the rejoin the tiles hold the new edge's tracks, whose counters start from zero.
        const grew = now[o]?.videoTrackId !== baseline[o]?.videoTrackId && (now[o]?.framesDecoded ?? 0) > 0;
        if (grew && resumedAt[o] === undefined) resumedAt[o] = Date.now();
      }
      await sleep(250);
    }
    const log = await bob.page.locator('#log').innerText();
    const rejoin = /rejoined on (\S+) \((\S+)\) after (\d+) ms/.exec(log);
    expect(rejoin, log).not.toBeNull();
    const [, newRegion, newNode, sdkGapMs] = rejoin!;
    console.log(`killed ${agent.nodeId}: bob rejoined on ${newNode} (${newRegion}); SDK gap ${sdkGapMs} ms; video from ${others.map((o) => `${o} back after ${resumedAt[o] === undefined ? 'never' : `${resumedAt[o]! - killedAt} ms`}`).join(', ')}`);
    expect(newNode).not.toBe(agent.nodeId);
    for (const o of others) expect(resumedAt[o], `bob decodes ${o} again`).toBeDefined();
    bob.nodeId = newNode!;
    bob.region = newRegion!;
    await bob.page.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-state') === 'joined');

    // Everyone again: bob's republished tracks reach the others, and media keeps growing everywhere,
    // over the emulated link from his new edge to the other region's.
    await expectFlowing(['alice', 'bob', 'carol']);
    const elsewhere = [...people.values()].find((p) => p !== bob && p.region !== bob.region)!;
    await expectRelayed(bob, elsewhere);
    await bob.page.screenshot({ path: join(ARTIFACTS, 'demo-bob-after-failover.png'), fullPage: true });
  }, 180_000);

  it('Leave: the page leaves the room, the others drop its tile and the router its participant', async () => {
    const carol = people.get('carol')!;
    await carol.page.click('#leave');
    await carol.page.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-state') === 'left', null, { timeout: 10_000 });
    for (const name of ['alice', 'bob']) {
      await people.get(name)!.page.waitForSelector('figure.tile[data-peer="carol"]', { state: 'detached', timeout: 15_000 });
      await people.get(name)!.page.waitForSelector('#groups li[data-participant="carol"]', { state: 'detached', timeout: 5_000 });
    }
    const deadline = Date.now() + 15_000;
    let participants: string[] = [];
    while (Date.now() < deadline) {
      const room = (await (await fetch(`${embedded.routerUrl}/rooms/${ROOM}`)).json()) as RoomView;
      participants = room.participants.map((p) => p.participantId).sort();
      if (!participants.includes('carol')) break;
      await sleep(250);
    }
    expect(participants).toEqual(['alice', 'bob']);
    // Her camera is released.
    expect(await carol.page.locator('video').count()).toBe(0);
  }, 60_000);
});

describe('the demo without demo grants', () => {
  it('says why it cannot join, and allocates nothing', async () => {
    const router = await startRouter(testConfig('memory', { demoGrants: false }));
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${router.url}/demo?room=no-grants&name=dave&region=us-west`);
      await page.waitForFunction(() => (document.querySelector('#region') as HTMLSelectElement | null)?.value === 'us-west', null, { timeout: 15_000 });
      await page.click('#join');
      await page.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-state') === 'failed', null, { timeout: 15_000 });
      expect(await page.locator('#log').innerText()).toContain('GEO_SFU_DEMO_GRANTS is off');
      expect((await fetch(`${router.url}/rooms/no-grants`)).status).toBe(404);
    } finally {
      await context.close();
      await router.close();
    }
  }, 60_000);
});

describe('the P2P fallback: no region can take the room', () => {
  const P2P_ROOM = 'browsers-direct';
  // From a whole cluster (the agent killed above back), so that the cordons alone make the room P2P.
  beforeAll(async () => {
    for (const a of embedded.agents) if (a.process.exitCode !== null || a.process.signalCode !== null) await embedded.restartAgent(a.nodeId);
    await healthy();
  }, 120_000);

  async function cordon(nodeId: string, cordoned: boolean): Promise<void> {
    const agent = embedded.agents.find((a) => a.nodeId === nodeId)!;
    const res = await fetch(`${agent.directUrl}/admin/cordon`, {
      method: 'POST',
      headers: { authorization: `Bearer ${embedded.credentials.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cordoned }),
    });
    expect(res.status, `cordon ${nodeId}`).toBe(200);
  }

  async function untilRouterSees(what: string, ok: (view: RegionsResponse) => boolean): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (ok((await (await fetch(`${embedded.routerUrl}/regions`)).json()) as RegionsResponse)) return;
      await sleep(200);
    }
    throw new Error(`the router did not see ${what} within 30 s`);
  }

  interface Candidate { type: string; address: string; port: number; protocol: string }
  interface Path { index: number; state: string; local: Candidate; remote: Candidate }

  /** The selected ICE candidate pair of each live peer connection of the page, by its index in creation order. */
  function selectedPaths(p: Participant): Promise<Path[]> {
    return p.page.evaluate(async () => {
      const all = (window as unknown as { __peerConnections: RTCPeerConnection[] }).__peerConnections;
      const paths: Array<{ index: number; state: string; local: Candidate; remote: Candidate }> = [];
      for (const [index, pc] of all.entries()) {
        if (pc.connectionState === 'closed') continue;
        const stats = new Map<string, Record<string, unknown>>();
        (await pc.getStats()).forEach((s: Record<string, unknown>) => stats.set(s.id as string, s));
        const transport = [...stats.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
        const pair = transport && stats.get(transport.selectedCandidatePairId as string);
        if (!pair) continue;
        const candidate = (id: unknown) => {
          const c = stats.get(id as string)!;
          return { type: c.candidateType as string, address: (c.address ?? c.ip) as string, port: c.port as number, protocol: c.protocol as string };
        };
        paths.push({ index, state: pc.connectionState, local: candidate(pair.localCandidateId), remote: candidate(pair.remoteCandidateId) });
      }
      return paths;
    });
  }

  it('every agent cordoned through the admin API: two browsers connect directly (host candidates, no SFU between) and each decodes the other', async () => {
    for (const a of embedded.agents) await cordon(a.nodeId, true);
    await untilRouterSees('every node cordoned', (v) => v.regions.every((r) => r.nodes.every((n) => n.cordoned)));

    const erin = await joinDemo('erin', 'us-west', { room: P2P_ROOM, direct: true });
    const frank = await joinDemo('frank', 'eu-west', { room: P2P_ROOM, direct: true });
    // The page says the room is direct and lists both under it.
    for (const p of [erin, frank]) {
      expect(await p.page.locator('#edge').innerText()).toContain('direct (P2P)');
      for (const name of ['erin', 'frank']) await p.page.waitForSelector(`#groups .group[data-region="p2p"] li[data-participant="${name}"]`, { timeout: 10_000 });
    }
    await expectFlowing(['erin', 'frank']);

    // Browser to browser: each page's one live peer connection has selected a pair of host
    // candidates of this machine whose far end is the other page's near end (an SFU's would be
    // neither). Chrome gathers every interface and ranks loopback last, so either end may be on
    // 127.0.0.1 or on another address of this machine.
    const ownAddresses = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
    const [ep, fp] = await Promise.all([selectedPaths(erin), selectedPaths(frank)]);
    const show = (x: Candidate) => `${x.type} ${x.protocol} ${x.address}:${x.port}`;
    for (const [name, paths] of [['erin', ep], ['frank', fp]] as const) console.log(`${name}'s selected ICE pairs: ${paths.map((x) => `#${x.index} ${show(x.local)} → ${show(x.remote)} (${x.state})`).join('; ')}`);
    expect(ep).toHaveLength(1);
    expect(fp).toHaveLength(1);
    for (const path of [ep[0]!, fp[0]!]) {
      for (const c of [path.local, path.remote]) {
        expect(c.type).toBe('host');
        expect(ownAddresses.has(c.address), `${c.address} is an address of this machine`).toBe(true);
      }
    }
    // The two ends need not share an address: a page may send from 127.0.0.1 to the other's
    // eth0 address (seen in CI), which the kernel delivers locally all the same.
    expect(show(ep[0]!.remote)).toBe(show(fp[0]!.local));
    expect(show(fp[0]!.remote)).toBe(show(ep[0]!.local));

    for (const p of [erin, frank]) await p.page.screenshot({ path: join(ARTIFACTS, `demo-p2p-${p.name}.png`), fullPage: true });
  }, 180_000);

  it('one region uncordoned: the relay says migrate, both pages move onto the SFU and keep decoding each other', async () => {
    const erin = people.get('erin')!;
    const frank = people.get('frank')!;
    const [directErin, directFrank] = await Promise.all([selectedPaths(erin), selectedPaths(frank)]);
    const freed = embedded.agents.find((a) => a.region === 'us-east')!;
    const before = await Promise.all([demoInboundMedia(erin.page), demoInboundMedia(frank.page)]);
    const freedAt = Date.now();
    await cordon(freed.nodeId, false);

    // Per page: when the direct video last grew, and when video through the SFU (a new track) first decoded.
    const watch = [
      { p: erin, other: 'frank', track: before[0]!.frank!.videoTrackId, frames: before[0]!.frank!.framesDecoded, lastDirectAt: freedAt, viaSfuAt: 0 },
      { p: frank, other: 'erin', track: before[1]!.erin!.videoTrackId, frames: before[1]!.erin!.framesDecoded, lastDirectAt: freedAt, viaSfuAt: 0 },
    ];
    const deadline = freedAt + 60_000;
    while (watch.some((w) => w.viaSfuAt === 0) && Date.now() < deadline) {
      for (const w of watch) {
        if (w.viaSfuAt) continue;
        const now = (await demoInboundMedia(w.p.page))[w.other];
        if (!now) continue;
        if (now.videoTrackId === w.track && now.framesDecoded > w.frames) {
          w.frames = now.framesDecoded;
          w.lastDirectAt = Date.now();
        } else if (now.videoTrackId !== w.track && now.framesDecoded > 0 && (await demoEdge(w.p.page)).mode === 'sfu') w.viaSfuAt = Date.now();
      }
      await sleep(100);
    }
    for (const w of watch) {
      const log = await w.p.page.locator('#log').innerText();
      expect(w.viaSfuAt, `${w.p.name} decodes ${w.other} through the SFU\n${log}`).toBeGreaterThan(0);
      const moved = /moved onto the SFU on (\S+) \((\S+)\) after (\d+) ms/.exec(log);
      expect(moved, log).not.toBeNull();
      expect(log).toContain('moving from the direct links onto an SFU');
      console.log(
        `uncordoned ${freed.nodeId}: ${w.p.name} moved onto ${moved![2]} (${moved![1]}), SDK move ${moved![3]} ms; video from ${w.other} through the SFU ${w.viaSfuAt - freedAt} ms after the uncordon; last direct frame seen ${w.lastDirectAt - freedAt} ms after it: gap ${w.viaSfuAt - w.lastDirectAt} ms (sampled every ~100 ms)`,
      );
      expect(moved![2]).toBe(freed.nodeId);
      const edge = await demoEdge(w.p.page);
      w.p.region = edge.region!;
      w.p.nodeId = edge.node!;
    }
    // Media keeps flowing, now through the SFU (the tiles say the publisher's region).
    await expectFlowing(['erin', 'frank']);
    for (const [p, other] of [[erin, 'frank'], [frank, 'erin']] as const) {
      await p.page.waitForSelector(`#groups .group[data-region="${freed.region}"] li[data-participant="${other}"]`, { timeout: 10_000 }).catch(async (err: Error) => {
        throw new Error(`${p.name}'s page does not list ${other} under ${freed.region}: ${await p.page.locator('#groups').innerHTML()}\n${await p.page.locator('#log').innerText()}\n${err.message}`);
      });
    }
    // The direct links closed once the other came through the SFU.
    for (const [p, direct] of [[erin, directErin], [frank, directFrank]] as const) {
      await p.page.waitForFunction((indexes) => indexes.every((i) => (window as unknown as { __peerConnections: RTCPeerConnection[] }).__peerConnections[i]!.connectionState === 'closed'), direct.map((d) => d.index), { timeout: 15_000 });
    }
    const room = (await (await fetch(`${embedded.routerUrl}/rooms/${P2P_ROOM}`)).json()) as RoomView;
    expect(room.participants.map((x) => [x.participantId, x.nodeId]).sort()).toEqual([['erin', freed.nodeId], ['frank', freed.nodeId]]);
    for (const p of [erin, frank]) await p.page.screenshot({ path: join(ARTIFACTS, `demo-p2p-${p.name}-after-migrate.png`), fullPage: true });
  }, 180_000);
});
