import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

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
