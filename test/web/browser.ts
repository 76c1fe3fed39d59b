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

/** Per remote participant the demo page shows: its region, video frames decoded and audio packets received. */
export type DemoInbound = Record<string, { region: string; videoTrackId: string | null; framesDecoded: number; audioPackets: number }>;

/** The demo page's inbound media per remote participant (inbound-rtp of its live peer connections). */
export function demoInboundMedia(page: Page): Promise<DemoInbound> {
  return page.evaluate(async () => {
    const pcs = (window as unknown as { __peerConnections: RTCPeerConnection[] }).__peerConnections.filter((pc) => pc.connectionState !== 'closed');
    const byTrack = new Map<string, { framesDecoded?: number; packetsReceived?: number }>();
    for (const pc of pcs) {
      const report = await pc.getStats().catch(() => null);
      report?.forEach((s: { type: string; trackIdentifier?: string; framesDecoded?: number; packetsReceived?: number }) => {
        if (s.type === 'inbound-rtp' && s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
      });
    }
    const result: Record<string, { region: string; videoTrackId: string | null; framesDecoded: number; audioPackets: number }> = {};
    for (const tile of Array.from(document.querySelectorAll<HTMLElement>('figure.tile[data-peer]'))) {
      const track = (selector: string, kind: 'audio' | 'video') => ((tile.querySelector(selector) as HTMLMediaElement).srcObject as MediaStream | null)?.getTracks().find((t) => t.kind === kind);
      const video = track('video', 'video');
      const audio = track('audio', 'audio');
      result[tile.dataset.peer!] = {
        region: tile.dataset.region ?? '',
        videoTrackId: video?.id ?? null,
        framesDecoded: (video && byTrack.get(video.id)?.framesDecoded) || 0,
        audioPackets: (audio && byTrack.get(audio.id)?.packetsReceived) || 0,
      };
    }
    return result;
  });
}

/**
 * Opens /demo in a context of its own as `name` emulating `region`, joins `room` (camera and
 * microphone: the browser needs MEDIA_ARGS) and waits until the page says it is joined. The caller
 * closes the context (closing it is closing the tab).
 */
export async function joinDemoPage(browser: Browser, baseUrl: string, opts: { room: string; name: string; region: string }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
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
