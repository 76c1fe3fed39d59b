import type { RegionInfo } from '../../shared/regions.ts';
import { geoRttMs, type GeoPoint, type GeoRttModel } from './geo-rtt.ts';
import type { ClientRtt } from './types.ts';
import { own } from '../../shared/own.ts';

export interface ClientRttModel extends GeoRttModel {
  /** RTT assumed for a region when the client measured nothing there and has no location. */
  defaultRttMs: number;
}

export interface ClientRttInput {
  regions: readonly RegionInfo[];
  /** RTTs the client measured, ms, by region id. */
  measured?: Readonly<Record<string, number>>;
  /** Where the client's IP locates it; null or absent when it could not be located. */
  location?: GeoPoint | null;
  model: ClientRttModel;
}

/**
 * The client's RTT to every catalog region. A measurement beats any estimate, so measured figures
 * are taken as they are; every other region is estimated from the client's location with the geo
 * model, or given the default when the client cannot be located. Measurements for regions outside
 * the catalog are ignored: rejecting them is request validation, not placement.
 */
export function estimateClientRtt(input: ClientRttInput): ClientRtt {
  const { regions, measured = {}, location = null, model } = input;
  const byRegion: Record<string, number> = {};
  const unmeasured: string[] = [];
  for (const region of regions) {
    const measuredMs = own(measured, region.id);
    if (measuredMs !== undefined) {
      byRegion[region.id] = measuredMs;
    } else {
      byRegion[region.id] = location === null ? model.defaultRttMs : geoRttMs(location, region, model);
      unmeasured.push(region.id);
    }
  }
  if (unmeasured.length < regions.length) return { byRegion, source: 'client', estimatedRegions: unmeasured };
  // Nothing measured: the source already says every figure is an estimate, so none is listed.
  return { byRegion, source: location === null ? 'default' : 'geoip', estimatedRegions: [] };
}
