/**
 * `npm run bench [-- --quick]`: every benchmark of the project, each figure printed as
 * `name: value (ratio vs reference)` with its target (met or not), then a summary table in
 * bench/results/summary.md, copied into docs/benchmarks.md between its bench-summary markers. A benchmark
 * is one entry of BENCHMARKS (see bench/summary.ts for the shape).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchAllocate } from './allocate.ts';
import { benchBuild } from './build.ts';
import { benchCascade } from './cascade.ts';
import { benchConsumers } from './consumers.ts';
import { benchFirstFrame, type FirstFrameCase } from './first-frame.ts';
import { benchHostile, withinHostileGoal } from './hostile.ts';
import { benchImpairedCascade, type CaseFigures } from './impaired-cascade.ts';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DATASET_URL, loadDataset } from './placement/dataset.ts';
import { benchPlacement } from './placement/index.ts';
import { simulatePolicyRooms } from './placement/region-policy.ts';
import { benchRedisFailover } from './redis-failover.ts';
import { benchScale } from './scale/index.ts';
import { limitsText, rowSummary } from './scale/report.ts';
import { benchSoak } from './soak.ts';
import { formatLine, summaryBody, summaryMarkdown, writePageSummary, type BenchLine, type Benchmark } from './summary.ts';
import { benchWebhooks } from './webhooks.ts';

const f = (x: number, digits = 1) => x.toFixed(digits);

const allocate: Benchmark = {
  id: 'allocate',
  async run({ quick }) {
    const r = await benchAllocate({ quick });
    const lines: BenchLine[] = [
      {
        name: 'allocate throughput',
        value: `${f(r.allocatePerSecond, 0)} req/s`,
        ratio: `ratio ${f(r.ratio, 2)} vs a one-Redis-round-trip route's ${f(r.referencePerSecond, 0)} req/s`,
        target: { text: '≥ 0.50', met: r.ratio >= 0.5 },
      },
      {
        name: `allocate p99 at ${r.rate} req/s`,
        value: `${f(r.p99AtRateMs, 2)} ms (p50 ${f(r.p50AtRateMs, 2)} ms)`,
        ratio: `ratio ${f(r.p99AtRateMs / 10, 2)} vs the 10 ms budget`,
        target: { text: '< 10 ms', met: r.p99AtRateMs < 10 },
      },
    ];
    const h = r.honest;
    lines.push(
      {
        name: 'allocate throughput, honest path (a grant per participant, API key on every tenth call, rate limit counted in Redis)',
        value: `${f(h.allocatePerSecond, 0)} req/s`,
        ratio: `ratio ${f(h.ratio, 2)} vs a one-Redis-round-trip route's ${f(r.referencePerSecond, 0)} req/s; router CPU by component: ${h.profileByComponent.slice(0, 5).map((e) => `${e.where} ${f(e.selfPct)} %`).join(', ')}`,
        target: { text: '≥ 0.50', met: h.ratio >= 0.5 },
      },
      {
        name: `allocate p99 at ${r.rate} req/s, honest path`,
        value: `${f(h.p99AtRateMs, 2)} ms (p50 ${f(h.p50AtRateMs, 2)} ms)`,
        ratio: `ratio ${f(h.p99AtRateMs / 10, 2)} vs the 10 ms budget; ${h.errors} calls failed${h.errors > 0 ? ` (${Object.entries(h.failures).map(([status, n]) => `${n} × ${status}`).join(', ')}; a 429 is a participant refused)` : ''}`,
        target: { text: '< 10 ms, none refused', met: h.p99AtRateMs < 10 && h.errors === 0 },
      },
    );
    if (r.errors > 0) lines.push({ name: 'allocate errors', value: String(r.errors), ratio: 'ratio n/a' });
    return { lines, json: r };
  },
};

const webhooks: Benchmark = {
  id: 'webhooks',
  async run({ quick }) {
    const r = await benchWebhooks({ quick });
    const line: BenchLine = {
      name: `app webhook delivery latency at ${r.ratePerSecond} events/s`,
      value: `p50 ${f(r.p50Ms, 0)} ms, p99 ${f(r.p99Ms, 0)} ms`,
      ratio: `${r.delivered} of ${r.sent} delivered, ${r.rooms} rooms, queue on Redis`,
    };
    return { lines: [line], json: r };
  },
};

const consumers: Benchmark = {
  id: 'consumers',
  async run({ quick }) {
    // Without receivers' feedback, then with it (receiver reports, REMB, NACKs, SRTCP), one after the other.
    const plain = await benchConsumers({ quick });
    const fed = await benchConsumers({ quick, feedback: true });
    const reached = (r: typeof plain) => r.consumersAt85 ?? r.steps.at(-1)?.consumers ?? 0;
    const line = (r: typeof plain, name: string, extra: string): BenchLine => {
      const at85 = r.consumersAt85;
      return {
        name,
        value: at85 === null ? `> ${r.steps.at(-1)?.consumers ?? 0} (85% CPU not reached${quick ? ' in the --quick time budget' : ''})` : String(at85),
        ratio: at85 === null ? "ratio n/a vs mediasoup's ~500 per core" : `ratio ${f(at85 / 500, 2)} vs mediasoup's ~500 per core (VP8 ${r.bitrateKbps} kbit/s, SRTP)${extra}`,
        target: { text: '≥ 400', met: reached(r) >= 400 },
      };
    };
    const feedback = fed.feedback!;
    return {
      lines: [
        line(plain, 'consumers per worker at 85% CPU', ''),
        line(
          fed,
          "consumers per worker at 85% CPU, with receivers' RTCP (RR + REMB every 100 ms, a NACK per consumer every second, SRTCP)",
          `; ratio ${f(reached(fed) / Math.max(1, reached(plain)), 2)} vs without feedback (${feedback.packets} SRTCP packets sent; ${feedback.nacksCounted} NACKs counted by the first 50 consumers)`,
        ),
      ],
      json: { plain, feedback: fed },
    };
  },
};

const cascade: Benchmark = {
  id: 'cascade',
  async run({ quick }) {
    const r = await benchCascade({ quick });
    return {
      lines: [
        {
          name: 'cascade added latency, p50',
          value: `${f(r.addedP50Ms, 2)} ms (p95 ${f(r.addedP95Ms, 2)} ms)`,
          ratio: `piped p50 ${f(r.pipedP50Ms, 2)} ms vs one router ${f(r.localP50Ms, 2)} ms`,
          target: { text: '≤ 2 ms', met: r.addedP50Ms <= 2 },
        },
        {
          name: `cascade inter-region bytes, 1 publisher → ${r.subscribers} far subscribers`,
          value: `${r.cascadeLinkBytes} B`,
          ratio: `ratio ${f(1 / r.savingFactor, 3)} (${f(r.savingFactor, 1)}× fewer) vs ${r.directLinkBytes} B over direct connections`,
        },
      ],
      json: r,
    };
  },
};

const placement: Benchmark = {
  id: 'placement',
  async run({ quick }) {
    const s = await benchPlacement({ quick });
    const residency = simulatePolicyRooms(loadDataset(fileURLToPath(DEFAULT_DATASET_URL)), { seed: 1, rooms: quick ? 100 : 300 });
    const policy = (id: string) => s.policies.find((p) => p.policy === id)!;
    const optimum = policy('optimum');
    const rebalance = policy('rebalance');
    const spanning = Object.entries(s.byKind).find(([kind]) => kind.startsWith('spanning'))?.[1];
    const spanP95 = (id: string) => spanning?.find((r) => r.policy === id)?.meanRoomP95Ms ?? NaN;
    const meanRatio = rebalance.meanRoomMeanMs / optimum.meanRoomMeanMs;
    const p95Ratio = spanP95('rebalance') / spanP95('optimum');
    const regionRatio = rebalance.regionsPerRoom / optimum.regionsPerRoom;
    const decision500 = s.decisionTimes.find((t) => t.participants === 500)!;
    const rebalance500 = s.rebalanceTimes.find((t) => t.participants === 500)!;
    const lines: BenchLine[] = [
      {
        name: `placement with rebalancing: mean pair delay (${s.rooms} rooms)`,
        value: `${f(rebalance.meanRoomMeanMs)} ms`,
        ratio: `ratio ${f(meanRatio, 3)} vs the offline optimum's ${f(optimum.meanRoomMeanMs)} ms`,
        target: { text: '≤ 1.03', met: meanRatio <= 1.03 },
      },
      {
        name: 'placement with rebalancing: p95 pair delay of spanning rooms',
        value: `${f(spanP95('rebalance'))} ms`,
        ratio: `ratio ${f(p95Ratio, 3)} vs the optimum's ${f(spanP95('optimum'))} ms`,
        target: { text: '≤ 1.03', met: p95Ratio <= 1.03 },
      },
      {
        name: 'placement with rebalancing: regions per room',
        value: f(rebalance.regionsPerRoom, 2),
        ratio: `ratio ${f(regionRatio, 3)} vs the optimum's ${f(optimum.regionsPerRoom, 2)}`,
        target: { text: '≤ 1.10', met: regionRatio <= 1.1 },
      },
      {
        name: 'placement with rebalancing: migrations per participant',
        value: f(rebalance.migrationsPerParticipant, 3),
        ratio: `ratio ${f(rebalance.migrationsPerParticipant / 0.3, 2)} vs the 0.3 limit`,
        target: { text: '≤ 0.3', met: rebalance.migrationsPerParticipant <= 0.3 },
      },
      ...s.policies
        .filter((p) => p.policy !== 'optimum' && p.policy !== 'rebalance')
        .map((p) => ({
          name: `placement ${p.policy}: mean pair delay`,
          value: `${f(p.meanRoomMeanMs)} ms`,
          ratio: `ratio ${f(p.meanRoomMeanMs / optimum.meanRoomMeanMs, 3)} vs the offline optimum (regions/room ${f(p.regionsPerRoom, 2)})`,
        })),
      {
        name: `placement min-delay, two-region policy rooms: mean pair delay (${residency.rooms} rooms)`,
        value: `${f(residency.routerMeanMs)} ms`,
        ratio: `ratio ${f(residency.routerMeanMs / residency.optimumWithinMs, 3)} vs the optimum over the allowed regions' ${f(residency.optimumWithinMs)} ms (no policy: ${f(residency.optimumUnrestrictedMs)} ms)`,
      },
      {
        name: 'placement min-delay, two-region policy rooms: decisions outside the policy',
        value: String(residency.decisionsOutsidePolicy),
        ratio: 'ratio n/a',
        target: { text: '= 0', met: residency.decisionsOutsidePolicy === 0 },
      },
      ...s.decisionTimes.map((t) => ({
        name: `placement decision, ${t.participants} participants`,
        value: `${f(t.medianUs)} µs median (p99 ${f(t.p99Us)} µs)`,
        ratio: `ratio ${f(t.medianUs / 1000, 3)} vs the 1 ms budget`,
        ...(t === decision500 ? { target: { text: '< 1 ms at 500', met: t.medianUs < 1000 } } : {}),
      })),
      ...s.rebalanceTimes.map((t) => ({
        name: `full rebalance, ${t.participants} participants`,
        value: `${f(t.medianUs / 1000, 2)} ms median (p99 ${f(t.p99Us / 1000, 2)} ms)`,
        ratio: `ratio ${f(t.medianUs / 1000 / 20, 3)} vs the 20 ms budget`,
        ...(t === rebalance500 ? { target: { text: '< 20 ms at 500', met: t.medianUs < 20_000 } } : {}),
      })),
    ];
    return { lines, json: { ...s, files: s.files, regionPolicy: residency } };
  },
};

const soak: Benchmark = {
  id: 'soak',
  async run({ quick }) {
    const r = await benchSoak({ quick });
    const g = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} MiB/h`;
    const n = (t: { perHour: number; end: number }) => `${t.perHour >= 0 ? '+' : ''}${t.perHour.toFixed(0)}/h (at ${t.end.toFixed(0)})`;
    const flatMemory = (...trends: { perHour: number }[]) => trends.every((t) => Math.abs(t.perHour) <= 10);
    const w = r.worstAgent;
    const counts = [r.router.handles, r.router.sockets, r.router.redisKeys, w.handles, w.sockets, w.mediasoupObjects];
    return {
      lines: [
        {
          name: `soak ${r.durationS} s on loopback: router memory growth`,
          value: `RSS ${g(r.router.rss.perHour)}, heap ${g(r.router.heap.perHour)} (at ${r.router.rss.end.toFixed(0)} / ${r.router.heap.end.toFixed(0)} MiB)`,
          ratio: `${r.failures} of ${r.allocations} allocations + joins/leaves failed; per hour, from the lower envelope of the samples`,
          target: { text: 'within ±10 MiB/h', met: flatMemory(r.router.rss, r.router.heap) },
        },
        {
          name: `soak ${r.durationS} s on loopback: memory growth of the agent growing most (of ${r.agents.length})`,
          value: `RSS ${g(w.rss.perHour)}, heap ${g(w.heap.perHour)} (at ${w.rss.end.toFixed(0)} / ${w.heap.end.toFixed(0)} MiB)`,
          ratio: `all ${r.agents.length}: RSS ${g(r.agents.reduce((a, x) => a + x.rss.perHour, 0))}, heap ${g(r.agents.reduce((a, x) => a + x.heap.perHour, 0))}`,
          target: { text: 'within ±10 MiB/h', met: flatMemory(w.rss, w.heap) },
        },
        {
          name: `soak ${r.durationS} s on loopback: open handles, sockets, mediasoup objects, Redis keys`,
          value: `router: handles ${n(r.router.handles)}, sockets ${n(r.router.sockets)}, Redis keys ${n(r.router.redisKeys)} (and nonces, which expire, ${n(r.router.redisNonces)}); agent growing most: handles ${n(w.handles)}, sockets ${n(w.sockets)}, mediasoup objects ${n(w.mediasoupObjects)}`,
          ratio: `per hour after warm-up, over ${r.sessions} sessions`,
          target: { text: 'flat (< 1 per 100 sessions)', met: counts.every((t) => Math.abs(t.perHour) * (r.durationS / 3600) * (2 / 3) < r.sessions / 100) },
        },
      ],
      json: r,
    };
  },
};

const hostile: Benchmark = {
  id: 'hostile',
  async run({ quick }) {
    const r = await benchHostile({ quick });
    const { quiet, attacked, attacker } = r;
    const refusals = [...Object.entries(attacker.refusals)].map(([code, n]) => `${n} ${code}`).join(', ') || 'none';
    return {
      lines: [
        {
          name: "hostile client: an agent's /probe time, median",
          value: `${f(attacked.probeP50Ms, 2)} ms under attack (p99 ${f(attacked.probeP99Ms, 2)} ms)`,
          ratio: `ratio ${f(attacked.probeP50Ms / quiet.probeP50Ms, 2)} vs ${f(quiet.probeP50Ms, 2)} ms quiet (median of ${r.rounds} rounds)`,
          target: { text: '≤ 1.5× or +2 ms', met: withinHostileGoal(quiet.probeP50Ms, attacked.probeP50Ms) },
        },
        {
          name: 'hostile client: a legitimate /allocate p99',
          value: `${f(attacked.allocateP99Ms, 2)} ms under attack (p50 ${f(attacked.allocateP50Ms, 2)} ms)`,
          ratio: `ratio ${f(attacked.allocateP99Ms / quiet.allocateP99Ms, 2)} vs ${f(quiet.allocateP99Ms, 2)} ms quiet (median of ${r.rounds} rounds)`,
          target: { text: '≤ 1.5× or +2 ms', met: withinHostileGoal(quiet.allocateP99Ms, attacked.allocateP99Ms) },
        },
        {
          name: `hostile client: what one attacker got of ${1_000} transports and ${1_000} consumers`,
          value: `${attacker.transports} transports, ${attacker.consumers} consumers`,
          ratio: `refused: ${refusals}; ${attacker.slowConnectionsOpenAtEnd} of ${attacker.slowConnections} slow-body connections still open`,
        },
      ],
      json: r,
    };
  },
};

const build: Benchmark = {
  id: 'build',
  async run({ quick }) {
    const r = await benchBuild({ quick });
    const line = (service: 'router' | 'agent', what: string): BenchLine => {
      const { built, source } = r[service];
      return {
        name: `${what} from the build (node dist/), spawn → listening, median of ${r.rounds}`,
        value: `${f(built.medianStartMs, 0)} ms, RSS ${f(built.medianRssMiB, 0)} MiB`,
        ratio: `ratio ${f(built.medianStartMs / source.medianStartMs, 2)} (start), ${f(built.medianRssMiB / source.medianRssMiB, 2)} (RSS) vs tsx's ${f(source.medianStartMs, 0)} ms, ${f(source.medianRssMiB, 0)} MiB`,
      };
    };
    return { lines: [line('router', 'router'), line('agent', 'region agent (1 SFU worker)')], json: r };
  },
};

const redisFailover: Benchmark = {
  id: 'redis-failover',
  async run({ quick }) {
    const r = await benchRedisFailover({ quick });
    const refused = r.rounds.reduce((sum, round) => sum + round.refused, 0);
    const bad = r.rounds.reduce((sum, round) => sum + round.badRefusals, 0);
    return {
      lines: [
        {
          name: `Redis failover: SIGKILL of the Sentinel primary → allocations succeed again (2 routers, ${r.ratePerSecond}/s over ${r.rooms} rooms), median of ${r.rounds.length}`,
          value: `${f(r.medianRecoveryMs / 1000, 2)} s (${r.rounds.map((round) => f(round.recoveryMs / 1000, 2)).join(' / ')} s)`,
          ratio: `ratio ${f(r.medianRecoveryMs / 5000, 2)} vs the 5 s goal; ${refused} calls refused, ${bad} of them not a 503 with Retry-After`,
          target: { text: '≤ 5 s, every refusal a 503', met: r.medianRecoveryMs <= 5000 && bad === 0 },
        },
      ],
      json: r,
    };
  },
};

const impairedCascade: Benchmark = {
  id: 'impaired-cascade',
  async run({ quick }) {
    const r = await benchImpairedCascade({ quick });
    // Bytes are compared with the clean links without the pipe conditioner (no repair at all); --quick runs no such case.
    const clean = r.cases.find((c) => c.lossPct === 0 && c.jitterMs === 0 && c.conditioner === 'off');
    // The issue's goals: time frozen ≤ 1 % (1 % loss) and ≤ 3 % (3 % loss), concealment ≤ 1 % at 1 % loss.
    const frozenGoal = (lossPct: number) => (lossPct <= 1 ? 0.01 : 0.03);
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    // Each link's bytes against the same link's on the clean links (links that carry parity pay more than the others).
    const perLink = (c: CaseFigures): string =>
      c.pipeLinkBytes
        .map(({ link, bytes }) => {
          const base = clean?.pipeLinkBytes.find((l) => l.link === link)?.bytes;
          return `${link} ${base ? f(bytes / base, 2) : '?'}`;
        })
        .join(', ');
    const lines: BenchLine[] = r.cases.map((c) => {
      // Goals apply with the conditioner on (the off cases show what it buys).
      const impaired = c.conditioner === 'on' && (c.lossPct > 0 || c.jitterMs > 0);
      // Reordering alone: NACKs ≥ 10 × fewer than without the conditioner, from the browsers and on the pipes.
      const off = c.lossPct === 0 && c.jitterMs > 0 ? r.cases.find((o) => o.lossPct === 0 && o.jitterMs === c.jitterMs && o.conditioner === 'off') : undefined;
      const nacksMet = !off || (c.browserNacks * 10 <= off.browserNacks && c.pipeNacks * 10 <= off.pipeNacks);
      const met = nacksMet && c.maxFrozenShare <= frozenGoal(c.lossPct) && (c.lossPct > 1 || c.concealedShare <= 0.01) && (!clean || c.pipeBytes <= 1.25 * clean.pipeBytes);
      return {
        name: `cascade media, 3 Chromium pages in 3 regions, ${c.name} between regions (median of ${r.runsPerCase}, ${r.watchS} s each)`,
        value: `${f(c.framesPerSecond)} frames/s, ${c.maxFreezesPerStream} freezes, ${pct(c.maxFrozenShare)} frozen (worst stream; mean ${pct(c.meanFrozenShare)}), audio concealed ${pct(c.concealedShare)}`,
        ratio: `video packets lost for good ${c.videoLost}; repair on the pipes: ${c.repair.rebuilt} rebuilt, ${c.repair.gaveUp} gaps given up, ${c.repair.late} late; NACKs: ${c.browserNacks} from browsers, ${c.pipeNacks} on the pipes; ${clean ? `inter-region bytes ratio ${f(c.pipeBytes / clean.pipeBytes, 2)} vs clean links (per link: ${perLink(c)})` : `${c.pipeBytes} inter-region bytes (no clean-links run with --quick to compare)`}`,
        ...(impaired ? { target: { text: `frozen ≤ ${pct(frozenGoal(c.lossPct))}${c.lossPct <= 1 ? ', concealed ≤ 1 %' : ''}${clean ? ', bytes ≤ 1.25× clean' : ''}${off ? ', NACKs ≥ 10× fewer than without' : ''}`, met } } : {}),
      };
    });
    return { lines, json: r };
  },
};

const firstFrame: Benchmark = {
  id: 'first-frame',
  async run({ quick }) {
    const r = await benchFirstFrame({ quick });
    // A case with the room opened ahead against the same case with it opened at the join, same run.
    const atJoinRatio = (c: FirstFrameCase): string => {
      const atJoin = c.openedAhead ? r.cases.find((o) => o.wan === c.wan && !o.openedAhead) : undefined;
      return atJoin ? `; ratio ${f(c.median.firstFrameFromAll / atJoin.median.firstFrameFromAll, 2)} vs the room opened at the join` : '';
    };
    const lines: BenchLine[] = r.cases.map((c) => {
      const m = c.median;
      return {
        name: `time to first frame, Chromium joining a room of two publishers in two other regions, ${c.name} (median of ${r.joinsPerCase})`,
        value: `${f(m.firstFrameFromAll, 0)} ms from the click to a frame from both (allocated ${f(m.allocated, 0)}, socket ${f(m.socketOpen, 0)}, welcome ${f(m.welcome, 0)}, capabilities ${f(m.capabilities, 0)}, joined ${f(m.joined, 0)}, transports ${f(m.transports, 0)}, consumed ${f(m.consumed, 0)}, ICE+DTLS ${f(m.connected, 0)}, first video packet ${f(m.videoPacket, 0)}, first decoded ${f(m.videoDecoded, 0)} ms)`,
        ratio: `ratio ${f(m.firstFrameFromAll / c.goalMs, 2)} vs the ${c.goalMs} ms goal${c.wan ? ` (1 s + ${c.largestRttMs} ms, the largest RTT from the joiner's edge to a publisher's)` : ''}${atJoinRatio(c)}`,
        target: { text: `≤ ${c.goalMs} ms`, met: m.firstFrameFromAll <= c.goalMs },
      };
    });
    return { lines, json: r };
  },
};

const scale: Benchmark = {
  id: 'scale',
  async run({ quick }) {
    const r = await benchScale({ quick });
    const x = r.extrapolation;
    const big = (p: number) => (p >= 1e6 ? `${p / 1e6}M` : `${p / 1e3}k`);
    const lines: BenchLine[] = [
      ...r.sizes.map((s) => ({
        name: `control plane at scale, ${s.nodes} nodes over ${r.regions} regions heartbeating every second (${s.peerRttEntries} peerRtt entries each), ${r.participants.toLocaleString('en-US')} participants in Redis`,
        value: `router ${f(s.steady.routerCores, 2)} cores, Redis ${f(s.steady.redisCores, 2)} cores`,
        ratio: `per heartbeat alone: router ${f(s.routerMsPerHeartbeat, 3)} ms, Redis ${f(s.redisMsPerHeartbeat, 3)} ms CPU; registry refresh ${f(s.refreshWallMs, 1)} ms (${f(s.refreshCpuMs, 1)} ms CPU); /allocate p50/p99 ${s.allocate.map((a) => `rooms of ${a.roomSize} ${f(a.p50Ms, 1)}/${f(a.p99Ms, 1)} ms`).join(', ')}`,
      })),
      {
        name: 'control plane at scale, CPU per call alone (router / Redis)',
        value: `/allocate ${f(r.perCall.allocateSmallRoom.routerMs, 3)} / ${f(r.perCall.allocateSmallRoom.redisMs, 3)} ms (rooms of 1–100: ${f(r.perCall.allocateLargeRoom.routerMs, 3)} / ${f(r.perCall.allocateLargeRoom.redisMs, 3)} ms), join report ${f(r.perCall.joinReport.routerMs, 3)} / ${f(r.perCall.joinReport.redisMs, 3)} ms, leave report ${f(r.perCall.leaveReport.routerMs, 3)} / ${f(r.perCall.leaveReport.redisMs, 3)} ms`,
        ratio: `room scan ${f(r.roomScan.cpuMsPerRoom, 3)} / ${f(r.roomScan.redisMsPerRoom, 3)} ms per room; placement decision ${r.placement.map((c) => `${c.regions} regions, room of ${c.roomSize}: ${f(c.medianUs, 0)} µs`).join(', ')}; Redis memory ${f(r.redisBytesPerParticipant, 0)} B per participant, ${f(r.redisBytesPerRoom, 0)} B per room`,
      },
      {
        name: `control plane at scale, rebalancer at 1 % of participants joining and leaving per minute (${f(r.churn.joinsPerSecond, 1)}/s each)`,
        value: `${f(r.churn.rebalanceCores, 4)} cores (${r.churn.rebalanceDecisions} decisions of ${f(r.churn.rebalanceDecisionMs, 3)} ms)`,
        ratio: `router ${f(r.churn.routerCores, 2)} cores during the churn (${f(r.sizes.at(-1)!.steady.routerCores, 2)} before it), Redis ${f(r.churn.redisCores, 2)} (${f(r.sizes.at(-1)!.steady.redisCores, 2)}); ${r.churn.failures} of ${r.churn.joins + r.churn.leaves + r.churn.failures} joins and leaves failed`,
      },
      ...x.rows.map((row) => ({
        name: `control plane extrapolated to ${big(row.participants)} concurrent participants`,
        value: rowSummary(row),
        ratio: `ratio ${f(row.saturatesFirst.ratio, 2)} of the limit of the first resource to saturate`,
      })),
      {
        name: 'control plane: the order in which resources saturate as participants grow',
        value: x.saturation.map((u) => `${u.resource} at ${u.participants === null ? '> 1,000,000,000' : u.participants.toLocaleString('en-US')}`).join('; '),
        ratio: 'participants; bench/scale/model.ts',
      },
      {
        name: 'control plane: size at which one Redis primary stops being enough',
        value: x.redisPrimaryLimit ? `${x.redisPrimaryLimit.participants.toLocaleString('en-US')} participants (${x.redisPrimaryLimit.resource})` : 'beyond 1,000,000,000 participants',
        ratio: `ratio ${x.redisPrimaryLimit ? f(x.redisPrimaryLimit.participants / 10_000_000, 3) : 'n/a'} vs 10M; ${limitsText(r)} Table and plot: bench/results/scale.md, scale-cpu.svg`,
      },
    ];
    return { lines, json: r };
  },
};

/** Every benchmark, in the order they run. */
const BENCHMARKS: Benchmark[] = [allocate, webhooks, consumers, cascade, impairedCascade, firstFrame, placement, hostile, build, redisFailover, scale, soak];

