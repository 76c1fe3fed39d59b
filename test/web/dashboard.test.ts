import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { dashboardRoutes } from '../../router/routes/dashboard.ts';
import { loadConfig } from '../../shared/config/index.ts';
import type { DashboardSnapshot, RegionsResponse } from '../../shared/schemas/index.ts';
import { SseParser } from '../../web/src/sse.ts';
import { firstDashboardEvent } from '../utils/dashboard-events.ts';
import { allocate } from '../utils/http.ts';
import { ARTIFACTS, joinDemoPage, launchChromium, MEDIA_ARGS, prepareWeb, ROOT } from './browser.ts';
import { startRouter, testConfig } from '../utils/router-harness.ts';

/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against the
 * embedded default with the sample WAN profile, and GET /events on its own. Two demo tabs publish
 * real media (Chrome's fake camera and microphone) for the media panels, then one tab is closed.
 */
const PROFILE = join(ROOT, 'infra/embedded/sample-wan-profile.json');
const REGIONS = ['us-west', 'us-east', 'eu-west', 'apac'];

let embedded: Embedded;
let browser: Browser;
const output: string[] = [];

beforeAll(async () => {
  prepareWeb();
  const config = loadConfig({ GEO_SFU_WAN_PROFILE: PROFILE, GEO_SFU_PROBE_INTERVAL_MS: '250' });
  [embedded, browser] = await Promise.all([
    launchEmbedded({
      config,
      fixedPorts: false,
      env: { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250' },
      onOutput: (name, line) => output.push(`[${name}] ${line}`),
    }),
    // Fake camera and microphone for the demo tabs of the media case.
    launchChromium(MEDIA_ARGS),
  ]);
  await measured();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await embedded?.close();
});

/** Waits until every region is healthy and every region pair and probe has a few samples. */
async function measured(): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      const body = (await (await fetch(`${embedded.routerUrl}/regions`)).json()) as RegionsResponse;
      const pairs = Object.values(body.interRegion).flatMap((row) => Object.values(row));
      const probes = body.regions.flatMap((r) => r.nodes.map((n) => n.probe.samples));
      if (body.regions.every((r) => r.healthy) && pairs.length === 12 && pairs.every((p) => p.samples >= 5) && probes.every((s) => s >= 5)) return;
    } catch {
      // Router not up yet.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`regions not measured in time\n${output.slice(-20).join('\n')}`);
}

/** The first snapshot of GET /events, or the refusal. */
const firstEvent = (headers: Record<string, string> = {}) => firstDashboardEvent(embedded.routerUrl, headers);

const profileRtt = (from: string, to: string) => embedded.wanProfile!.interRegionRttMs[from]?.[to] ?? embedded.wanProfile!.interRegionRttMs[to]![from]!;

/** Opens a page that fails the test on script errors and CSP violations. */
async function openPage(path: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${embedded.routerUrl}${path}`);
  return { page, problems };
}

async function matrixValues(page: Page): Promise<Array<{ from: string; to: string; rtt: number }>> {
  await page.waitForFunction(() => document.querySelectorAll('td[data-rtt]:not([data-rtt=""])').length === 12, null, { timeout: 15_000 });
  return page.$$eval('td[data-rtt]', (cells) => cells.map((c) => ({ from: c.getAttribute('data-from')!, to: c.getAttribute('data-to')!, rtt: Number(c.getAttribute('data-rtt')) })));
}

describe('GET /events', () => {
  it('streams public data only without a credential', async () => {
    const { status, type, snapshot } = await firstEvent();
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/event-stream/);
    expect(snapshot!.scope).toBe('public');
    expect(snapshot!.regions.regions.map((r) => r.id)).toEqual(REGIONS);
    expect(snapshot!.regions.interRegionRttMs['us-west']!['eu-west']).toBeGreaterThan(100);
    expect(Object.keys(snapshot!).sort()).toEqual(['at', 'regions', 'scope']);
  });

  it('adds rooms, alerts and scaling for the admin token, and refuses a wrong one', async () => {
    const { status, snapshot } = await firstEvent({ authorization: `Bearer ${embedded.credentials.adminToken}` });
    expect(status).toBe(200);
    expect(snapshot!.scope).toBe('admin');
    expect(Array.isArray(snapshot!.rooms)).toBe(true);
    expect(snapshot!.roomsTotal).toBeTypeOf('number');
    expect(snapshot!.alerts).toEqual([]);
    expect(snapshot!.scaling!.regions.map((r) => r.region).sort()).toEqual([...REGIONS].sort());
    expect(snapshot!.rebalancing!.enabled).toBe(true);
    expect(Array.isArray(snapshot!.rebalancing!.decisions)).toBe(true);
    expect(snapshot!.regions.regions).toHaveLength(4);

    const wrong = await firstEvent({ authorization: 'Bearer not-the-admin-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });

  it('pushes a new snapshot every second', async () => {
    const intervalMs = 1_000;
    const abort = new AbortController();
    const res = await fetch(`${embedded.routerUrl}/events`, { signal: abort.signal });
    const parser = new SseParser();
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const stamps: number[] = [];
    // One snapshot on connecting, then one a tick.
    while (stamps.length < 6) {
      const { value } = await reader.read();
      for (const m of parser.push(value!)) if (m.event === 'snapshot') stamps.push(Date.parse((JSON.parse(m.data) as DashboardSnapshot).at));
    }
    abort.abort();
    const gaps = stamps.slice(2).map((at, i) => at - stamps[i + 1]!);
    const sorted = [...gaps].sort((a, b) => a - b);
    const medianGap = (sorted[1]! + sorted[2]!) / 2;
    console.log(`SSE snapshots every ${intervalMs} ms: tick gaps ${gaps.join(', ')} ms (median ${medianGap})`);
    for (const gap of gaps) expect(gap).toBeGreaterThan(0);
    // A tick per interval: neither more often (a tenth off for timer jitter) nor skipping ticks.
    expect(medianGap).toBeGreaterThanOrEqual(0.9 * intervalMs);
    expect(medianGap).toBeLessThan(2 * intervalMs);
  });
});

describe('the page', () => {
  it('is served at / with a strict CSP; assets by hashed name only', async () => {
    const res = await fetch(`${embedded.routerUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await res.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const js = await fetch(`${embedded.routerUrl}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    for (const path of ['/assets/..%2F..%2Fpackage.json', '/assets/..%2Findex.html', '/assets/nothing.js']) {
      expect((await fetch(`${embedded.routerUrl}${path}`)).status, path).toBe(404);
    }
  });

  it('shows public data (regions, RTT matrix) without a token', async () => {
    const { page, problems } = await openPage('/');
    await page.waitForSelector('[data-region="apac"]');
    expect(await page.$$eval('[data-region]', (els) => els.map((e) => e.getAttribute('data-region')))).toEqual(REGIONS);
    expect(await matrixValues(page)).toHaveLength(12);
    expect(await page.getAttribute('[data-scope]', 'data-scope')).toBe('public');
    expect(await page.locator('#rooms-panel [data-admin-only]').count()).toBe(1);
    expect(await page.locator('tr[data-room]').count()).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('falls back to public data when the token is refused', async () => {
    const { page, problems } = await openPage('/#token=wrong-token');
    await page.waitForSelector('.notice:not([hidden])');
    expect(await page.textContent('.notice')).toContain('refused');
    await page.waitForSelector('[data-scope="public"]');
    await page.waitForSelector('[data-region="apac"]');
    // The browser logs the 401 of the first attempt; nothing else may go wrong.
    expect(problems.filter((p) => !p.includes('401'))).toEqual([]);
    await page.close();
  });

  it('shows regions, the measured matrix, and a new room live with its cascade link (admin)', async () => {
    const { page, problems } = await openPage(`/#token=${encodeURIComponent(embedded.credentials.adminToken)}`);
    expect(page.url()).not.toContain('token=');
    await page.waitForSelector('[data-scope="admin"]');
    await page.waitForSelector('[data-region="apac"]');
    expect(await page.$$eval('[data-region]', (els) => els.map((e) => e.getAttribute('data-region')))).toEqual(REGIONS);
    expect(await page.$$eval('[data-health]', (els) => els.map((e) => e.getAttribute('data-health')))).toEqual(['healthy', 'healthy', 'healthy', 'healthy']);

    // The heat map holds the agents' measurements (smoothed, so the first connections' extra round
    // trips fade over a few seconds) of the profile's delays; the probe figures of its client RTTs:
    // never below the emulated delay, and that delay counted once, not twice (timer lag on a loaded
    // machine adds to every figure; the accuracy of the measurements is test/e2e/embedded.test.ts's).
    const near = (value: number, expected: number) => value >= expected - 2 && value < 2 * expected + 15;
    const read = async () => ({
      matrix: await matrixValues(page),
      probes: await page.$$eval('[data-region]', (els) => els.map((e) => ({ region: e.getAttribute('data-region')!, rtt: Number(e.querySelector('[data-probe-rtt]')!.getAttribute('data-probe-rtt')) }))),
    });
    let shown = await read();
    const settled = () => shown.matrix.every((c) => near(c.rtt, profileRtt(c.from, c.to))) && shown.probes.every((p) => near(p.rtt, embedded.wanProfile!.clientRttMs![p.region]!));
    for (const deadline = Date.now() + 30_000; !settled() && Date.now() < deadline; ) {
      await page.waitForTimeout(1_000);
      shown = await read();
    }
    for (const { from, to, rtt } of shown.matrix) expect(near(rtt, profileRtt(from, to)), `${from}→${to}: ${rtt} ms shown, profile ${profileRtt(from, to)}`).toBe(true);
    for (const { region, rtt } of shown.probes) expect(near(rtt, embedded.wanProfile!.clientRttMs![region]!), `router→${region}: ${rtt} ms shown`).toBe(true);

    // A room made now appears without a reload, grouped by edge region, with its cascade link.
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
    // Clear-cut latencies (placement has tests of its own): alice and dave on us-east, bob on eu-west.
    // Bob is far from every other region: on a loaded machine the measured inter-region RTTs grow,
    // and us-east directly could beat eu-west through the cascade (seen once in 10 runs).
    const NEW_YORK = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };
    const LONDON = { 'us-west': 400, 'us-east': 400, 'eu-west': 5, apac: 400 };
    const placed = new Map<string, string[]>();
    for (const [participantId, latencies] of [['alice', NEW_YORK], ['bob', LONDON], ['dave', NEW_YORK]] as const) {
      const res = await allocate(embedded.routerUrl, { roomId: 'dashboard-demo', participantId, latencies });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      placed.set(res.body.region, [...(placed.get(res.body.region) ?? []), participantId]);
    }
    expect(Object.fromEntries(placed)).toEqual({ 'us-east': ['alice', 'dave'], 'eu-west': ['bob'] });
    const row = page.locator('tr[data-room="dashboard-demo"]');
    await row.waitFor({ timeout: 5_000 });
    // The row may first show a snapshot taken between the allocations: wait for the one after them.
    await row.locator('[data-edge="us-east"]', { hasText: /us-east · 2/ }).waitFor({ timeout: 10_000 });
    expect(await row.locator('[data-edge="us-east"]').textContent()).toMatch(/us-east · 2\s*alice, dave/);
    expect(await row.locator('[data-edge="eu-west"]').textContent()).toMatch(/eu-west · 1\s*bob/);
    expect(await row.locator('[data-room-link]').evaluateAll((els) => els.map((e) => e.getAttribute('data-room-link')))).toEqual(['eu-west~us-east']);
    await page.waitForSelector('path[data-link="eu-west~us-east"]');
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);

    // A room's region policy shows in its row (none for this one).
    expect(await row.locator('td.policy').textContent()).toBe('none');
    const policyRoom = await allocate(embedded.routerUrl, { roomId: 'dashboard-policy', participantId: 'erin', latencies: NEW_YORK, policy: { allowedRegions: ['eu-west'], allowP2p: true } });
    expect(policyRoom.body.region).toBe('eu-west');
    const policyCell = page.locator('tr[data-room="dashboard-policy"] td[data-policy="eu-west"]');
    await policyCell.waitFor({ timeout: 10_000 });
    expect(await policyCell.textContent()).toBe('only eu-west; P2P allowed');

    // Selecting the room highlights its link on the map.
    await row.click();
    await page.waitForSelector('path[data-link="eu-west~us-east"].selected');

    // Sparklines fill up from the stream; then the picture for people to look at.
    await page.waitForFunction(() => Array.from(document.querySelectorAll('svg.spark')).every((s) => Number(s.getAttribute('data-samples')) >= 8), null, { timeout: 20_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 90_000);
});

describe('media figures', () => {
  it('shows bitrate, loss, RTT, jitter, layers and resolution per participant and track, node and cascade bandwidth, live; a closed tab as reconnecting', async () => {
    const ROOM = 'dashboard-media';
    const { page, problems } = await openPage(`/#token=${encodeURIComponent(embedded.credentials.adminToken)}`);
    await page.waitForSelector('[data-scope="admin"]');
    // Two tabs with camera and microphone, on two regions' edges: a cascade link between them.
    const carol = await joinDemoPage(browser, embedded.routerUrl, { room: ROOM, name: 'carol', region: 'us-east' });
    const erin = await joinDemoPage(browser, embedded.routerUrl, { room: ROOM, name: 'erin', region: 'eu-west' });
    try {
      await page.locator(`tr[data-room="${ROOM}"]`).click();
      await page.waitForSelector(`tr[data-room="${ROOM}"].selected`);

      // Each publishes audio and video and receives the other's, all flowing (the SFU's stats lag a few seconds).
      const tracks = (who: string) =>
        page.$$eval(`tr[data-track-of="${who}"]`, (rows) =>
          rows.map((r) => ({
            direction: r.getAttribute('data-direction')!,
            kind: r.getAttribute('data-kind')!,
            bps: Number(r.getAttribute('data-bps')),
            width: Number(r.getAttribute('data-width')),
            height: Number(r.getAttribute('data-height')),
            fps: Number(r.getAttribute('data-fps')),
            score: r.getAttribute('data-score'),
            text: r.textContent ?? '',
          })),
        );
      const flowing = async (who: string) => {
        const list = await tracks(who);
        return ['in', 'out'].every((direction) => ['audio', 'video'].every((kind) => list.some((t) => t.direction === direction && t.kind === kind && t.bps > 0)));
      };
      const deadline = Date.now() + 45_000;
      while (!((await flowing('carol')) && (await flowing('erin'))) && Date.now() < deadline) await page.waitForTimeout(500);
      for (const who of ['carol', 'erin']) {
        const list = await tracks(who);
        console.log(`${who}'s tracks on the dashboard:\n  ${list.map((t) => t.text.replace(/\s+/g, ' ').trim()).join('\n  ')}`);
        expect(await flowing(who), `${who}: ${JSON.stringify(list)}`).toBe(true);
        const row = page.locator(`tr[data-participant="${who}"]`);
        expect(await row.getAttribute('data-status')).toBe('joined');
        expect(Number(await row.getAttribute('data-in-bps'))).toBeGreaterThan(0);
        expect(Number(await row.getAttribute('data-out-bps'))).toBeGreaterThan(0);
        // Video: the size and rate the demo captures (320×240, 15 fps, no simulcast), derived from the SDK's declaration.
        const published = list.find((t) => t.direction === 'in' && t.kind === 'video')!;
        const received = list.find((t) => t.direction === 'out' && t.kind === 'video')!;
        expect(published.width * published.height).toBeGreaterThan(0);
        expect(published.fps).toBeGreaterThan(0);
        expect(received.width * received.height).toBeGreaterThan(0);
        expect(published.text).toContain('≈');
        expect(Number(published.score)).toBeGreaterThanOrEqual(0);
      }

      // Node and cascade-link bandwidth: both edges' nodes carry media, and the us-east↔eu-west link does.
      const nodeIn = await page.$$eval('[data-node-media]', (els) => els.map((e) => Number(e.getAttribute('data-in-bps'))));
      expect(nodeIn.filter((bps) => bps > 0).length).toBeGreaterThanOrEqual(2);
      await page.waitForFunction(() => Number(document.querySelector('path[data-link="eu-west~us-east"]')?.getAttribute('data-bps') || 0) > 0, null, { timeout: 15_000 });
      expect(await page.textContent('[data-link-label="eu-west~us-east"]')).toMatch(/\d+ ms · [\d.]+ (k|M)?bps/);
      // The media appears in /metrics by node, region and peer region (never by room or participant).
      const metrics = await (await fetch(`${embedded.routerUrl}/metrics`)).text();
      expect(metrics).toMatch(/geo_sfu_node_bitrate_bps\{region="us-east",node="[^"]+",direction="in"\} [1-9]/);
      expect(metrics).toMatch(/geo_sfu_cascade_bitrate_bps\{region="eu-west",node="[^"]+",peer_region="us-east",direction="out"\} [1-9]/);
      expect(metrics).not.toContain(ROOM);
      expect(metrics).not.toContain('carol');

      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-media.png'), fullPage: true });

      // Carol's tab dies without a word (its renderer crashes: no pagehide, no leave): shown
      // "reconnecting" within a few heartbeats, while her session waits for a resume.
      const graceMs = loadConfig({}).resumeGraceMs;
      const crashedAt = Date.now();
      await carol.page.goto('chrome://crash').catch(() => undefined);
      await page.waitForSelector('tr[data-participant="carol"][data-status="reconnecting"]', { timeout: 15_000 });
      const reconnectingAfterMs = Date.now() - crashedAt;
      expect(await page.textContent(`tr[data-room="${ROOM}"] [data-reconnecting]`)).toContain('carol');
      expect(await page.getAttribute('tr[data-participant="erin"]', 'data-status')).toBe('joined');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-reconnecting.png'), fullPage: true });

      // Erin closes her tab (pagehide sends leave): gone from the room at once, not after the grace.
      const closedAt = Date.now();
      await erin.context.close();
      await page.waitForSelector('tr[data-participant="erin"]', { state: 'detached', timeout: 15_000 });
      const goneAfterMs = Date.now() - closedAt;
      console.log(`crashed tab shown reconnecting after ${reconnectingAfterMs} ms; closed tab gone after ${goneAfterMs} ms (resume grace ${graceMs} ms)`);
      expect(reconnectingAfterMs).toBeLessThan(graceMs);
      expect(goneAfterMs).toBeLessThan(graceMs);
      expect(await page.getAttribute('tr[data-participant="carol"]', 'data-status')).toBe('reconnecting');
      expect(problems).toEqual([]);
    } finally {
      await carol.context.close().catch(() => undefined);
      await erin.context.close().catch(() => undefined);
      await page.close();
    }
  }, 120_000);
});

it('answers 503 "run npm run setup" at / when the page is not built', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'geo-sfu-web-')), 'dist');
  const router = await startRouter(testConfig('memory'), (app) => void app.register(dashboardRoutes, { prefix: '/unbuilt', distDir: missing }));
  try {
    const res = await fetch(`${router.url}/unbuilt/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('run npm run setup');
    expect((await fetch(`${router.url}/regions`)).status).toBe(200);
  } finally {
    await router.close();
  }
});
