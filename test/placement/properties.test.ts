import { describe, expect, it } from 'vitest';
import { oneWayDelayMs, roomMeanPairwiseDelay } from '../../router/placement/delay.ts';
import { createStrategy } from '../../router/placement/index.ts';
import type { PlacedParticipant, PlacementInput, PlacementNode } from '../../router/placement/types.ts';
import { REGIONS, interRegion, measuredClient, node, seededRandom } from './fixtures.ts';

const TOLERANCE_MS = 1e-9;

/** A random but valid placement input: a few nodes per region in mixed health, a room of up to 30. */
function randomInput(random: () => number): PlacementInput {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const nodes: PlacementNode[] = REGIONS.flatMap((region) =>
    Array.from({ length: Math.floor(random() * 3) }, (_, i) =>
      node(`${region}-${i}`, region, {
        state: random() < 0.7 ? 'alive' : random() < 0.7 ? 'suspect' : 'dead',
        cordoned: random() < 0.05,
        draining: random() < 0.05,
        stress: random() * 1.2,
      }),
    ),
  );
  const measured: Record<string, Record<string, number>> = {};
  for (const [i, from] of REGIONS.entries()) {
    measured[from] = Object.fromEntries(REGIONS.slice(i + 1).map((to) => [to, 5 + random() * 250]));
  }
  const homeNode = nodes.length > 0 && random() < 0.85 ? pick(nodes) : null;
  const participants: PlacedParticipant[] = homeNode
    ? Array.from({ length: Math.floor(random() * 30) }, (_, i) => {
        const at = pick(nodes);
        return { participantId: `p${i}`, region: at.region, nodeId: at.nodeId, edgeRttMs: random() * 200 };
      })
    : [];
  return {
    regions: REGIONS,
    nodes,
    interRegionRtt: interRegion(measured),
    client: measuredClient(Object.fromEntries(REGIONS.map((r) => [r, random() * 300]))),
    room: { homeRegion: homeNode?.region ?? null, homeNodeId: homeNode?.nodeId ?? null, participants },
    excludeNodeIds: nodes.filter(() => random() < 0.1).map((n) => n.nodeId),
    marginMs: pick([0, 0, 10, 40]),
  };
}

/** The objective by its definition: the newcomer's mean one-way delay to everyone (its RTT when alone). */
function newcomerObjective(input: PlacementInput, region: string): number {
  const clientRttMs = input.client.byRegion[region]!;
  const others = input.room.participants;
  if (others.length === 0) return clientRttMs;
  const total = others.reduce((sum, p) => sum + oneWayDelayMs(clientRttMs, input.interRegionRtt(region, p.region), p.edgeRttMs), 0);
  return total / others.length;
}

function roomAfterJoin(input: PlacementInput, region: string) {
  return [...input.room.participants, { region, edgeRttMs: input.client.byRegion[region]! }];
}

describe('min-delay properties (seeded random inputs)', () => {
  const minDelay = createStrategy('min-delay');

  it('never chooses a region worse than another eligible region, beyond the margin', () => {
    const random = seededRandom(20_261_129);
    let placedCount = 0;
    for (let trial = 0; trial < 2_000; trial++) {
      const input = randomInput(random);
      const result = minDelay.place(input);
      if (!result.ok) {
        expect(result.candidates.every((c) => c.excludedBecause !== undefined)).toBe(true);
        continue;
      }
      placedCount++;
      const { decision } = result;
      const eligible = decision.candidates.filter((c) => c.excludedBecause === undefined).map((c) => c.region);
      expect(eligible).toContain(decision.region);
      const chosen = newcomerObjective(input, decision.region);
      expect(decision.candidates.find((c) => c.region === decision.region)?.score).toBeCloseTo(chosen, 9);
      // The first participant is placed by RTT alone, which is the objective with nobody else there.
      const margin = input.room.homeRegion === null ? 0 : input.marginMs;
      for (const region of eligible) {
        expect(chosen).toBeLessThanOrEqual(newcomerObjective(input, region) + margin + TOLERANCE_MS);
        // Earlier participants do not move, so the room's mean pairwise delay orders regions the same way.
        if (margin === 0 && input.room.participants.length > 0) {
          const roomAfter = roomMeanPairwiseDelay(roomAfterJoin(input, decision.region), input.interRegionRtt)!;
          expect(roomAfter).toBeLessThanOrEqual(roomMeanPairwiseDelay(roomAfterJoin(input, region), input.interRegionRtt)! + TOLERANCE_MS);
        }
      }
    }
    // The generator must mostly produce placeable rooms for the property to mean anything.
    expect(placedCount).toBeGreaterThan(1_000);
  });

  it('is deterministic: the same input gives the same decision', () => {
    const random = seededRandom(42);
    for (let trial = 0; trial < 100; trial++) {
      const input = randomInput(random);
      expect(minDelay.place(input)).toEqual(minDelay.place(input));
    }
  });
});
