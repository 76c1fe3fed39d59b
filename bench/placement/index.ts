import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DATASET_URL, loadDataset } from './dataset.ts';
import { cdfSvg, policyTable } from './report.ts';
import { OPTIMUM, simulate, type Outlier, type PolicySummary, type RoomResult } from './simulate.ts';
import { decisionTimes, rebalanceTimes, type DecisionTime } from './timing.ts';

export interface PlacementBenchOptions {
  quick: boolean;
  /** Latency data set path; default bench/data/latency.json. */
  latency?: string;
  seed?: number;
  /** Rooms to simulate; default 300 with `quick`, 2,000 otherwise. */
  rooms?: number;
  /** Where to write placement.{md,json,svg}; default bench/results/. Null: write nothing. */
  outDir?: string | null;
}

export interface PlacementBenchSummary {
  dataset: { path: string; regions: string[]; cities: number };
  seed: number;
  rooms: number;
  quick: boolean;
  /** Rooms whose optimum is exact (exhaustive or structured) and rooms with only bounds. */
  optimum: { exact: number; exhaustive: number; structured: number; bounded: number; checkedAgainstStructured: number };
  policies: PolicySummary[];
  byKind: Record<string, Array<Pick<PolicySummary, 'policy' | 'meanRoomMeanMs' | 'meanRoomP95Ms' | 'gapToOptimumPct' | 'pairsOver150Pct'>>>;
  outliers: { threshold: string; count: number; causes: Record<string, number>; rooms: Outlier[] };
  decisionTimes: DecisionTime[];
  /** Full rebalance (proposeRebalance) of rooms placed by min-delay. */
  rebalanceTimes: DecisionTime[];
  /** proposeRebalance() calls of the rebalancing policy over the simulated rooms (2–50 people), ms. */
  rebalanceInSimulation: { calls: number; medianMs: number; maxMs: number };
  elapsedMs: number;
  files: string[];
}

/** The placement simulator end to end: rooms, policies, optimum, report files. */
export async function benchPlacement(opts: PlacementBenchOptions): Promise<PlacementBenchSummary> {
  const started = performance.now();
  const path = opts.latency ?? fileURLToPath(DEFAULT_DATASET_URL);
  const ds = loadDataset(path);
  const seed = opts.seed ?? 1;
  const roomCount = opts.rooms ?? (opts.quick ? 300 : 2_000);
  const result = simulate(ds, { seed, rooms: roomCount, crossCheck: true });

  const times = decisionTimes(ds, [2, 50, 500], opts.quick ? 1_000 : 5_000);
  const rebalancing = rebalanceTimes(ds, [50, 500], opts.quick ? 50 : 200);
  const simulated = [...result.rebalanceMs].sort((a, b) => a - b);
  const causes: Record<string, number> = {};
  for (const o of result.outliers) causes[o.cause] = (causes[o.cause] ?? 0) + 1;
  const summary: PlacementBenchSummary = {
    dataset: { path, regions: ds.regions, cities: ds.cities.length },
    seed,
    rooms: roomCount,
    quick: opts.quick,
    optimum: {
      exact: result.optimumMethods.exhaustive + result.optimumMethods.structured,
      ...result.optimumMethods,
      checkedAgainstStructured: result.crossChecked,
    },
    policies: result.policies,
    byKind: byKind(result.rooms, result.policies.map((p) => p.policy)),
    outliers: { threshold: 'router min-delay more than 5% above the optimum', count: result.outliers.length, causes, rooms: result.outliers },
    decisionTimes: times,
    rebalanceTimes: rebalancing,
    rebalanceInSimulation: { calls: simulated.length, medianMs: simulated[simulated.length >> 1] ?? 0, maxMs: simulated.at(-1) ?? 0 },
    elapsedMs: 0,
    files: [],
  };

  const outDir = opts.outDir === undefined ? fileURLToPath(new URL('../results/', import.meta.url)) : opts.outDir;
  if (outDir !== null) {
    mkdirSync(outDir, { recursive: true });
    const order = [...result.policies.map((p) => p.policy).filter((p) => p !== OPTIMUM), OPTIMUM];
    const files = { md: join(outDir, 'placement.md'), json: join(outDir, 'placement.json'), svg: join(outDir, 'placement-cdf.svg') };
    writeFileSync(files.svg, cdfSvg(result.pairDelays, order, `Pair delay CDF, ${roomCount} simulated rooms (seed ${seed})`));
    summary.files = Object.values(files);
    summary.elapsedMs = performance.now() - started;
    writeFileSync(files.md, markdown(summary));
    writeFileSync(files.json, `${JSON.stringify({ ...summary, roomResults: result.rooms }, null, 2)}\n`);
  }
  summary.elapsedMs = performance.now() - started;
  return summary;
}

