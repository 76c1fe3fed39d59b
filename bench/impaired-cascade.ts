/**
 * Media across impaired inter-region links (issue #22): three Chromium pages in three regions
 * (us-east, eu-west, apac) join one room through the demo page on the embedded default with the
 * sample WAN profile; loss and jitter are added to the cascade's UDP relays only (the clients'
 * links stay clean), and each page watches the others for 15 s (test/web/cascade-media.ts: what
 * is measured and how). Pipe SRTP is off here so the relays can read RTCP (encryption changes no
 * timing that matters). Each impairment runs twice, without and with the pipe conditioner
 * (region-agent/cascade/conditioner.ts: FEC and a reordering hold on the pipes, at their
 * defaults), so the table shows what it buys.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchEmbedded } from '../infra/embedded/launcher.ts';
import type { WanProfile } from '../infra/embedded/wan-profile.ts';
import { CONFIG_SPEC, loadConfig } from '../shared/config/index.ts';
import { waitHealthy } from '../test/sdk/helpers.ts';
import { launchChromium, MEDIA_ARGS, prepareWeb, ROOT } from '../test/web/browser.ts';
import { Misplaced, watchCascadeMedia, type RepairFigures, type RunFigures } from '../test/web/cascade-media.ts';
/** Each stream's watch window: 15 s, 10 s with `--quick`. */
const WATCH_MS = 15_000;
const QUICK_WATCH_MS = 10_000;

export interface ImpairmentCase {
  name: string;
  lossPct: number;
  jitterMs: number;
  /** The pipe conditioner (FEC + reordering hold) on the agents' links. */
  conditioner: 'off' | 'on';
}

const LINKS = [
  { name: 'clean links', lossPct: 0, jitterMs: 0 },
  // Reordering alone: what the NACKs of mere lateness were, and are with the reordering allowance.
  { name: '±10 ms jitter, no loss', lossPct: 0, jitterMs: 10 },
  { name: '1 % loss, ±10 ms jitter', lossPct: 1, jitterMs: 10 },
  { name: '3 % loss, ±20 ms jitter', lossPct: 3, jitterMs: 20 },
];
export const CASES: ImpairmentCase[] = LINKS.flatMap((l) => (['off', 'on'] as const).map((conditioner) => ({ ...l, name: `${l.name}, conditioner ${conditioner}`, conditioner })));
/**
 * `--quick` (the whole quick run has 5 minutes) keeps the 1 % case with the conditioner on; the
 * clean links (the bytes baseline), the 3 % case and what the conditioner buys are the full run's.
 */
const QUICK_CASES = CASES.filter((c) => c.lossPct === 1 && c.conditioner === 'on');

/** The agents' settings for each conditioner case: off, or the defaults. */
const CONDITIONER_ENV: Record<ImpairmentCase['conditioner'], Record<string, string>> = {
  off: { GEO_SFU_PIPE_FEC_SHARE: '0', GEO_SFU_PIPE_REORDER_MAX_MS: '0' },
  on: {
    GEO_SFU_PIPE_FEC_SHARE: String(CONFIG_SPEC.pipeFecShare.default),
    GEO_SFU_PIPE_FEC_GROUP_MS: String(CONFIG_SPEC.pipeFecGroupMs.default),
    GEO_SFU_PIPE_REORDER_MAX_MS: String(CONFIG_SPEC.pipeReorderMaxMs.default),
    GEO_SFU_PIPE_FEC_MIN_RTT_MS: String(CONFIG_SPEC.pipeFecMinRttMs.default),
    GEO_SFU_PIPE_VIDEO_BUFFER_MS: String(CONFIG_SPEC.pipeVideoBufferMs.default),
  },
};

export interface CaseFigures extends ImpairmentCase {
  runs: RunFigures[];
  /** Medians over runs of each run's median (frames/s), maximum (freezes, frozen share) or total (NACKs, bytes). */
  framesPerSecond: number;
  maxFreezesPerStream: number;
  maxFrozenShare: number;
  meanFrozenShare: number;
  concealedShare: number;
  /** Video packets lost for good, summed over the streams (median over runs). */
  videoLost: number;
  /** The conditioners' counters (median over runs of each). */
  repair: RepairFigures;
  browserNacks: number;
  pipeNacks: number;
  pipeBytes: number;
  /** Each link's bytes (median over runs). */
  pipeLinkBytes: Array<{ link: string; bytes: number }>;
}

