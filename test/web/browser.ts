import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';

/**
 * Debian's chromium driven by playwright-core (Playwright's own browser download does not work
 * here), for the browser tests of test/web/ (run one file at a time: vitest.config.ts).
 */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test/web/artifacts');
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Camera and microphone: Chrome's fake devices, granted without a prompt; ICE over loopback. */
export const MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection'];

/** Builds web/ when a page is missing (`npm run setup` builds it; a test run on its own still gets it), and makes the artifacts folder. */
export function prepareWeb(): void {
  if (!['index.html', 'demo.html'].every((page) => existsSync(join(ROOT, 'web/dist', page)))) {
    execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run npm run setup:test (it installs Debian's chromium)`);
  mkdirSync(ARTIFACTS, { recursive: true });
}

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** What the demo page's room panel says about this browser's connection. */
export function demoEdge(page: Page): Promise<{ mode: string | null; region: string | null; node: string | null }> {
  return page.locator('#edge').evaluate((el) => ({ mode: el.getAttribute('data-mode'), region: el.getAttribute('data-region'), node: el.getAttribute('data-node') }));
}

/** Keeps every RTCPeerConnection the context's pages make, for getStats() (the demo page itself exposes nothing). */
export async function capturePeerConnections(context: BrowserContext): Promise<void> {
  // Under tsx (the benchmarks) esbuild's keepNames wraps the named functions of page callbacks in
  // __name(), which the page does not have.
  await context.addInitScript({ content: 'globalThis.__name ??= (f) => f;' });
  await context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    const made: RTCPeerConnection[] = [];
    (window as unknown as { __peerConnections: RTCPeerConnection[] }).__peerConnections = made;
    window.RTCPeerConnection = class extends Native {
      constructor(config?: RTCConfiguration) {
        super(config);
        made.push(this);
      }
    };
  });
}

/** Cumulative receive-quality counters of one remote participant's video and audio, as Chrome's inbound-rtp stats give them. */
export interface InboundQuality {
  region: string;
  videoTrackId: string | null;
  video: { framesDecoded: number; freezeCount: number; totalFreezesDurationS: number; nackCount: number; packetsLost: number; packetsReceived: number };
  /** The video receiver's `jitterBufferTarget` (ms; null: the browser's own). */
  videoJitterBufferTargetMs: number | null;
  audio: { concealedSamples: number; totalSamplesReceived: number; nackCount: number; packetsLost: number; packetsReceived: number };
}

/** The demo page's receive quality per remote participant (its tiles' tracks, matched to inbound-rtp by track id). */
export function demoInboundQuality(page: Page): Promise<Record<string, InboundQuality>> {
  return page.evaluate(async () => {
    type Inbound = Record<string, number | string | undefined>;
    const pcs = (window as unknown as { __peerConnections: RTCPeerConnection[] }).__peerConnections.filter((pc) => pc.connectionState !== 'closed');
    const byTrack = new Map<string, Inbound>();
    const receivers = new Map(pcs.flatMap((pc) => pc.getReceivers()).map((r) => [r.track.id, r as RTCRtpReceiver & { jitterBufferTarget?: number | null }]));
    for (const pc of pcs) {
      const report = await pc.getStats().catch(() => null);
      report?.forEach((s: Inbound) => {
        if (s.type === 'inbound-rtp' && typeof s.trackIdentifier === 'string') byTrack.set(s.trackIdentifier, s);
      });
    }
    const n = (s: Inbound | undefined, key: string) => (typeof s?.[key] === 'number' ? (s[key] as number) : 0);
    const result: Record<string, InboundQuality> = {};
    for (const tile of Array.from(document.querySelectorAll<HTMLElement>('figure.tile[data-peer]'))) {
      const track = (selector: string, kind: 'audio' | 'video') => ((tile.querySelector(selector) as HTMLMediaElement).srcObject as MediaStream | null)?.getTracks().find((t) => t.kind === kind);
      const videoTrackId = track('video', 'video')?.id ?? null;
      const v = byTrack.get(videoTrackId ?? '');
      const a = byTrack.get(track('audio', 'audio')?.id ?? '');
      result[tile.dataset.peer!] = {
        region: tile.dataset.region ?? '',
        videoTrackId,
        videoJitterBufferTargetMs: receivers.get(videoTrackId ?? '')?.jitterBufferTarget ?? null,
        video: { framesDecoded: n(v, 'framesDecoded'), freezeCount: n(v, 'freezeCount'), totalFreezesDurationS: n(v, 'totalFreezesDuration'), nackCount: n(v, 'nackCount'), packetsLost: n(v, 'packetsLost'), packetsReceived: n(v, 'packetsReceived') },
        audio: { concealedSamples: n(a, 'concealedSamples'), totalSamplesReceived: n(a, 'totalSamplesReceived'), nackCount: n(a, 'nackCount'), packetsLost: n(a, 'packetsLost'), packetsReceived: n(a, 'packetsReceived') },
      };
    }
    return result;
  });
}

/** Per remote participant the demo page shows: its region, video frames decoded and audio packets received. */
export type DemoInbound = Record<string, { region: string; videoTrackId: string | null; framesDecoded: number; audioPackets: number }>;

/** The demo page's inbound media per remote participant (inbound-rtp of its live peer connections). */
export async function demoInboundMedia(page: Page): Promise<DemoInbound> {
  const quality = await demoInboundQuality(page);
  return Object.fromEntries(
    Object.entries(quality).map(([peer, q]) => [peer, { region: q.region, videoTrackId: q.videoTrackId, framesDecoded: q.video.framesDecoded, audioPackets: q.audio.packetsReceived }]),
  );
}

/**
 * Opens /demo in a context of its own as `name` emulating `region`, joins `room` (camera and
 * microphone: the browser needs MEDIA_ARGS) and waits until the page says it is joined. The caller
 * closes the context (closing it is closing the tab).
 */
export async function joinDemoPage(browser: Browser, baseUrl: string, opts: { room: string; name: string; region: string }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await capturePeerConnections(context);
  const page = await context.newPage();
  await page.goto(`${baseUrl}/demo?room=${encodeURIComponent(opts.room)}&name=${encodeURIComponent(opts.name)}&region=${encodeURIComponent(opts.region)}`);
  await page.waitForFunction((r) => (document.querySelector('#region') as HTMLSelectElement | null)?.value === r, opts.region, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('#rtt td[data-rtt]:not([data-rtt=""])').length > 0, null, { timeout: 30_000 });
  await page.click('#join');
  await page.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-state') === 'joined', null, { timeout: 60_000 }).catch(async (err: Error) => {
    throw new Error(`${opts.name} did not join: ${await page.locator('#log').innerText()}\n${err.message}`);
  });
  return { context, page };
}
