import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The benchmark suite's common shape: every benchmark returns lines `name: value (ratio vs
 * reference)`, optionally with a target and whether it was met; the runner prints them, writes
 * bench/results/summary.md and copies the same table into docs/benchmarks.md between the markers below.
 */
export interface BenchLine {
  name: string;
  /** The figure with its unit, e.g. "1449 req/s". */
  value: string;
  /** "ratio 0.10 vs <reference> <figure>". */
  ratio: string;
  target?: { text: string; met: boolean };
}

export interface Benchmark {
  id: string;
  run(opts: { quick: boolean }): Promise<{ lines: BenchLine[]; json: unknown }>;
}

export const PAGE_START = '<!-- bench-summary:start (written by npm run bench; do not edit) -->';
export const PAGE_END = '<!-- bench-summary:end -->';

export function formatLine(line: BenchLine): string {
  const target = line.target ? ` — target ${line.target.text}: ${line.target.met ? 'met' : 'NOT MET'}` : '';
  return `${line.name}: ${line.value} (${line.ratio})${target}`;
}

/** The summary's body: when and where it was measured, and one table row per line. */
export function summaryBody(lines: readonly BenchLine[], meta: { date: string; machine: string; quick: boolean }): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  return [
    `Measured ${meta.date} on ${meta.machine}${meta.quick ? ' (`npm run bench -- --quick`)' : ' (`npm run bench`)'}.`,
    '',
    '| benchmark | value | ratio vs reference | target |',
    '| --- | --- | --- | --- |',
    ...lines.map((l) => `| ${cell(l.name)} | ${cell(l.value)} | ${cell(l.ratio)} | ${l.target ? `${cell(l.target.text)}: ${l.target.met ? 'met' : '**not met**'}` : '—'} |`),
  ].join('\n');
}

export function summaryMarkdown(body: string): string {
  return `# Benchmark summary\n\n${body}\n`;
}

/** The page with its summary section replaced by `body`; throws when the markers are missing. */
export function withPageSummary(page: string, body: string): string {
  const start = page.indexOf(PAGE_START);
  const end = page.indexOf(PAGE_END);
  if (start === -1 || end === -1 || end < start) throw new Error(`docs/benchmarks.md has no "${PAGE_START}" … "${PAGE_END}" section`);
  return `${page.slice(0, start + PAGE_START.length)}\n${body}\n${page.slice(end)}`;
}

/** The summary body the page shows now. */
export function pageSummary(page: string): string {
  const start = page.indexOf(PAGE_START);
  const end = page.indexOf(PAGE_END);
  if (start === -1 || end === -1 || end < start) throw new Error(`docs/benchmarks.md has no "${PAGE_START}" … "${PAGE_END}" section`);
  return page.slice(start + PAGE_START.length, end).trim();
}

export function writePageSummary(pagePath: URL, body: string): void {
  writeFileSync(pagePath, withPageSummary(readFileSync(pagePath, 'utf8'), body));
}