function byKind(rooms: readonly RoomResult[], policies: readonly string[]): PlacementBenchSummary['byKind'] {
  const out: PlacementBenchSummary['byKind'] = {};
  for (const kind of ['regional', 'spanning'] as const) {
    const of = rooms.filter((r) => r.kind === kind);
    if (of.length === 0) continue;
    out[`${kind} (${of.length} rooms)`] = policies.map((policy) => {
      const scores = of.map((r) => r.scores[policy]!);
      const pairs = scores.reduce((s, x) => s + x.pairs, 0);
      return {
        policy,
        meanRoomMeanMs: scores.reduce((s, x) => s + x.meanMs, 0) / of.length,
        meanRoomP95Ms: scores.reduce((s, x) => s + x.p95Ms, 0) / of.length,
        gapToOptimumPct: of.reduce((s, r) => s + ((r.scores[policy]!.meanMs - r.optimum.meanMs) / r.optimum.meanMs) * 100, 0) / of.length,
        pairsOver150Pct: (scores.reduce((s, x) => s + x.pairsOver150, 0) / pairs) * 100,
      };
    });
  }
  return out;
}

function markdown(s: PlacementBenchSummary): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
  const lines = [
    '# Placement quality',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}${s.quick ? ' (--quick)' : ''}: ${s.rooms} rooms (seed ${s.seed}) on \`${s.dataset.path.replace(/.*\/bench\//, 'bench/')}\` (${s.dataset.regions.length} regions, ${s.dataset.cities} cities). Delays are one-way, scored on true RTTs with the router's model; see bench/placement/README.md.`,
    '',
    policyTable(s.policies),
    '',
    `Optimum: exact in ${s.optimum.exact} of ${s.rooms} rooms (${s.optimum.exhaustive} exhaustive, ${s.optimum.structured} structured), bounded in ${s.optimum.bounded}; ${s.optimum.checkedAgainstStructured} exhaustive optima re-derived by the structured method, all equal.`,
    '',
    '## By room kind',
    '',
    ...Object.entries(s.byKind).flatMap(([kind, rows]) => [
      `**${kind}**, mean: ${rows.map((r) => `${r.policy} ${f(r.meanRoomMeanMs)} ms${r.policy === OPTIMUM ? '' : ` (+${f(r.gapToOptimumPct)}%)`}`).join(', ')}`,
      '',
      `**${kind}**, room p95: ${rows.map((r) => `${r.policy} ${f(r.meanRoomP95Ms)} ms`).join(', ')}`,
      '',
    ]),
    '## Decision time (router min-delay place())',
    '',
    '| participants | median | p99 | runs |',
    '|---|---|---|---|',
    ...s.decisionTimes.map((t) => `| ${t.participants} | ${f(t.medianUs)} µs | ${f(t.p99Us)} µs | ${t.runs} |`),
    '',
    '## Full rebalance time (router proposeRebalance(), room placed by min-delay)',
    '',
    '| participants | median | p99 | runs |',
    '|---|---|---|---|',
    ...s.rebalanceTimes.map((t) => `| ${t.participants} | ${f(t.medianUs / 1000, 2)} ms | ${f(t.p99Us / 1000, 2)} ms | ${t.runs} |`),
    '',
    `In the simulation: ${s.rebalanceInSimulation.calls} rebalances (after every join and leave), median ${f(s.rebalanceInSimulation.medianMs * 1000)} µs, max ${f(s.rebalanceInSimulation.maxMs, 2)} ms.`,
    '',
    `## Rooms where the router is more than 5% above the optimum: ${s.outliers.count} of ${s.rooms}`,
    '',
    `Causes: ${Object.entries(s.outliers.causes).map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}.`,
    '',
    ...s.outliers.rooms.slice(0, 15).map((o) => `- ${o.room} (${o.kind}, ${o.size} people) +${f(o.gapPct)}%: **${o.cause}**: ${o.why}. Router: ${o.router}. Optimum: ${o.optimum}.`),
    ...(s.outliers.count > 15 ? ['', `(${s.outliers.count - 15} more in placement.json)`] : []),
    '',
    `![pair delay CDF](placement-cdf.svg)`,
    '',
  ];
  return lines.join('\n');
}
