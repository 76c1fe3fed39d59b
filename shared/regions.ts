/**
 * Region catalog: the SFU regions a deployment knows, with a display name and a representative
 * location (used for geo distance estimates when a client measured nothing). The default is the
 * four regions of the scaling guide; a deployment replaces it with GEO_SFU_REGIONS (JSON).
 * Nothing else in the code base may assume how many regions exist or what they are called.
 */
export interface RegionInfo {
  /** Stable id used everywhere (allocation responses, metrics labels, Redis keys). */
  id: string;
  displayName: string;
  lat: number;
  lon: number;
}

export const DEFAULT_REGIONS: readonly RegionInfo[] = Object.freeze([
  { id: 'us-west', displayName: 'US West (Oregon)', lat: 45.6, lon: -121.2 },
  { id: 'us-east', displayName: 'US East (Virginia)', lat: 38.9, lon: -77.4 },
  { id: 'eu-west', displayName: 'EU West (Ireland)', lat: 53.3, lon: -6.3 },
  { id: 'apac', displayName: 'Asia Pacific (Singapore)', lat: 1.35, lon: 103.8 },
]);

export const REGION_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,31}$';

/** Validates a catalog; returns the problems found (empty when valid). */
export function catalogProblems(regions: readonly RegionInfo[]): string[] {
  const problems: string[] = [];
  if (regions.length === 0) problems.push('the region catalog is empty');
  const seen = new Set<string>();
  const idPattern = new RegExp(REGION_ID_PATTERN);
  for (const [i, r] of regions.entries()) {
    if (typeof r.id !== 'string' || !idPattern.test(r.id)) problems.push(`regions[${i}].id must match ${REGION_ID_PATTERN}`);
    if (seen.has(r.id)) problems.push(`regions[${i}].id "${r.id}" is duplicated`);
    seen.add(r.id);
    if (typeof r.displayName !== 'string' || r.displayName.length === 0) problems.push(`regions[${i}].displayName must be a non-empty string`);
    if (typeof r.lat !== 'number' || !(r.lat >= -90 && r.lat <= 90)) problems.push(`regions[${i}].lat must be a number in [-90, 90]`);
    if (typeof r.lon !== 'number' || !(r.lon >= -180 && r.lon <= 180)) problems.push(`regions[${i}].lon must be a number in [-180, 180]`);
  }
  return problems;
}

const EARTH_RADIUS_KM = 6371;

/** Great-circle distance in km (haversine). */
export function greatCircleKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}
