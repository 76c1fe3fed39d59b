import { describe, expect, it } from 'vitest';
import { newcomerMeanDelay, oneWayDelayMs, roomDelayProfile, roomMeanPairwiseDelay, type EdgeAssignment } from '../../router/placement/delay.ts';
import type { InterRegionRtt } from '../../router/placement/types.ts';
import { REGIONS, interRegion, seededRandom } from './fixtures.ts';

const rtt = interRegion(); // sample matrix: us-east–eu-west 72, us-east–apac 224, eu-west–apac 176, …

/** The O(n²) definition, to check the grouped sums against. */
function bruteForceMeanPairwise(room: readonly EdgeAssignment[], interRegionRtt: InterRegionRtt): number {
  let sum = 0;
  let pairs = 0;
  for (const [i, a] of room.entries()) {
    for (const [j, b] of room.entries()) {
      if (i === j) continue;
      sum += oneWayDelayMs(a.edgeRttMs, interRegionRtt(a.region, b.region), b.edgeRttMs);
      pairs++;
    }
  }
  return sum / pairs;
}

describe('delay', () => {
  it('one-way delay is half the round trip through both edges', () => {
    expect(oneWayDelayMs(10, 72, 15)).toBe(48.5);
  });

  it('newcomer mean delay: apac newcomer (RTT 8) to us-east (edge 10) and eu-west (edge 15)', () => {
    // ((8 + 224 + 10)/2 + (8 + 176 + 15)/2) / 2 = (121 + 99.5) / 2 = 110.25
    const room = roomDelayProfile([{ region: 'us-east', edgeRttMs: 10 }, { region: 'eu-west', edgeRttMs: 15 }]);
    expect(newcomerMeanDelay(room, 'apac', 8, rtt)).toBe(110.25);
    expect(newcomerMeanDelay(roomDelayProfile([]), 'apac', 8, rtt)).toBeNull();
  });

  it('room mean pairwise delay: a (us-east 10), b (us-east 20), c (eu-west 15)', () => {
    // a–b (10+0+20)/2 = 15; a–c (10+72+15)/2 = 48.5; b–c (20+72+15)/2 = 53.5; mean 117/3 = 39
    const room = [{ region: 'us-east', edgeRttMs: 10 }, { region: 'us-east', edgeRttMs: 20 }, { region: 'eu-west', edgeRttMs: 15 }];
    expect(roomMeanPairwiseDelay(room, rtt)).toBe(39);
  });

  it('room mean pairwise delay is null without a pair', () => {
    expect(roomMeanPairwiseDelay([], rtt)).toBeNull();
    expect(roomMeanPairwiseDelay([{ region: 'apac', edgeRttMs: 5 }], rtt)).toBeNull();
  });

  it('grouped sums equal the pairwise definition on random rooms', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 200; trial++) {
      const size = 2 + Math.floor(random() * 40);
      const room = Array.from({ length: size }, () => ({
        region: REGIONS[Math.floor(random() * REGIONS.length)]!,
        edgeRttMs: random() * 150,
      }));
      expect(roomMeanPairwiseDelay(room, rtt)).toBeCloseTo(bruteForceMeanPairwise(room, rtt), 9);
    }
  });
});
