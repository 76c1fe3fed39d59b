/**
 * Cascade media as three Chromium pages see it (bench/impaired-cascade.ts and the impaired-links
 * test): the pages join one room through the demo page, one in each of us-east, eu-west and apac,
 * on an embedded default with the launcher's pipe relays; once every page decodes the others, each
 * watches each other's streams through getStats(): frames/s, freezes as Chrome counts them
 * (`freezeCount`, `totalFreezesDuration`), NACKs it sent, audio concealment (`concealedSamples /
 * totalSamplesReceived`), video packets lost for good. The relays count the room's inter-region
 * bytes and the NACKs crossing the pipes (readable with pipe SRTP off), the agents' /metrics the
 * pipe conditioners' repairs.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Embedded } from '../../infra/embedded/launcher.ts';
import { rtcpNacks } from '../../infra/embedded/udp-relay.ts';
import { conditionedPayload } from '../../region-agent/cascade/conditioner.ts';
import { demoEdge, demoInboundQuality, joinDemoPage, type InboundQuality } from './browser.ts';

const REGIONS = ['us-east', 'eu-west', 'apac'] as const;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  /** The receiving browser's jitter buffer target for this sender's video at the window's end (ms; null: its own choice). */
  jitterBufferTargetMs: number | null;
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
  /** The bytes of each link (both directions), named by its regions. */
  pipeLinkBytes: Array<{ link: string; bytes: number }>;
  pipeNacks: number;
  pipeNackedPackets: number;
  /** Packets the relays dropped (the emulated loss). */
  pipeDropped: number;
  repair: RepairFigures;
}

/** The router placed a page in another region than the one it emulates (its probes of a busy agent): worth a second try. */
export class Misplaced extends Error {}

/** One room's media watched for `watchMs` once every page decodes the others. */
export async function watchCascadeMedia(browser: Browser, embedded: Embedded, watchMs: number, room: string): Promise<RunFigures> {
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
      const links = relays.map((r) => ({ link: r.regions.join('–'), bytes: r.relay.stats.ab.bytes + r.relay.stats.ba.bytes }));
      return { bytes: sum(all.map((s) => s.bytes)), links, nacks: nacks.nacks, nackedPackets: nacks.packets, dropped: sum(all.map((s) => s.dropped)) };
    };
    const [before, pipeBefore, repairBefore] = [await Promise.all(pages.map((p) => demoInboundQuality(p.page))), relayTotals(), await repairCounters(embedded)];
    await sleep(watchMs);
    const [after, pipeAfter, repairAfter] = [await Promise.all(pages.map((p) => demoInboundQuality(p.page))), relayTotals(), await repairCounters(embedded)];
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
      pipeLinkBytes: pipeAfter.links.map(({ link, bytes }) => ({ link, bytes: bytes - (pipeBefore.links.find((l) => l.link === link)?.bytes ?? 0) })),
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
    jitterBufferTargetMs: a.videoJitterBufferTargetMs,
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