const quick = process.argv.includes('--quick');
// `--only id,id`: run those entries alone (while working on one); the summary is then not rewritten.
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? new Set((process.argv[onlyAt + 1] ?? '').split(',')) : null;
const unknown = only ? [...only].filter((id) => !BENCHMARKS.some((b) => b.id === id)) : [];
if (unknown.length > 0) {
  process.stderr.write(`--only: unknown benchmark ${unknown.join(', ')} (known: ${BENCHMARKS.map((b) => b.id).join(', ')})\n`);
  process.exit(2);
}
const results = new URL('./results/', import.meta.url);
mkdirSync(results, { recursive: true });
const lines: BenchLine[] = [];
const started = performance.now();
const took: string[] = [];
for (const bench of BENCHMARKS.filter((b) => !only || only.has(b.id))) {
  const benchStarted = performance.now();
  const { lines: own, json } = await bench.run({ quick });
  for (const line of own) process.stdout.write(`${formatLine(line)}\n`);
  lines.push(...own);
  writeFileSync(new URL(`${bench.id}.json`, results), `${JSON.stringify(json, null, 2)}\n`);
  took.push(`${bench.id} ${((performance.now() - benchStarted) / 1000).toFixed(0)} s`);
  process.stdout.write(`  (${took.at(-1)})\n`);
}
if (only) {
  process.stdout.write(`\nran ${[...only].join(', ')} only: the summary and docs/benchmarks.md were not rewritten\n`);
  process.exit(0);
}
// Issue #21: the full run under an hour, --quick under 5 minutes.
const wallMinutes = (performance.now() - started) / 60_000;
const wallGoalMinutes = quick ? 5 : 60;
const wallLine: BenchLine = {
  name: `the whole ${quick ? '--quick ' : ''}run`,
  value: `${wallMinutes.toFixed(1)} min`,
  ratio: `ratio ${(wallMinutes / wallGoalMinutes).toFixed(2)} vs ${wallGoalMinutes} min; ${took.join(', ')}`,
  target: { text: `< ${wallGoalMinutes} min`, met: wallMinutes < wallGoalMinutes },
};
process.stdout.write(`${formatLine(wallLine)}\n`);
lines.push(wallLine);
const cpus = os.cpus();
const machine = `${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
const body = summaryBody(lines, { date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', machine, quick });
writeFileSync(new URL('summary.md', results), summaryMarkdown(body));
writePageSummary(new URL('../docs/benchmarks.md', import.meta.url), body);
const missed = lines.filter((l) => l.target && !l.target.met);
process.stdout.write(`\n${lines.filter((l) => l.target).length - missed.length} of ${lines.filter((l) => l.target).length} targets met${missed.length > 0 ? `; not met: ${missed.map((l) => l.name).join('; ')}` : ''}\nwrote bench/results/summary.md and the summary in docs/benchmarks.md\n`);
process.exit(0);
