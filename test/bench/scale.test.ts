import { describe, expect, it } from 'vitest';
import { benchScale } from '../../bench/scale/index.ts';
import { extrapolate, fitLine, type Measured } from '../../bench/scale/model.ts';
import { scaleMarkdown, scalePlot } from '../../bench/scale/report.ts';

/** Issue #21's control-plane scale benchmark, its whole path at a tiny size (the figures themselves are not asserted). */
describe('control plane at scale benchmark', () => {
  it('measures every size and call on real routers and a private Redis, and extrapolates to 100k / 1M / 10M', { timeout: 120_000 }, async () => {
    const r = await benchScale({ quick: true, sizes: [12, 24], regions: 3, rooms: 100, participants: 1_000, windowMs: 1_500, isolatedCalls: 100, outDir: null });
    process.stdout.write(`${scaleMarkdown(r)}\n`);
    expect(r.sizes.map((s) => s.nodes)).toEqual([12, 24]);
    for (const s of r.sizes) {
      // Bounded probing: a heartbeat carries the RTTs of at most GEO_SFU_PROBE_PEERS_PER_REGION (3) peers per region.
      expect(s.peerRttEntries).toBe(Math.min(s.nodes - 1, 3 * r.regions));
      expect(s.routerMsPerHeartbeat).toBeGreaterThan(0);
      expect(s.steady.routerCores).toBeGreaterThan(0);
      expect(s.steady.redisCores).toBeGreaterThan(0);
      expect(s.steady.heartbeatsPerSecond).toBeGreaterThan(0);
      expect(s.refreshWallMs).toBeGreaterThan(0);
      expect(s.allocate.map((a) => a.roomSize)).toEqual([10, 100]);
      for (const a of s.allocate) expect(a.errors).toBe(0);
    }
    for (const call of Object.values(r.perCall)) expect(call.routerMs).toBeGreaterThan(0);
    expect(r.participants).toBe(1_000);
    expect(r.redisBytesPerParticipant).toBeGreaterThan(0);
    expect(r.churn.failures).toBe(0);
    // Every node probes every other: fewer than 1,000 peers' RTTs fit the router's 64 KiB body limit.
    expect(r.peerRttEntriesThatFit).toBeGreaterThan(100);
    expect(r.peerRttEntriesThatFit).toBeLessThanOrEqual(1_000);
    expect(r.untrimmedHeartbeat.status).toBe(200);
    const rows = r.extrapolation.rows;
    expect(rows.map((row) => row.participants)).toEqual([100_000, 1_000_000, 10_000_000]);
    for (const row of rows) {
      expect(row.saturatesFirst.resource).not.toBe('');
      expect(row.redisCores).toBeGreaterThan(0);
      expect(row.redisMemoryBytes).toBeGreaterThan(0);
    }
    expect(rows.map((row) => row.beyondPeerRttLimit)).toEqual([false, false, false]);
    // Every resource has its place in the order, those that saturate sorted by where.
    expect(r.extrapolation.saturation.length).toBe(rows[0]!.uses.length);
    const points = r.extrapolation.saturation.map((u) => u.participants ?? Number.POSITIVE_INFINITY);
    expect(points).toEqual([...points].sort((a, b) => a - b));
    expect(scalePlot(r)).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  });

  it('fits lines and grows every cost with participants', () => {
    expect(fitLine([[0, 1], [10, 21]])).toEqual({ a: 1, b: 2 });
    const size = (nodes: number) => ({ nodes, peerRttEntries: nodes - 1, heartbeatBytes: 40_000, routerMsPerHeartbeat: 1 + nodes / 1_000, redisMsPerHeartbeat: 0.5, refreshCpuMs: nodes * 0.4, refreshRedisMs: nodes * 0.02, redisBytesPerNode: 40_000 });
    const measured: Measured = {
      peerRttEntriesThatFit: 700,
      probePeerLimit: 1_000_000,
      sizes: [size(100), size(300)],
      allocate: { routerMs: 1.5, redisMs: 0.1 },
      joinReport: { routerMs: 1, redisMs: 0.1 },
      leaveReport: { routerMs: 0.5, redisMs: 0.07 },
      rebalanceMsPerChange: 1,
      rebalanceDecisionsPerChange: 1,
      roomScan: { cpuMsPerRoom: 0.2, wallMsPerRoom: 0.3, redisMsPerRoom: 0.05 },
      redisBytesPerRoom: 300,
      redisBytesPerParticipant: 450,
    };
    const { rows, redisPrimaryLimit } = extrapolate(measured);
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i]!.routerCores).toBeGreaterThan(rows[i - 1]!.routerCores);
      expect(rows[i]!.redisCores).toBeGreaterThan(rows[i - 1]!.redisCores);
      expect(rows[i]!.redisMemoryBytes).toBeGreaterThan(rows[i - 1]!.redisMemoryBytes);
    }
    // Every node probing every other: past 701 nodes the RTTs do not fit a heartbeat.
    expect(rows[0]!.beyondPeerRttLimit).toBe(true);
    expect(redisPrimaryLimit).not.toBeNull();
    // Probing bounded to 30 peers: they always fit, and heartbeats cost less at every size.
    const bounded = extrapolate({ ...measured, probePeerLimit: 30 }).rows;
    expect(bounded.map((row) => row.beyondPeerRttLimit)).toEqual([false, false, false]);
    for (let i = 0; i < rows.length; i++) expect(bounded[i]!.routerCores).toBeLessThan(rows[i]!.routerCores);
  });
});
