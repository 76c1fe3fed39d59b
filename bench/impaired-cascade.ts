/**
 * Media across impaired inter-region links (issue #22): three Chromium pages in three regions
 * (us-east, eu-west, apac) join one room through the demo page on the embedded default with the
 * sample WAN profile; loss and jitter are added to the cascade's UDP relays only (the clients'
 * links stay clean). Once every page decodes the others, each watches each other's streams for
 * 15 s through getStats(): frames/s, freezes as Chrome counts them (`freezeCount`,
 * `totalFreezesDuration`), NACKs it sent, audio concealment (`concealedSamples /
 * totalSamplesReceived`). The relays count the room's inter-region bytes and the NACKs crossing
 * the pipes; pipe SRTP is off here so they can read RTCP (encryption changes no timing that matters).
 * Each impairment runs twice, without and with the pipe conditioner (region-agent/cascade/
 * conditioner.ts: FEC and a reordering hold on the pipes, GEO_SFU_PIPE_FEC_GROUP and
 * GEO_SFU_PIPE_REORDER_MAX_MS at their defaults), so the table shows what it buys.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchEmbedded, type Embedded } from '../infra/embedded/launcher.ts';
import type { WanProfile } from '../infra/embedded/wan-profile.ts';
import { conditionedPayload } from '../region-agent/cascade/conditioner.ts';
import { rtcpNacks } from '../infra/embedded/udp-relay.ts';
import { CONFIG_SPEC, loadConfig } from '../shared/config/index.ts';
import { waitHealthy } from '../test/sdk/helpers.ts';
import { demoEdge, demoInboundQuality, joinDemoPage, launchChromium, MEDIA_ARGS, prepareWeb, ROOT, type InboundQuality } from '../test/web/browser.ts';

const REGIONS = ['us-east', 'eu-west', 'apac'] as const;
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
    GEO_SFU_PIPE_FEC_SHARE: process.env.BENCH_FEC_SHARE ?? String(CONFIG_SPEC.pipeFecShare.default || 0.25),
    GEO_SFU_PIPE_FEC_GROUP_MS: process.env.BENCH_FEC_GROUP_MS ?? String(CONFIG_SPEC.pipeFecGroupMs.default),
    GEO_SFU_PIPE_REORDER_MAX_MS: process.env.BENCH_REORDER_MAX_MS ?? String(CONFIG_SPEC.pipeReorderMaxMs.default || 150),
  },
};

/** One receiving page's view of one sender over the watch window. */
export interface StreamFigures {
  receiver: string;
  sender: string;
  framesPerSecond: number;
  freezes: number;
  frozenShare: number;
  /** NACKs the receiving browser sent for this sender's video and audio. */
  nacks: number;
  concealedShare: number;
  /** Video packets the receiving browser counts as lost (never arrived, not even repaired) over the window. */
  videoLost: number;
}

/** The pipe conditioners' counters over the window, summed over the agents (their /metrics). */
export interface RepairFigures {
  rebuilt: number;
  gaveUp: number;
  late: number;
  parityBytes: number;
}

export interface RunFigures {
  streams: StreamFigures[];
  /** The room's bytes across the relays (both directions, every pair) and the NACKs among them. */
  pipeBytes: number;
  pipeNacks: number;
  pipeNackedPackets: number;
  /** Packets the relays dropped (the emulated loss). */
  pipeDropped: number;
  repair: RepairFigures;
}

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
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
          runs.push(await measureRun(browser, embedded, watchMs, room).catch((err: unknown) => (err instanceof Misplaced ? measureRun(browser, embedded, watchMs, `${room}-again`) : Promise.reject(err))));
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

class Misplaced extends Error {}

