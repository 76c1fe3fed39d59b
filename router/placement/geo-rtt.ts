import { greatCircleKm } from '../../shared/regions.ts';

/**
 * The geo model: RTT grows linearly with great-circle distance (GEO_SFU_GEO_BASE_RTT_MS,
 * GEO_SFU_GEO_MS_PER_KM). Used wherever nothing was measured: between a client and a region, and
 * between two regions whose agents have not probed each other yet.
 */
export interface GeoRttModel {
  baseRttMs: number;
  msPerKm: number;
}

export interface GeoPoint {
  lat: number;
  lon: number;
}

export function geoRttMs(a: GeoPoint, b: GeoPoint, model: GeoRttModel): number {
  return model.baseRttMs + model.msPerKm * greatCircleKm(a, b);
}
