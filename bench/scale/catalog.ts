/**
 * The scale benchmark's region catalog (GEO_SFU_REGIONS): ten regions at real cloud locations, and
 * the RTT between two places by the router's own geo model (GEO_SFU_GEO_BASE_RTT_MS +
 * GEO_SFU_GEO_MS_PER_KM × great-circle km, their defaults).
 */
export interface ScaleRegion {
  id: string;
  displayName: string;
  lat: number;
  lon: number;
}

export const SCALE_REGIONS: readonly ScaleRegion[] = [
  { id: 'us-west', displayName: 'Oregon', lat: 45.6, lon: -121.2 },
  { id: 'us-east', displayName: 'Virginia', lat: 38.9, lon: -77.4 },
  { id: 'sa-east', displayName: 'São Paulo', lat: -23.5, lon: -46.6 },
  { id: 'eu-west', displayName: 'Ireland', lat: 53.3, lon: -6.3 },
  { id: 'eu-central', displayName: 'Frankfurt', lat: 50.1, lon: 8.7 },
  { id: 'me-central', displayName: 'UAE', lat: 25.2, lon: 55.3 },
  { id: 'af-south', displayName: 'Cape Town', lat: -33.9, lon: 18.4 },
  { id: 'ap-south', displayName: 'Mumbai', lat: 19.1, lon: 72.9 },
  { id: 'ap-northeast', displayName: 'Tokyo', lat: 35.7, lon: 139.7 },
  { id: 'ap-southeast', displayName: 'Sydney', lat: -33.9, lon: 151.2 },
];

const BASE_RTT_MS = 5;
const MS_PER_KM = 0.0125;

function km(a: ScaleRegion, b: ScaleRegion): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(h));
}

/** RTT between two regions of `regions`, ms. */
export function regionRtt(regions: readonly ScaleRegion[]): (from: string, to: string) => number {
  const byId = new Map(regions.map((r) => [r.id, r]));
  return (from, to) => (from === to ? 1 : BASE_RTT_MS + MS_PER_KM * km(byId.get(from)!, byId.get(to)!));
}

/** A client in each region: its RTT to every region (8 ms of access network on top). */
export function clientProfiles(regions: readonly ScaleRegion[]): Array<Record<string, number>> {
  const rtt = regionRtt(regions);
  return regions.map((home) => Object.fromEntries(regions.map((r) => [r.id, Math.round(8 + rtt(home.id, r.id))])));
}
