import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { interRegionRtt, type WanProfile } from '../../infra/embedded/wan-profile.ts';
import { CONFIG_SPEC, loadConfig } from '../../shared/config/index.ts';
import { waitHealthy } from '../sdk/helpers.ts';
import { launchChromium, MEDIA_ARGS, prepareWeb, ROOT } from './browser.ts';
import { Misplaced, watchCascadeMedia } from './cascade-media.ts';

/**
 * The regression guard of issue #22: three Chromium pages in us-east, eu-west and apac, 1 % loss
 * and ±10 ms jitter on every inter-region link (the sample WAN profile's delays; client links
 * clean), the pipe conditioner at its defaults and pipe SRTP on, as deployed. Each page watches
 * the other two for 20 s: no stream may be frozen more than 3 % of the time (measured at 0–1.5 %
 * with the conditioner; without it 6–16 %, docs/benchmarks.md), no video
 * packet may stay lost, and every browser must hold the video piped in over these lossy links for
 * GEO_SFU_PIPE_VIDEO_BUFFER_MS or the link's round trip, the longer (the agent asks, signaling
 * protocol 1.4; the SDK sets it).
 */
const WATCH_MS = 20_000;

let embedded: Embedded;
let browser: Browser;
let dir: string;
const output: string[] = [];

beforeAll(async () => {
  prepareWeb();
  dir = mkdtempSync(join(tmpdir(), 'geo-sfu-impaired-test-'));
  const sample = JSON.parse(readFileSync(join(ROOT, 'infra/embedded/sample-wan-profile.json'), 'utf8')) as WanProfile;
  const profile = join(dir, 'profile.json');
  writeFileSync(profile, JSON.stringify({ ...sample, interRegionLossPct: 1, interRegionJitterMs: 10 }));
  const env = { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250' };
  [embedded, browser] = await Promise.all([
    launchEmbedded({ config: loadConfig({ ...env, GEO_SFU_WAN_PROFILE: profile }), fixedPorts: false, pipeRelays: true, env, onOutput: (name, line) => output.push(`[${name}] ${line}`) }),
    launchChromium(MEDIA_ARGS),
  ]);
  await waitHealthy(embedded, output);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await embedded?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cascade media over lossy, jittery inter-region links (1 %, ±10 ms)', () => {
  it('no stream frozen past 3 % of the time, no video lost for good, losses rebuilt on the pipes, piped video held by the browsers', async () => {
    const watch = (room: string) => watchCascadeMedia(browser, embedded, WATCH_MS, room);
    const run = await watch('impaired-guard').catch((err: unknown) => (err instanceof Misplaced ? watch('impaired-guard-again') : Promise.reject(err)));
    for (const s of run.streams) console.log(`${s.sender} → ${s.receiver}: ${s.framesPerSecond.toFixed(1)} frames/s, ${s.freezes} freezes, ${(s.frozenShare * 100).toFixed(1)} % frozen, audio concealed ${(s.concealedShare * 100).toFixed(2)} %, video lost ${s.videoLost}, jitter buffer target ${s.jitterBufferTargetMs ?? 'none'}`);
    console.log(`pipes: ${run.pipeDropped} packets dropped by the relays; rebuilt ${run.repair.rebuilt}, gaps given up ${run.repair.gaveUp} (${run.repair.late} of them filled late), parity ${run.repair.parityBytes} B of ${run.pipeBytes} B`);
    expect(run.streams).toHaveLength(6);
    // The relays did lose packets, and the conditioners rebuilt some: the case is the impaired one.
    expect(run.pipeDropped).toBeGreaterThan(0);
    expect(run.repair.rebuilt).toBeGreaterThan(0);
    // Issue #22's bound on the 1 % case, per stream: one freeze in the window (≥ 217 ms at 15 fps,
    // 1.1 %) passes, two do not. Before the browsers held piped video, one stream of a .ci/run froze
    // twice (3.6 %); with it, 1 freeze in 48 streams of 8 runs (2026-12-07); without the
    // conditioner the streams froze 1.3–7.6 %.
    const mean = run.streams.reduce((sum, s) => sum + s.frozenShare, 0) / run.streams.length;
    console.log(`frozen: mean stream ${(mean * 100).toFixed(1)} %`);
    for (const s of run.streams) {
      expect(s.framesPerSecond, `${s.sender} → ${s.receiver} frames/s`).toBeGreaterThan(10);
      expect(s.frozenShare, `${s.sender} → ${s.receiver} frozen`).toBeLessThanOrEqual(0.03);
      expect(s.videoLost, `${s.sender} → ${s.receiver} video lost`).toBeLessThanOrEqual(0);
      // Every link is lossy and longer than GEO_SFU_PIPE_FEC_MIN_RTT_MS: the agent asked each
      // browser to hold the video piped in (protocol 1.4), and the SDK set it on the receiver: the
      // setting, or the link's round trip as the conditioners measure it (the profile's, plus the
      // relays' timers, late on a busy machine; a target moves in steps of 20 ms).
      const rtt = interRegionRtt(embedded.wanProfile!, s.sender, s.receiver)!;
      const floor = CONFIG_SPEC.pipeVideoBufferMs.default;
      expect(s.jitterBufferTargetMs, `${s.sender} → ${s.receiver} jitter buffer target`).toBeGreaterThanOrEqual(Math.max(floor, rtt - 20));
      expect(s.jitterBufferTargetMs, `${s.sender} → ${s.receiver} jitter buffer target`).toBeLessThanOrEqual(Math.max(floor, rtt + 60));
    }
  }, 150_000);
});
