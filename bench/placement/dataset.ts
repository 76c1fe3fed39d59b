import { readFileSync } from 'node:fs';
import { REGION_ID_PATTERN } from '../../shared/regions.ts';

/**
 * The latency data set the placement simulator runs on (format documented in README.md beside
 * this file). Only `regions`, `interRegionRttMs` and `cities` (name, lat, lon, rttMs) are
 * required; the rest is optional and has defaults.
 */
export interface LatencyCity {
  name: string;
  lat: number;
  lon: number;
  /** RTT from the city to every region, ms. */
  rttMs: Record<string, number>;
  /** Groups cities for regional rooms; default: the city's lowest-RTT region. */
  continent?: string;
  /** Relative sampling weight (e.g. population); default 1. */
  weight?: number;
  country?: string;
}

export interface LatencyDataset {
  description?: string;
  regions: string[];
  /** `interRegionRttMs[from][to]`, ms; each pair needs at least one direction (two are averaged, as the router does). */
  interRegionRttMs: Record<string, Record<string, number>>;
  /** Region locations, used only by the geoip-room baseline; default: the router's default catalog. */
  regionLocations?: Record<string, { lat: number; lon: number }>;
  cities: LatencyCity[];
  provenance?: unknown;
}

export class DatasetError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`latency data set ${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'DatasetError';
  }
}

/** RTTs above this are not plausible on Earth, and POST /allocate rejects them. */
const MAX_RTT_MS = 60_000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

function rttProblem(field: string, v: unknown): string | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_RTT_MS ? null : `${field} must be a number of ms in [0, ${MAX_RTT_MS}] (got ${show(v)})`;
}

/** Every problem with `value` as a data set, each naming its field (empty when valid). */
export function datasetProblems(value: unknown): string[] {
  if (!isObject(value)) return [`the file must hold a JSON object (got ${Array.isArray(value) ? 'an array' : show(value)})`];
  const problems: string[] = [];
  const regions: string[] = [];
  if (!Array.isArray(value.regions) || value.regions.length === 0) {
    problems.push(`regions must be a non-empty array of region ids (got ${show(value.regions)})`);
  } else {
    const idPattern = new RegExp(REGION_ID_PATTERN);
    for (const [i, r] of value.regions.entries()) {
      if (typeof r !== 'string' || !idPattern.test(r)) problems.push(`regions[${i}] must be a region id matching ${REGION_ID_PATTERN} (got ${show(r)})`);
      else if (regions.includes(r)) problems.push(`regions[${i}] "${r}" is duplicated`);
      else regions.push(r);
    }
  }
  const known = new Set(regions);

  const matrix = value.interRegionRttMs;
  if (!isObject(matrix)) {
    problems.push(`interRegionRttMs must be an object of objects, interRegionRttMs[from][to] in ms (got ${show(matrix)})`);
  } else {
    for (const [from, row] of Object.entries(matrix)) {
      if (!known.has(from)) problems.push(`interRegionRttMs.${from} is not one of regions (${regions.join(', ')})`);
      if (!isObject(row)) {
        problems.push(`interRegionRttMs.${from} must be an object of RTTs by region (got ${show(row)})`);
        continue;
      }
      for (const [to, rtt] of Object.entries(row)) {
        if (!known.has(to)) problems.push(`interRegionRttMs.${from}.${to}: "${to}" is not one of regions`);
        else if (to === from && rtt !== 0) problems.push(`interRegionRttMs.${from}.${to} must be 0 or absent (a region to itself)`);
        const p = rttProblem(`interRegionRttMs.${from}.${to}`, rtt);
        if (p) problems.push(p);
      }
    }
    for (const [i, a] of regions.entries()) {
      for (const b of regions.slice(i + 1)) {
        const there = (matrix[a] as Record<string, unknown> | undefined)?.[b];
        const back = (matrix[b] as Record<string, unknown> | undefined)?.[a];
        if (there === undefined && back === undefined) problems.push(`interRegionRttMs.${a}.${b} is missing (and so is interRegionRttMs.${b}.${a}): every region pair needs an RTT`);
      }
    }
  }

  if (value.regionLocations !== undefined) {
    if (!isObject(value.regionLocations)) problems.push(`regionLocations must be an object of { lat, lon } by region (got ${show(value.regionLocations)})`);
    else {
      for (const [r, loc] of Object.entries(value.regionLocations)) {
        if (!known.has(r)) problems.push(`regionLocations.${r} is not one of regions`);
        problems.push(...locationProblems(`regionLocations.${r}`, loc));
      }
    }
  }

  if (!Array.isArray(value.cities) || value.cities.length === 0) {
    problems.push(`cities must be a non-empty array of { name, lat, lon, rttMs } (got ${show(value.cities)})`);
  } else {
    const names = new Set<string>();
    for (const [i, city] of value.cities.entries()) {
      const at = `cities[${i}]`;
      if (!isObject(city)) {
        problems.push(`${at} must be an object { name, lat, lon, rttMs } (got ${show(city)})`);
        continue;
      }
      if (typeof city.name !== 'string' || city.name.length === 0) problems.push(`${at}.name must be a non-empty string (got ${show(city.name)})`);
      else if (names.has(city.name)) problems.push(`${at}.name "${city.name}" is duplicated`);
      else names.add(city.name);
      problems.push(...locationProblems(at, city));
      if (city.continent !== undefined && (typeof city.continent !== 'string' || city.continent.length === 0)) problems.push(`${at}.continent must be a non-empty string when present (got ${show(city.continent)})`);
      if (city.weight !== undefined && !(typeof city.weight === 'number' && Number.isFinite(city.weight) && city.weight > 0)) problems.push(`${at}.weight must be a positive number when present (got ${show(city.weight)})`);
      if (!isObject(city.rttMs)) {
        problems.push(`${at}.rttMs must be an object of RTTs by region (got ${show(city.rttMs)})`);
        continue;
      }
      for (const r of regions) {
        const p = rttProblem(`${at}.rttMs.${r}`, city.rttMs[r]);
        if (p) problems.push(p);
      }
      for (const r of Object.keys(city.rttMs)) if (!known.has(r)) problems.push(`${at}.rttMs.${r}: "${r}" is not one of regions`);
    }
  }
  return problems;
}

function locationProblems(at: string, v: unknown): string[] {
  if (!isObject(v)) return [`${at} must be an object with lat and lon (got ${show(v)})`];
  const problems: string[] = [];
  if (typeof v.lat !== 'number' || !(v.lat >= -90 && v.lat <= 90)) problems.push(`${at}.lat must be a number in [-90, 90] (got ${show(v.lat)})`);
  if (typeof v.lon !== 'number' || !(v.lon >= -180 && v.lon <= 180)) problems.push(`${at}.lon must be a number in [-180, 180] (got ${show(v.lon)})`);
  return problems;
}

/** `value` as a data set, or a DatasetError listing every problem. */
export function validateDataset(value: unknown, source = '(inline)'): LatencyDataset {
  const problems = datasetProblems(value);
  if (problems.length > 0) throw new DatasetError(source, problems);
  return value as LatencyDataset;
}

export function loadDataset(path: string): LatencyDataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DatasetError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DatasetError(path, [`not JSON: ${(err as Error).message}`]);
  }
  return validateDataset(json, path);
}

export const DEFAULT_DATASET_URL = new URL('../data/latency.json', import.meta.url);

/** Inter-region RTT of an unordered pair as the router builds it: the mean of both directions when both are given. */
export function datasetPairRtt(ds: LatencyDataset, a: string, b: string): number {
  if (a === b) return 0;
  const there = ds.interRegionRttMs[a]?.[b];
  const back = ds.interRegionRttMs[b]?.[a];
  if (there !== undefined && back !== undefined) return (there + back) / 2;
  const one = there ?? back;
  if (one === undefined) throw new RangeError(`no inter-region RTT for ${a} ↔ ${b}`);
  return one;
}