export interface ImpairedCascadeResult {
  runsPerCase: number;
  watchS: number;
  cases: CaseFigures[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export async function benchImpairedCascade(opts: { quick: boolean }): Promise<ImpairedCascadeResult> {
  prepareWeb();
  const runsPerCase = opts.quick ? 1 : 3;
  const watchMs = opts.quick ? QUICK_WATCH_MS : WATCH_MS;
  const sample = JSON.parse(readFileSync(join(ROOT, 'infra/embedded/sample-wan-profile.json'), 'utf8')) as WanProfile;
  const dir = mkdtempSync(join(tmpdir(), 'geo-sfu-impaired-'));
  const browser = await launchChromium(MEDIA_ARGS);
  const cases: CaseFigures[] = [];
  try {
    for (const c of opts.quick ? QUICK_CASES : CASES) {
      const profile = join(dir, `${c.lossPct}-${c.jitterMs}.json`);
      writeFileSync(profile, JSON.stringify({ ...sample, interRegionLossPct: c.lossPct, interRegionJitterMs: c.jitterMs }));
      const env = { GEO_SFU_LOG_LEVEL: 'warn', GEO_SFU_PROBE_INTERVAL_MS: '250', GEO_SFU_PIPE_SRTP: 'false', ...CONDITIONER_ENV[c.conditioner] };
      // The processes' output, for the error when the cluster does not come up.
      const output: string[] = [];
      const embedded = await launchEmbedded({ config: loadConfig({ ...env, GEO_SFU_WAN_PROFILE: profile }), fixedPorts: false, pipeRelays: true, env, onOutput: (name, line) => output.push(`[${name}] ${line}`) });
      try {
        await waitHealthy(embedded, output);
        const runs: RunFigures[] = [];
        for (let run = 0; run < runsPerCase; run++) {
          const room = `impaired-${c.lossPct}-${c.jitterMs}-${c.conditioner}-${run}`;
          // A page the router placed elsewhere (its probes of a busy agent) is tried once more, in a room of its own.
          runs.push(await watchCascadeMedia(browser, embedded, watchMs, room).catch((err: unknown) => (err instanceof Misplaced ? watchCascadeMedia(browser, embedded, watchMs, `${room}-again`) : Promise.reject(err))));
        }
        const streams = (r: RunFigures) => r.streams;
        cases.push({
          ...c,
          runs,
          framesPerSecond: median(runs.map((r) => median(streams(r).map((s) => s.framesPerSecond)))),
          maxFreezesPerStream: median(runs.map((r) => Math.max(...streams(r).map((s) => s.freezes)))),
          maxFrozenShare: median(runs.map((r) => Math.max(...streams(r).map((s) => s.frozenShare)))),
          meanFrozenShare: median(runs.map((r) => sum(streams(r).map((s) => s.frozenShare)) / streams(r).length)),
          concealedShare: median(runs.map((r) => sum(streams(r).map((s) => s.concealedShare)) / streams(r).length)),
          videoLost: median(runs.map((r) => sum(streams(r).map((s) => s.videoLost)))),
          repair: { rebuilt: median(runs.map((r) => r.repair.rebuilt)), gaveUp: median(runs.map((r) => r.repair.gaveUp)), late: median(runs.map((r) => r.repair.late)), parityBytes: median(runs.map((r) => r.repair.parityBytes)) },
          browserNacks: median(runs.map((r) => sum(streams(r).map((s) => s.nacks)))),
          pipeNacks: median(runs.map((r) => r.pipeNacks)),
          pipeBytes: median(runs.map((r) => r.pipeBytes)),
          pipeLinkBytes: runs[0]!.pipeLinkBytes.map(({ link }) => ({ link, bytes: median(runs.map((r) => r.pipeLinkBytes.find((l) => l.link === link)?.bytes ?? 0)) })),
        });
      } finally {
        await embedded.close();
      }
    }
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { runsPerCase, watchS: watchMs / 1000, cases };
}