async function measureRun(browser: Browser, embedded: Embedded, watchMs: number, room: string): Promise<RunFigures> {
  const pages: Array<{ name: string; context: BrowserContext; page: Page }> = [];
  try {
    for (const region of REGIONS) {
      const { context, page } = await joinDemoPage(browser, embedded.routerUrl, { room, name: region, region });
      pages.push({ name: region, context, page });
      const edge = await demoEdge(page);
      if (edge.region !== region) throw new Misplaced(`impaired-cascade: the page emulating ${region} was placed on ${edge.region ?? 'nothing'}`);
    }
    // Every page decodes video and hears audio from both others, then the window starts.
    const deadline = Date.now() + 60_000;
    for (const p of pages) {
      const others = pages.filter((o) => o !== p).map((o) => o.name);
      for (;;) {
        const q = await demoInboundQuality(p.page);
        if (others.every((o) => (q[o]?.video.framesDecoded ?? 0) > 0 && (q[o]?.audio.packetsReceived ?? 0) > 0)) break;
        if (Date.now() > deadline) throw new Error(`impaired-cascade: ${p.name} gets no media from ${others.join(', ')}: ${JSON.stringify(q)}`);
        await sleep(300);
      }
    }
    await sleep(2_000);
    // NACKs crossing the relays, read through the conditioner's trailer when it runs.
    const nacks = { nacks: 0, packets: 0 };
    for (const r of embedded.pipeRelays!.list().filter((v) => v.roomId === room)) {
      r.relay.inspect = (_dir, msg) => {
        const n = rtcpNacks(conditionedPayload(msg) ?? msg);
        nacks.nacks += n.nacks;
        nacks.packets += n.packets;
      };
    }
    const relayTotals = () => {
      const relays = embedded.pipeRelays!.list().filter((r) => r.roomId === room);
      const all = relays.flatMap((r) => [r.relay.stats.ab, r.relay.stats.ba]);
      return { bytes: sum(all.map((s) => s.bytes)), nacks: nacks.nacks, nackedPackets: nacks.packets, dropped: sum(all.map((s) => s.dropped)) };
    };
    const [before, pipeBefore, repairBefore] = [await Promise.all(pages.map((p) => demoInboundQuality(p.page))), relayTotals(), await repairCounters(embedded)];
    await sleep(watchMs);
    const [after, pipeAfter, repairAfter] = [await Promise.all(pages.map((p) => demoInboundQuality(p.page))), relayTotals(), await repairCounters(embedded)];
    if (process.env.BENCH_DEBUG) for (const r of embedded.pipeRelays!.list().filter((v) => v.roomId === room)) console.error('DEBUG', r.relay.stats.ab.packets, r.relay.stats.ab.bytes, [...r.relay.stats.ab.rtpBySsrc.entries()]);
    const streams: StreamFigures[] = [];
    for (const [i, p] of pages.entries()) {
      for (const other of pages.filter((o) => o !== p)) {
        const [b, a] = [before[i]![other.name], after[i]![other.name]];
        if (!b || !a) throw new Error(`impaired-cascade: ${p.name} lost ${other.name}'s tile during the window`);
        streams.push(streamFigures(p.name, other.name, b, a, watchMs));
      }
    }
    return {
      streams,
      pipeBytes: pipeAfter.bytes - pipeBefore.bytes,
      pipeNacks: pipeAfter.nacks - pipeBefore.nacks,
      pipeNackedPackets: pipeAfter.nackedPackets - pipeBefore.nackedPackets,
      pipeDropped: pipeAfter.dropped - pipeBefore.dropped,
      repair: { rebuilt: repairAfter.rebuilt - repairBefore.rebuilt, gaveUp: repairAfter.gaveUp - repairBefore.gaveUp, late: repairAfter.late - repairBefore.late, parityBytes: repairAfter.parityBytes - repairBefore.parityBytes },
    };
  } finally {
    for (const p of pages) await p.context.close().catch(() => undefined);
  }
}

function streamFigures(receiver: string, sender: string, b: InboundQuality, a: InboundQuality, watchMs: number): StreamFigures {
  const samples = a.audio.totalSamplesReceived - b.audio.totalSamplesReceived;
  return {
    receiver,
    sender,
    framesPerSecond: (a.video.framesDecoded - b.video.framesDecoded) / (watchMs / 1000),
    freezes: a.video.freezeCount - b.video.freezeCount,
    frozenShare: (a.video.totalFreezesDurationS - b.video.totalFreezesDurationS) / (watchMs / 1000),
    nacks: a.video.nackCount - b.video.nackCount + (a.audio.nackCount - b.audio.nackCount),
    concealedShare: samples > 0 ? (a.audio.concealedSamples - b.audio.concealedSamples) / samples : 0,
    videoLost: a.video.packetsLost - b.video.packetsLost,
  };
}

const REPAIR_METRICS: Record<keyof RepairFigures, string> = {
  rebuilt: 'geo_sfu_agent_pipe_fec_rebuilt_total',
  gaveUp: 'geo_sfu_agent_pipe_reorder_gave_up_total',
  late: 'geo_sfu_agent_pipe_late_total',
  parityBytes: 'geo_sfu_agent_pipe_fec_parity_bytes_total',
};

/** The conditioners' counters, summed over the agents' /metrics. */
async function repairCounters(embedded: Embedded): Promise<RepairFigures> {
  const total: RepairFigures = { rebuilt: 0, gaveUp: 0, late: 0, parityBytes: 0 };
  for (const agent of embedded.agents) {
    const text = await (await fetch(`${agent.directUrl}/metrics`)).text();
    for (const [key, metric] of Object.entries(REPAIR_METRICS) as Array<[keyof RepairFigures, string]>) {
      const line = text.split('\n').find((l) => l.startsWith(`${metric} `) || l.startsWith(`${metric}{`));
      total[key] += line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    }
  }
  return total;
}
