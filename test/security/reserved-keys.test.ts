import { expect, it } from 'vitest';
import { buildInterRegionRtt } from '../../router/placement/inter-region.ts';
import { estimateClientRtt } from '../../router/placement/client-rtt.ts';
import { DEFAULT_REGIONS, type RegionInfo } from '../../shared/regions.ts';

/**
 * Records keyed by names someone else chose, read where a key may be missing: a region the
 * catalog's pattern allows (`constructor`) with nothing measured yet must read as "not measured",
 * never as Object.prototype's `constructor` function (which made RTTs NaN).
 */
const catalog: RegionInfo[] = [DEFAULT_REGIONS[0]!, { id: 'constructor', displayName: 'Named like a prototype key', lat: 48.8, lon: 2.3 }];
const model = { baseRttMs: 5, msPerKm: 0.02 };

it('inter-region RTTs: a region named constructor without measurements gets the geo estimate', () => {
  const rtt = buildInterRegionRtt({ regions: catalog, measured: { [catalog[0]!.id]: {} }, model });
  const ms = rtt(catalog[0]!.id, 'constructor');
  console.log(`${catalog[0]!.id} → constructor: ${ms.toFixed(1)} ms (geo model)`);
  expect(Number.isFinite(ms)).toBe(true);
  expect(ms).toBe(rtt('constructor', catalog[0]!.id));
});

it('client RTTs: a client that measured nothing for the region named constructor gets an estimate for it', () => {
  const client = estimateClientRtt({ regions: catalog, measured: { [catalog[0]!.id]: 20 }, location: null, model: { ...model, defaultRttMs: 150 } });
  expect(client.byRegion[catalog[0]!.id]).toBe(20);
  expect(Object.hasOwn(client.byRegion, 'constructor') && client.byRegion.constructor).toBe(150);
  expect(client.estimatedRegions).toEqual(['constructor']);
});
