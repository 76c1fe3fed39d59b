import { isIP } from 'node:net';

/**
 * IP → approximate location, from geoip-lite's bundled database. Private, loopback, link-local
 * and unknown addresses give null, so placement falls back to defaults cleanly. The database
 * (~190 MB in memory, ~1 s to load) is loaded once, on first use or by `preloadGeoIp()` at start.
 */
export interface GeoLocation {
  lat: number;
  lon: number;
  country: string;
}

export type GeoLookup = (ip: string) => GeoLocation | null;

type GeoIpModule = { lookup(ip: string): { ll: [number, number]; country: string } | null };
let geoip: GeoIpModule | null = null;

export async function preloadGeoIp(): Promise<GeoLookup> {
  geoip ??= ((await import('geoip-lite')) as unknown as { default: GeoIpModule }).default;
  return lookupIp;
}

const PRIVATE_V4 = [/^10\./, /^127\./, /^169\.254\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./, /^0\./];
const PRIVATE_V6 = [/^::1$/i, /^fe[89ab]/i, /^f[cd]/i, /^::$/];

export function isPrivateIp(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) return PRIVATE_V4.some((r) => r.test(ip));
  if (v === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped) return isPrivateIp(mapped[1]!);
    return PRIVATE_V6.some((r) => r.test(ip));
  }
  return true;
}

export function lookupIp(ip: string): GeoLocation | null {
  if (geoip === null) throw new Error('geoip database not loaded: call preloadGeoIp() at start');
  if (isPrivateIp(ip)) return null;
  const hit = geoip.lookup(ip);
  if (!hit || !Array.isArray(hit.ll) || (hit.ll[0] === 0 && hit.ll[1] === 0)) return null;
  return { lat: hit.ll[0], lon: hit.ll[1], country: hit.country };
}
