import { describe, expect, it } from 'vitest';
import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import { greatCircleArc, MAP } from '../../web/src/world.ts';

/** The cascade map's links follow the shorter great circle between two regions. */
const region = (id: string) => DEFAULT_REGIONS.find((r) => r.id === id)!;

describe('the cascade map arc', () => {
  it('goes from us-west to apac across the Pacific: off the left edge, back on the right', () => {
    const arc = greatCircleArc(region('us-west'), region('apac'));
    expect(arc).toHaveLength(2);
    const [fromUsWest, toApac] = arc as [typeof arc[number], typeof arc[number]];
    expect(fromUsWest[0]!.lon).toBeCloseTo(region('us-west').lon, 6);
    expect(fromUsWest.at(-1)!.x).toBe(0);
    expect(toApac[0]!.x).toBe(MAP.width);
    expect(toApac.at(-1)!.lon).toBeCloseTo(region('apac').lon, 6);
    // Never over the Americas' east, the Atlantic, Europe or Africa: west of us-west, or east of Singapore's meridian minus a margin.
    for (const p of arc.flat()) expect(p.lon <= region('us-west').lon + 1e-9 || p.lon >= 90, `lon ${p.lon}`).toBe(true);
    // The same arc backwards is the same way round.
    const back = greatCircleArc(region('apac'), region('us-west'));
    expect(back).toHaveLength(2);
    expect(back[0]!.at(-1)!.x).toBe(MAP.width);
  });

  it('keeps an arc that crosses no antimeridian in one piece, bowed towards the pole', () => {
    const arc = greatCircleArc(region('us-east'), region('eu-west'));
    expect(arc).toHaveLength(1);
    const points = arc[0]!;
    for (const p of points) {
      expect(p.lon).toBeGreaterThanOrEqual(region('us-east').lon - 1e-9);
      expect(p.lon).toBeLessThanOrEqual(region('eu-west').lon + 1e-9);
    }
    // A great circle between two northern points runs north of the straight line on this map.
    const middle = points[Math.floor(points.length / 2)]!;
    expect(middle.lat).toBeGreaterThan((region('us-east').lat + region('eu-west').lat) / 2 + 3);
    expect(Math.max(...points.map((p) => p.lat))).toBeGreaterThan(region('eu-west').lat);
  });

  it('draws a point to itself as a point', () => {
    const arc = greatCircleArc(region('apac'), region('apac'), 4);
    expect(arc).toHaveLength(1);
    for (const p of arc[0]!) expect(p.lon).toBeCloseTo(region('apac').lon, 6);
  });
});
