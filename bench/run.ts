/**
 * `npm run bench [-- --quick]`: every benchmark of the project, each printed as
 * `name: value (ratio vs reference)`, and a summary in bench/results/summary.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchAllocate } from './allocate.ts';
import { benchCascade } from './cascade.ts';
import { benchConsumers } from './consumers.ts';
import { benchPlacement } from './placement/index.ts';

const quick = process.argv.includes('--quick');
const lines: string[] = [];
const print = (line: string) => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};

const f = (x: number, digits = 1) => x.toFixed(digits);
const allocate = await benchAllocate({ quick });
print(`allocate throughput: ${f(allocate.allocatePerSecond, 0)} req/s (ratio ${f(allocate.ratio, 2)} vs reference one-Redis-round-trip route ${f(allocate.referencePerSecond, 0)} req/s; target ≥ 0.50)`);
print(`allocate latency at ${allocate.rate} req/s: p50 ${f(allocate.p50AtRateMs, 2)} ms, p99 ${f(allocate.p99AtRateMs, 2)} ms (target p99 < 10 ms)`);
if (allocate.errors > 0) print(`allocate errors: ${allocate.errors}`);

const consumers = await benchConsumers({ quick });
print(
  `consumers per worker at 85% CPU: ${consumers.consumersAt85 ?? `> ${consumers.steps.at(-1)?.consumers}`} (ratio ${consumers.consumersAt85 === null ? 'n/a' : f(consumers.consumersAt85 / 500, 2)} vs mediasoup's ~500 per core guide; VP8 at ${consumers.bitrateKbps} kbit/s, SRTP; target ≥ 400)`,
);

const cascade = await benchCascade({ quick });
print(`cascade added latency: p50 ${f(cascade.addedP50Ms, 2)} ms, p95 ${f(cascade.addedP95Ms, 2)} ms (piped p50 ${f(cascade.pipedP50Ms, 2)} ms vs one router ${f(cascade.localP50Ms, 2)} ms; target ≤ 2 ms at p50)`);
print(`cascade inter-region bytes, 1 publisher → ${cascade.subscribers} far subscribers: ${cascade.cascadeLinkBytes} B (ratio ${f(cascade.savingFactor, 1)}× fewer than ${cascade.directLinkBytes} B over ${cascade.subscribers} direct connections)`);

const placement = await benchPlacement({ quick });
const optimum = placement.policies.find((p) => p.policy === 'optimum')!;
for (const p of placement.policies.filter((x) => x.policy !== 'optimum')) {
  print(`placement ${p.policy}: mean pair delay ${f(p.meanRoomMeanMs)} ms (ratio ${f(p.meanRoomMeanMs / optimum.meanRoomMeanMs, 3)} vs offline optimum ${f(optimum.meanRoomMeanMs)} ms; regions/room ${f(p.regionsPerRoom, 2)})`);
}
for (const t of placement.decisionTimes) print(`placement decision, ${t.participants} participants: median ${f(t.medianUs)} µs (p99 ${f(t.p99Us)} µs; target < 1 ms at 500)`);
print(await (await import('./soak.ts')).soakLine({ quick }));

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const results = new URL('./results/', import.meta.url);
mkdirSync(results, { recursive: true });
writeFileSync(
  new URL('summary.md', results),
  [`# Benchmark summary`, '', `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}${quick ? ' (--quick)' : ''}.`, '', ...lines.map((l) => `- ${l}`), ''].join('\n'),
);
writeFileSync(new URL('allocate.json', results), `${JSON.stringify(allocate, null, 2)}\n`);
writeFileSync(new URL('consumers.json', results), `${JSON.stringify(consumers, null, 2)}\n`);
writeFileSync(new URL('cascade.json', results), `${JSON.stringify(cascade, null, 2)}\n`);
process.exit(0);
