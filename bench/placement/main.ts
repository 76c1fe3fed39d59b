/**
 * Placement quality simulator:
 *   node --import tsx bench/placement/main.ts [--quick] [--latency path] [--seed N] [--rooms N] [--out dir] [--live N]
 * --live N also runs the first N rooms through a live router's POST /allocate and checks every
 * decision matches the in-process run.
 */
import { parseArgs } from 'node:util';
import { DatasetError, loadDataset } from './dataset.ts';
import { benchPlacement } from './index.ts';
import { checkLiveAgreement } from './live.ts';
import { policyTable } from './report.ts';
import { generateRooms } from './rooms.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    latency: { type: 'string' },
    seed: { type: 'string' },
    rooms: { type: 'string' },
    out: { type: 'string' },
    live: { type: 'string' },
  },
});
const int = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer (got ${v})`);
  return n;
};

try {
  const summary = await benchPlacement({
    quick: values.quick ?? false,
    ...(values.latency !== undefined ? { latency: values.latency } : {}),
    ...(values.seed !== undefined ? { seed: int('seed', values.seed)! } : {}),
    ...(values.rooms !== undefined ? { rooms: int('rooms', values.rooms)! } : {}),
    ...(values.out !== undefined ? { outDir: values.out } : {}),
  });
  process.stdout.write(`${policyTable(summary.policies)}\n\n`);
  process.stdout.write(`optimum exact in ${summary.optimum.exact}/${summary.rooms} rooms (${summary.optimum.exhaustive} exhaustive, ${summary.optimum.structured} structured), bounded in ${summary.optimum.bounded}\n`);
  for (const t of summary.decisionTimes) process.stdout.write(`min-delay decision, ${t.participants} participants: median ${t.medianUs.toFixed(1)} µs, p99 ${t.p99Us.toFixed(1)} µs\n`);
  process.stdout.write(`router > 5% above optimum in ${summary.outliers.count} rooms: ${JSON.stringify(summary.outliers.causes)}\n`);
  const live = int('live', values.live);
  if (live) {
    const ds = loadDataset(summary.dataset.path);
    const rooms = generateRooms(ds, { seed: summary.seed, count: summary.rooms }).slice(0, live);
    const check = await checkLiveAgreement(ds, rooms);
    process.stdout.write(`live router: ${check.decisions - check.disagreements.length}/${check.decisions} decisions agree\n`);
    if (check.disagreements.length > 0) process.stdout.write(`${JSON.stringify(check.disagreements.slice(0, 10), null, 2)}\n`);
  }
  process.stdout.write(`wrote ${summary.files.join(', ')} in ${(summary.elapsedMs / 1000).toFixed(1)} s\n`);
  process.exit(0);
} catch (err) {
  if (err instanceof DatasetError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
