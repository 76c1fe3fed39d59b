import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DATASET_URL, loadDataset } from '../../bench/placement/dataset.ts';
import { benchPlacement } from '../../bench/placement/index.ts';
import { continentOf, DEFAULT_MIX, generateRooms } from '../../bench/placement/rooms.ts';
import { OPTIMUM, simulate, type SimulationResult } from '../../bench/placement/simulate.ts';

const ds = loadDataset(fileURLToPath(DEFAULT_DATASET_URL));

describe('placement simulator', () => {
  let result: SimulationResult;
  beforeAll(() => {
    result = simulate(ds, { seed: 21, rooms: 250, crossCheck: true });
  });

  it('the optimum is at or below every policy in every room', () => {
    let comparisons = 0;
    for (const room of result.rooms) {
      expect(room.optimum.exact, room.id).toBe(true);
      for (const [policy, score] of Object.entries(room.scores)) {
        expect(score.meanMs, `${room.id} ${policy}`).toBeGreaterThanOrEqual(room.optimum.meanMs - 1e-9);
        comparisons++;
      }
      expect(room.scores[OPTIMUM]!.meanMs).toBeCloseTo(room.optimum.meanMs, 9);
    }
    expect(comparisons).toBe(250 * 8);
    expect(result.crossChecked).toBe(result.optimumMethods.exhaustive);
  });

  it('scores every policy, with the router at or below first-joiner, nearest, fixed and random on average', () => {
    const by = Object.fromEntries(result.policies.map((p) => [p.policy, p]));
    expect(Object.keys(by)).toEqual(['rebalance', 'min-delay', 'first-joiner', 'geoip-room', 'nearest', 'fixed-us-east', 'random', 'optimum']);
    for (const baseline of ['nearest', 'fixed-us-east', 'random']) expect(by['min-delay']!.meanRoomMeanMs).toBeLessThan(by[baseline]!.meanRoomMeanMs);
    expect(by['min-delay']!.migrationsPerParticipant).toBe(0);
    // Live rebalancing: closer to the optimum than greedy placement, at a bounded number of moves.
    expect(by['rebalance']!.meanRoomMeanMs).toBeLessThan(by['min-delay']!.meanRoomMeanMs);
    expect(by['rebalance']!.gapToOptimumPct).toBeLessThan(by['min-delay']!.gapToOptimumPct / 2);
    expect(by['rebalance']!.migrationsPerParticipant).toBeGreaterThan(0);
    expect(by['rebalance']!.migrationsPerParticipant).toBeLessThan(0.3);
    expect(by['first-joiner']!.regionsPerRoom).toBe(1);
  });

  it('explains every room where the router is more than 5% above the optimum', () => {
    const over = result.rooms.filter((r) => r.scores['min-delay']!.meanMs > r.optimum.meanMs * 1.05).map((r) => r.id);
    expect(result.outliers.map((o) => o.room).sort()).toEqual(over.sort());
    for (const o of result.outliers) expect(o.why.length).toBeGreaterThan(20);
  });

  it('is repeatable from its seed', () => {
    expect(simulate(ds, { seed: 21, rooms: 40 }).policies).toEqual(simulate(ds, { seed: 21, rooms: 40 }).policies);
  });

  it('generates the documented mix: sizes 2–50, regional rooms on one continent, spanning rooms on several, leaves that never empty a room', () => {
    const rooms = generateRooms(ds, { seed: 4, count: 600 });
    const sizes = rooms.map((r) => r.final.length);
    expect(Math.min(...sizes)).toBe(2);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(50);
    expect(sizes.filter((n) => n > 25).length).toBeGreaterThan(30);
    for (const room of rooms) {
      const continents = new Set(room.participants.map((p) => continentOf(ds, p.city)));
      if (room.kind === 'regional') expect(continents.size).toBe(1);
      else expect(continents.size).toBeGreaterThan(1);
      let present = 0;
      for (const e of room.events) {
        present += e.type === 'join' ? 1 : -1;
        expect(present).toBeGreaterThanOrEqual(1);
      }
      expect(present).toBe(room.final.length);
      for (const p of room.participants) {
        for (const r of ds.regions) {
          expect(p.trueRttMs[r]).toBeCloseTo(ds.cities[p.city]!.rttMs[r]! + p.accessMs, 9);
          expect(p.measuredRttMs[r]).toBeGreaterThanOrEqual(1);
        }
      }
    }
    const regional = rooms.filter((r) => r.kind === 'regional').length / rooms.length;
    expect(regional).toBeGreaterThan(DEFAULT_MIX.regionalShare - 0.08);
    expect(regional).toBeLessThan(DEFAULT_MIX.regionalShare + 0.08);
    expect(rooms.some((r) => r.events.some((e) => e.type === 'leave'))).toBe(true);
  });

  it('benchPlacement writes the table, the JSON and the SVG, with decision times for 2, 50 and 500', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'placement-'));
    const summary = await benchPlacement({ quick: true, rooms: 40, outDir: dir });
    expect(summary.decisionTimes.map((t) => t.participants)).toEqual([2, 50, 500]);
    for (const t of summary.decisionTimes) expect(t.medianUs).toBeGreaterThan(0);
    expect(summary.rebalanceTimes.map((t) => t.participants)).toEqual([50, 500]);
    expect(summary.rebalanceInSimulation.calls).toBeGreaterThan(40);
    expect(summary.optimum.exact + summary.optimum.bounded).toBe(40);
    for (const file of summary.files) expect(existsSync(file)).toBe(true);
    const svg = readFileSync(join(dir, 'placement-cdf.svg'), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<polyline /g)).toHaveLength(8);
    expect(readFileSync(join(dir, 'placement.md'), 'utf8')).toContain('| min-delay |');
    expect(readFileSync(join(dir, 'placement.md'), 'utf8')).toContain('| rebalance |');
    expect(JSON.parse(readFileSync(join(dir, 'placement.json'), 'utf8')).roomResults).toHaveLength(40);
  });
});
