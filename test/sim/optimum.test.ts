import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { roomMeanPairwiseDelay } from '../../router/placement/index.ts';
import { DEFAULT_DATASET_URL, loadDataset } from '../../bench/placement/dataset.ts';
import {
  descentOptimum,
  exhaustiveOptimum,
  meanPairwiseMs,
  optimum,
  pairwiseLowerBoundMs,
  structuredOptimum,
  type OptimumProblem,
} from '../../bench/placement/optimum.ts';
import { simContext } from '../../bench/placement/policies.ts';
import { seededRandom } from '../../bench/placement/prng.ts';
import { generateRooms } from '../../bench/placement/rooms.ts';
import { finalRoomProblem } from '../../bench/placement/score.ts';

const ds = loadDataset(fileURLToPath(DEFAULT_DATASET_URL));

/** A random problem: `regions` regions with a random symmetric matrix, people in a few cities, each with its own access delay. */
function randomProblem(seed: number, people: number, regions: number, cities: number): OptimumProblem {
  const random = seededRandom(seed);
  const inter = Array.from({ length: regions }, () => new Array<number>(regions).fill(0));
  for (let a = 0; a < regions; a++) for (let b = a + 1; b < regions; b++) inter[a]![b] = inter[b]![a] = 20 + random() * 200;
  const cityRtt = Array.from({ length: cities }, () => Array.from({ length: regions }, () => 5 + random() * 250));
  const group = Array.from({ length: people }, () => Math.floor(random() * cities));
  const rtt = group.map((c) => {
    const access = random() * 20;
    return cityRtt[c]!.map((v) => v + access);
  });
  return { regions: Array.from({ length: regions }, (_, i) => `r${i}`), rtt, group, inter };
}

describe('offline optimum', () => {
  it('exhaustive search and the structured programme agree on every small generated room', () => {
    const rooms = generateRooms(ds, { seed: 11, count: 400 }).filter((r) => 4 ** r.final.length <= 65_536);
    expect(rooms.length).toBeGreaterThan(150);
    for (const room of rooms) {
      const p = finalRoomProblem(ds, room);
      const brute = exhaustiveOptimum(p);
      const structured = structuredOptimum(p)!;
      expect(structured.meanMs, room.id).toBeCloseTo(brute.meanMs, 9);
      // The assignment each reports really scores its value.
      expect(meanPairwiseMs(p, structured.assignment)).toBeCloseTo(structured.meanMs, 9);
      expect(meanPairwiseMs(p, brute.assignment)).toBeCloseTo(brute.meanMs, 9);
    }
  });

  it('agree on random problems too: 2–6 regions, repeated cities, rooms up to regions^n ≈ 1e6', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const regions = 2 + (seed % 5);
      const people = Math.max(2, Math.min(Math.floor(Math.log(1e5) / Math.log(regions)), 2 + (seed % 9)));
      const p = randomProblem(seed, people, regions, 1 + (seed % 4));
      expect(structuredOptimum(p)!.meanMs, `seed ${seed}`).toBeCloseTo(exhaustiveOptimum(p).meanMs, 9);
    }
  });

  it('treats people of one city as interchangeable only when their RTTs differ by a constant', () => {
    const p = randomProblem(5, 7, 4, 2);
    // Same city label, unrelated RTTs: the programme must split them and still be exact.
    const mixed: OptimumProblem = { ...p, rtt: p.rtt.map((row, i) => (i % 2 === 0 ? row.map((v, a) => v + a * 37) : row)) };
    expect(structuredOptimum(mixed)!.meanMs).toBeCloseTo(exhaustiveOptimum(mixed).meanMs, 9);
  });

  it('exhaustive search refuses rooms past its limit; optimum() then goes structured', () => {
    const p = finalRoomProblem(ds, generateRooms(ds, { seed: 3, count: 200 }).find((r) => r.final.length >= 30)!);
    expect(() => exhaustiveOptimum(p)).toThrow(RangeError);
    expect(optimum(p).method).toBe('structured');
  });

  it('the lower bound is below and descent above the exact optimum, on 50-person rooms', () => {
    for (const room of generateRooms(ds, { seed: 5, count: 300 }).filter((r) => r.final.length >= 26).slice(0, 10)) {
      const p = finalRoomProblem(ds, room);
      const exact = structuredOptimum(p)!;
      expect(pairwiseLowerBoundMs(p)).toBeLessThanOrEqual(exact.meanMs + 1e-9);
      const descent = descentOptimum(p, 16);
      expect(descent.method).toBe('bounded');
      expect(descent.meanMs).toBeGreaterThanOrEqual(exact.meanMs - 1e-9);
      expect(descent.lowerBoundMs).toBeLessThanOrEqual(exact.meanMs + 1e-9);
    }
  });

  it("the simulator's own delay function gives the router model's room mean", () => {
    const ctx = simContext(ds);
    const random = seededRandom(9);
    for (const room of generateRooms(ds, { seed: 9, count: 50 })) {
      const p = finalRoomProblem(ds, room);
      const assignment = p.rtt.map(() => Math.floor(random() * ds.regions.length));
      const router = roomMeanPairwiseDelay(
        assignment.map((a, i) => ({ region: ds.regions[a]!, edgeRttMs: p.rtt[i]![a]! })),
        ctx.interRegionRtt,
      );
      expect(router).toBeCloseTo(meanPairwiseMs(p, assignment), 9);
    }
  });
});
