import { expect, it } from 'vitest';
import { createStrategy } from '../../router/placement/index.ts';
import type { PlacedParticipant, PlacementNode } from '../../router/placement/types.ts';
import { REGIONS, measuredClient, node, placementInput, seededRandom } from './fixtures.ts';

it('times min-delay on a 500-participant room (median < 5 ms)', () => {
  const random = seededRandom(500);
  const nodes: PlacementNode[] = REGIONS.flatMap((region) =>
    Array.from({ length: 8 }, (_, i) => node(`${region}-${i}`, region, { stress: random() * 0.9 })),
  );
  const participants: PlacedParticipant[] = Array.from({ length: 500 }, (_, i) => {
    const at = nodes[Math.floor(random() * nodes.length)]!;
    return { participantId: `p${i}`, region: at.region, nodeId: at.nodeId, edgeRttMs: 5 + random() * 100 };
  });
  const input = placementInput({
    nodes,
    room: { homeRegion: 'us-east', homeNodeId: 'us-east-0', participants },
    client: measuredClient({ 'us-west': 70, 'us-east': 12, 'eu-west': 80, apac: 230 }),
    marginMs: 10,
  });
  const minDelay = createStrategy('min-delay');
  for (let i = 0; i < 200; i++) minDelay.place(input); // warm-up: let the JIT compile the path

  const samplesMs: number[] = [];
  for (let i = 0; i < 1_000; i++) {
    const start = performance.now();
    const result = minDelay.place(input);
    samplesMs.push(performance.now() - start);
    expect(result.ok).toBe(true);
  }
  samplesMs.sort((a, b) => a - b);
  const median = samplesMs[samplesMs.length >> 1]!;
  const p99 = samplesMs[Math.floor(samplesMs.length * 0.99)]!;
  console.log(`min-delay, 500-participant room, 32 nodes: median ${(median * 1000).toFixed(1)} µs, p99 ${(p99 * 1000).toFixed(1)} µs over ${samplesMs.length} decisions`);
  expect(median).toBeLessThan(5);
});
