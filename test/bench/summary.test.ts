import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatLine, pageSummary, summaryBody, withPageSummary } from '../../bench/summary.ts';

/** docs/benchmarks.md shows the last benchmark run: the same table as bench/results/summary.md. */
describe('benchmark summary', () => {
  it('docs/benchmarks.md shows exactly the summary of the last `npm run bench`', () => {
    const page = readFileSync(new URL('../../docs/benchmarks.md', import.meta.url), 'utf8');
    const summary = readFileSync(new URL('../../bench/results/summary.md', import.meta.url), 'utf8');
    expect(summary.startsWith('# Benchmark summary\n\n')).toBe(true);
    const body = summary.slice('# Benchmark summary\n\n'.length).trim();
    expect(body).toMatch(/^Measured \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC on .+\./);
    expect(pageSummary(page)).toBe(body);
  });

  it('formats lines as `name: value (ratio vs reference)` with the target, and replaces only the page section', () => {
    const line = { name: 'full rebalance, 500 participants', value: '3.1 ms median', ratio: 'ratio 0.155 vs the 20 ms budget', target: { text: '< 20 ms at 500', met: true } };
    expect(formatLine(line)).toBe('full rebalance, 500 participants: 3.1 ms median (ratio 0.155 vs the 20 ms budget) — target < 20 ms at 500: met');
    expect(formatLine({ ...line, target: { ...line.target, met: false } })).toMatch(/NOT MET$/);
    const body = summaryBody([line, { name: 'a | b', value: '1', ratio: 'ratio 1' }], { date: '2026-11-30 01:00 UTC', machine: 'test box', quick: true });
    expect(body.split('\n').slice(-2)).toEqual(['| full rebalance, 500 participants | 3.1 ms median | ratio 0.155 vs the 20 ms budget | < 20 ms at 500: met |', '| a \\| b | 1 | ratio 1 | — |']);
    const page = readFileSync(new URL('../../docs/benchmarks.md', import.meta.url), 'utf8');
    const next = withPageSummary(page, body);
    expect(pageSummary(next)).toBe(body);
    expect(withPageSummary(next, pageSummary(page))).toBe(page);
    expect(() => withPageSummary('# no markers\n', body)).toThrow(/bench-summary/);
  });
});
