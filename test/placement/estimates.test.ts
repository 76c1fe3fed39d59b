import { describe, expect, it } from 'vitest';
import type { RegionInfo } from '../../shared/regions.ts';
import { estimateClientRtt } from '../../router/placement/client-rtt.ts';
import { buildInterRegionRtt } from '../../router/placement/inter-region.ts';
import { nodeStress } from '../../router/placement/stress.ts';
import { GEO_MODEL } from './fixtures.ts';

/*
 * Regions on the equator so that great-circle distances are easy by hand:
 * 90° of longitude = π/2 × 6371 km = 10 007.54 km → geo RTT 5 + 0.0125 × 10 007.54 = 130.094 ms;
 * 180° = 20 015.09 km → 5 + 250.189 = 255.189 ms.
 */
const EQUATOR: RegionInfo[] = [
  { id: 'zero', displayName: 'Zero', lat: 0, lon: 0 },
  { id: 'east', displayName: 'East', lat: 0, lon: 90 },
  { id: 'far', displayName: 'Far', lat: 0, lon: 180 },
];

describe('estimateClientRtt', () => {
  it('takes measurements as they are when the client measured every region', () => {
    const rtt = estimateClientRtt({ regions: EQUATOR, measured: { zero: 0, east: 40, far: 90 }, location: { lat: 0, lon: 0 }, model: GEO_MODEL });
    expect(rtt).toEqual({ byRegion: { zero: 0, east: 40, far: 90 }, source: 'client', estimatedRegions: [] });
  });

  it('estimates unmeasured regions with the geo model and lists them', () => {
    const rtt = estimateClientRtt({ regions: EQUATOR, measured: { zero: 12 }, location: { lat: 0, lon: 0 }, model: GEO_MODEL });
    expect(rtt.source).toBe('client');
    expect(rtt.estimatedRegions).toEqual(['east', 'far']);
    expect(rtt.byRegion.zero).toBe(12);
    expect(rtt.byRegion.east).toBeCloseTo(130.094, 3);
    expect(rtt.byRegion.far).toBeCloseTo(255.189, 3);
  });

  it('estimates unmeasured regions with the default when the client has no location', () => {
    const rtt = estimateClientRtt({ regions: EQUATOR, measured: { east: 30 }, location: null, model: GEO_MODEL });
    expect(rtt).toEqual({ byRegion: { zero: 100, east: 30, far: 100 }, source: 'client', estimatedRegions: ['zero', 'far'] });
  });

  it('ignores measurements of regions outside the catalog', () => {
    const rtt = estimateClientRtt({ regions: EQUATOR, measured: { mars: 1 }, model: GEO_MODEL });
    expect(rtt).toEqual({ byRegion: { zero: 100, east: 100, far: 100 }, source: 'default', estimatedRegions: [] });
  });

  it('uses the geo model for every region from a location alone', () => {
    const rtt = estimateClientRtt({ regions: EQUATOR, location: { lat: 0, lon: 90 }, model: GEO_MODEL });
    expect(rtt.source).toBe('geoip');
    expect(rtt.estimatedRegions).toEqual([]);
    expect(rtt.byRegion.east).toBe(5);
    expect(rtt.byRegion.zero).toBeCloseTo(130.094, 3);
    expect(rtt.byRegion.far).toBeCloseTo(130.094, 3);
  });

  it('falls back to the default for every region with neither', () => {
    expect(estimateClientRtt({ regions: EQUATOR, model: GEO_MODEL })).toEqual({
      byRegion: { zero: 100, east: 100, far: 100 },
      source: 'default',
      estimatedRegions: [],
    });
  });
});

describe('buildInterRegionRtt', () => {
  it('is 0 on the diagonal', () => {
    const rtt = buildInterRegionRtt({ regions: EQUATOR, model: GEO_MODEL });
    for (const r of EQUATOR) expect(rtt(r.id, r.id)).toBe(0);
  });

  it('uses a one-direction measurement both ways and averages two directions', () => {
    const rtt = buildInterRegionRtt({
      regions: EQUATOR,
      measured: { zero: { east: 70, far: null }, east: { zero: 74 }, far: { east: 50 } },
      model: GEO_MODEL,
    });
    expect(rtt('zero', 'east')).toBe(72); // (70 + 74) / 2
    expect(rtt('east', 'zero')).toBe(72);
    expect(rtt('far', 'east')).toBe(50);
    expect(rtt('east', 'far')).toBe(50);
  });

  it('falls back to the geo model where nothing (or only null) was measured', () => {
    const rtt = buildInterRegionRtt({ regions: EQUATOR, measured: { zero: { far: null } }, model: GEO_MODEL });
    expect(rtt('zero', 'east')).toBeCloseTo(130.094, 3);
    expect(rtt('zero', 'far')).toBeCloseTo(255.189, 3);
  });

  it('refuses regions outside the catalog', () => {
    const rtt = buildInterRegionRtt({ regions: EQUATOR, model: GEO_MODEL });
    expect(() => rtt('zero', 'mars')).toThrow(RangeError);
  });
});

describe('nodeStress', () => {
  const limits = { maxCpu: 0.7, maxMemory: 0.8, maxParticipants: 100 };

  it('is the highest of the three usages', () => {
    expect(nodeStress({ cpu: 0.35, memory: 0.2, participants: 10 }, limits)).toBeCloseTo(0.5, 12); // cpu 0.35/0.7
    expect(nodeStress({ cpu: 0.07, memory: 0.6, participants: 10 }, limits)).toBeCloseTo(0.75, 12); // memory 0.6/0.8
    expect(nodeStress({ cpu: 0.07, memory: 0.08, participants: 120 }, limits)).toBe(1.2); // participants 120/100
  });

  it('is infinite when a limit is 0, so the node takes nobody', () => {
    expect(nodeStress({ cpu: 0, memory: 0, participants: 0 }, { ...limits, maxParticipants: 0 })).toBe(Number.POSITIVE_INFINITY);
  });
});
