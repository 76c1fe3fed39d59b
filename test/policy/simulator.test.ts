import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { DEFAULT_DATASET_URL, loadDataset } from '../../bench/placement/dataset.ts';
import { simulatePolicyRooms } from '../../bench/placement/region-policy.ts';

/** The placement simulator's policy rooms (bench/placement/region-policy.ts), as `npm run bench` reports them. */
it('scores two-region policy rooms against the optimum over their allowed regions; no decision leaves the policy', () => {
  const s = simulatePolicyRooms(loadDataset(fileURLToPath(DEFAULT_DATASET_URL)), { seed: 5, rooms: 60 });
  console.log(
    `policy rooms: router ${s.routerMeanMs.toFixed(1)} ms, optimum within the policy ${s.optimumWithinMs.toFixed(1)} ms (gap ${s.gapToOptimumPct.toFixed(1)}% per room), unrestricted optimum ${s.optimumUnrestrictedMs.toFixed(1)} ms; ${s.elapsedMs.toFixed(0)} ms`,
  );
  expect(s.decisionsOutsidePolicy).toBe(0);
  // The optimum within the policy is at most the router's and at least the unrestricted optimum.
  expect(s.routerMeanMs).toBeGreaterThanOrEqual(s.optimumWithinMs - 1e-9);
  expect(s.optimumWithinMs).toBeGreaterThanOrEqual(s.optimumUnrestrictedMs - 1e-9);
  // Greedy placement (no rebalancing) stays near it: 8.1% per room on these 60 rooms, 3.9% on 200 rooms with seed 1.
  expect(s.gapToOptimumPct).toBeLessThan(15);
});
