import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { launchChromium, prepareWeb } from './browser.ts';
import { EMULATED_FAR_MS, EMULATED_NEAR_MS, emulatedLatencies, normaliseId, readParams, resolveRegion } from '../../web/src/demo/emulation.ts';

/** The demo page's pure parts: its query parameters and the latencies it sends when emulating a region. */
describe('demo emulation', () => {
  it('sends the chosen region as near and every other one as far', () => {
    expect(emulatedLatencies(['us-west', 'us-east', 'eu-west', 'apac'], 'eu-west')).toEqual({
      'us-west': EMULATED_FAR_MS,
      'us-east': EMULATED_FAR_MS,
      'eu-west': EMULATED_NEAR_MS,
      apac: EMULATED_FAR_MS,
    });
  });

  it('reads room, name and region from the query; generated ids when absent', () => {
    const random = () => 'r4nd0';
    expect(readParams('?room=standup&name=alice&region=apac', random)).toEqual({ room: 'standup', name: 'alice', region: 'apac', notices: [] });
    expect(readParams('', random)).toEqual({ room: 'demo-r4nd0', name: 'guest-r4nd0', region: null, notices: [] });
  });

  it('normalises a room or name /allocate would refuse, the same way in every tab, and says so', () => {
    const random = () => `r${Math.random()}`;
    const [a, b] = [readParams('?room=bad%20room!&region=mars', random), readParams('?room=bad%20room!&region=mars', random)];
    // Two people sharing the link meet in the same room.
    expect(a.room).toBe('bad-room');
    expect(b.room).toBe(a.room);
    expect(a.notices).toEqual(['room "bad room!" is not a valid id (1–128 of A-Z a-z 0-9 . _ : -): using "bad-room"']);
    expect(readParams(`?room=${encodeURIComponent('<script>')}&name=${'x'.repeat(129)}`, random)).toMatchObject({ room: 'script', name: 'x'.repeat(128) });
    const nothing = readParams(`?room=${encodeURIComponent('!!!')}`, () => 'r4nd0');
    expect(nothing.room).toBe('demo-r4nd0');
    expect(nothing.notices[0]).toMatch(/room "!!!" has no usable characters.*using demo-r4nd0/);
    expect(normaliseId('  a b  c ')).toBe('a-b-c');
  });

  it('keeps an emulated region only if the catalog has it, and says why not', () => {
    const catalog = ['us-west', 'us-east', 'eu-west', 'apac'];
    expect(readParams('?region=EU%20West', () => 'x').region).toBe('eu-west');
    expect(resolveRegion('eu-west', catalog)).toEqual({ region: 'eu-west', notice: null });
    expect(resolveRegion(null, catalog)).toEqual({ region: null, notice: null });
    const mars = resolveRegion(readParams('?region=mars', () => 'x').region, catalog);
    expect(mars.region).toBeNull();
    expect(mars.notice).toBe('region "mars" is not a region of this deployment (us-west, us-east, eu-west, apac): no emulation, this tab uses its measured RTTs');
    expect(resolveRegion('-', catalog).notice).toMatch(/is not a region id/);
  });
});

/** The page itself, opened from a link with a room id /allocate refuses and a region the catalog lacks. */
describe('demo page opened from a bad link', () => {
  let router: RunningRouter;
  let browser: Browser;
  beforeAll(async () => {
    prepareWeb();
    [router, browser] = await Promise.all([startRouter(testConfig('memory')), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await router?.close();
  });

  it('shows what it changed, joins the normalised room, emulates nothing, and puts the link as used in the address bar', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${router.url}/demo?room=bad%20room!&region=mars`);
      await page.locator('#notices li').nth(1).waitFor({ timeout: 15_000 });
      const notices = await page.locator('#notices li').allTextContents();
      expect(notices).toEqual([
        'room "bad room!" is not a valid id (1–128 of A-Z a-z 0-9 . _ : -): using "bad-room"',
        'region "mars" is not a region of this deployment (us-west, us-east, eu-west, apac): no emulation, this tab uses its measured RTTs',
      ]);
      expect(await page.locator('#room').inputValue()).toBe('bad-room');
      expect(await page.locator('#region').inputValue()).toBe('');
      const url = new URL(page.url());
      expect(url.searchParams.get('room')).toBe('bad-room');
      expect(url.searchParams.has('region')).toBe(false);
    } finally {
      await page.close();
    }
  }, 60_000);
});
