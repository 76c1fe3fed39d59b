import { describe, expect, it } from 'vitest';
import { latencyArg, resolveRouterUrl } from '../../cli/args.ts';
import { recommend, summarizeSamples } from '../../shared/probe-stats.ts';

describe('summarizeSamples (shared by the CLI and the SDK): probe statistics worked out by hand', () => {
  it('ten samples, one lost', () => {
    // Answered, in order: 20, 22, 21, 30, 20, 24, 23, 21, 22 (9 of 10).
    // Sorted: 20 20 21 21 22 22 23 24 30 → min 20, median 22 (5th), p95 nearest rank ⌈0.95 × 9⌉ = 9th = 30.
    // Jitter: |2|+|1|+|9|+|10|+|4|+|1|+|2|+|1| = 30 over 8 differences = 3.75. Loss 1/10.
    expect(summarizeSamples([20, 22, 21, null, 30, 20, 24, 23, 21, 22])).toEqual({
      sent: 10,
      received: 9,
      minMs: 20,
      medianMs: 22,
      p95Ms: 30,
      jitterMs: 3.75,
      loss: 0.1,
    });
  });

  it('even count: median is the mean of the middle two; one sample has no jitter', () => {
    // Sorted 10 12 14 100 → median (12 + 14) / 2 = 13, p95 ⌈3.8⌉ = 4th = 100; jitter (2+2+86)/3 = 30.
    expect(summarizeSamples([10, 12, 14, 100])).toMatchObject({ medianMs: 13, p95Ms: 100, jitterMs: 30 });
    expect(summarizeSamples([42])).toMatchObject({ minMs: 42, medianMs: 42, p95Ms: 42, jitterMs: null, loss: 0 });
  });

  it('nothing answered', () => {
    expect(summarizeSamples([null, null])).toEqual({ sent: 2, received: 0, minMs: null, medianMs: null, p95Ms: null, jitterMs: null, loss: 1 });
  });

  it('recommends the lowest median, ties to the first listed, null when none answered', () => {
    expect(recommend([{ region: 'a', medianMs: 80 }, { region: 'b', medianMs: 20 }, { region: 'c', medianMs: null }])).toBe('b');
    expect(recommend([{ region: 'a', medianMs: 20 }, { region: 'b', medianMs: 20 }])).toBe('a');
    expect(recommend([{ region: 'a', medianMs: null }])).toBeNull();
  });
});

describe('argument parsing', () => {
  it('--latency accepts repeated and comma-separated REGION=MS, rejects the rest', () => {
    let acc = latencyArg('us-west=80', undefined);
    acc = latencyArg('eu-west=140.5,apac=175', acc);
    expect(acc).toEqual({ 'us-west': 80, 'eu-west': 140.5, apac: 175 });
    expect(() => latencyArg('us-west=80', acc)).toThrow(/twice/);
    expect(() => latencyArg('us-west', undefined)).toThrow(/REGION=MS/);
    expect(() => latencyArg('US_West=1', undefined)).toThrow(/not a region id/);
    expect(() => latencyArg('apac=-1', undefined)).toThrow(/\[0, 60000\]/);
    expect(() => latencyArg('apac=60001', undefined)).toThrow(/\[0, 60000\]/);
  });

  it('router URL: flag, then GEO_SFU_ROUTER_URL, then the default; a bad one names its source', () => {
    expect(resolveRouterUrl('http://r:1/', {})).toBe('http://r:1');
    expect(resolveRouterUrl(undefined, { GEO_SFU_ROUTER_URL: 'https://router.example/base/' })).toBe('https://router.example/base');
    expect(resolveRouterUrl(undefined, {})).toBe('http://127.0.0.1:8080');
    expect(() => resolveRouterUrl('nope', {})).toThrow(/^--router /);
    expect(() => resolveRouterUrl(undefined, { GEO_SFU_ROUTER_URL: 'ftp://x' })).toThrow(/^GEO_SFU_ROUTER_URL /);
  });
});
