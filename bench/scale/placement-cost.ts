import { createStrategy } from '../../router/placement/index.ts';
import type { PlacementInput } from '../../router/placement/types.ts';
import { clientProfiles, regionRtt, type ScaleRegion } from './catalog.ts';

/**
 * The pure placement decision /allocate makes (min-delay, the router's own code), timed in this
 * process for each number of regions and room size: its cost grows with both, which the router's
 * /allocate latency mixes with everything else.
 */
export interface PlacementCost {
  regions: number;
  nodes: number;
  /** Participants already in the room (the newcomer comes on top). */
  roomSize: number;
  medianUs: number;
  p99Us: number;
}

export function placementCosts(catalog: readonly ScaleRegion[], regionCounts: readonly number[], roomSizes: readonly number[], nodes: number, runs: number): PlacementCost[] {
  const minDelay = createStrategy('min-delay');
  const costs: PlacementCost[] = [];
  for (const count of regionCounts) {
    const regions = catalog.slice(0, count);
    const ids = regions.map((r) => r.id);
    const rtt = regionRtt(regions);
    const profiles = clientProfiles(regions);
    const placementNodes = Array.from({ length: nodes }, (_, n) => ({ nodeId: `${ids[n % count]}-${Math.floor(n / count)}`, region: ids[n % count]!, state: 'alive' as const, draining: false, cordoned: false, stress: 0.2 + ((n * 37) % 50) / 100 }));
    for (const roomSize of roomSizes) {
      // A room spanning two regions (its home's and a neighbour's), the newcomer from a third.
      const participants = Array.from({ length: roomSize }, (_, i) => {
        const region = ids[i % 3 === 2 ? 1 % count : 0]!;
        return { participantId: `p${i}`, region, nodeId: `${region}-0`, edgeRttMs: 12 };
      });
      const input: PlacementInput = {
        regions: ids,
        nodes: placementNodes,
        interRegionRtt: (a, b) => (a === b ? 0 : rtt(a, b)),
        client: { byRegion: profiles[2 % count]!, source: 'client', estimatedRegions: [] },
        room: { homeRegion: ids[0]!, homeNodeId: `${ids[0]}-0`, participants },
        excludeNodeIds: [],
        marginMs: 0,
      };
      if (!minDelay.place(input).ok) throw new Error(`min-delay refused the timing room (${count} regions, ${roomSize} participants)`);
      for (let i = 0; i < Math.max(100, runs / 5); i++) minDelay.place(input);
      const samples: number[] = [];
      for (let i = 0; i < runs; i++) {
        const start = performance.now();
        minDelay.place(input);
        samples.push((performance.now() - start) * 1000);
      }
      samples.sort((a, b) => a - b);
      costs.push({ regions: count, nodes, roomSize, medianUs: samples[Math.floor(runs / 2)]!, p99Us: samples[Math.floor(runs * 0.99)]! });
    }
  }
  return costs;
}
