import { readFileSync } from 'node:fs';

/** Values per pair of regions; a pair may be given in one direction only (the matrix is symmetric). */
export type RegionMatrix = Record<string, Record<string, number>>;

/**
 * A WAN profile makes the embedded regions behave as if far apart:
 * `{ "interRegionRttMs": { "us-west": { "us-east": 68, ... }, ... }, "clientRttMs"?: { "us-west": 20, ... } }`.
 * Pairs may be given in one direction only; the matrix is symmetric.
 *
 * The inter-region links may also be impaired, as long internet paths are: `interRegionLossPct`
 * (packets lost, % per direction) and `interRegionJitterMs` (each packet's one-way delay varies
 * uniformly ± that many ms, so packets may arrive reordered), each one number for every link or a
 * matrix like `interRegionRttMs` (pairs not listed: 0). The launcher's UDP relays apply them to the
 * cascade's media; the agents' HTTP between regions (TCP) keeps the plain delay.
 *
 * The clients' links to a region may be impaired too: `clientLossPct` (% lost per direction) and
 * `clientJitterMs` (± ms, uniform, around the one-way delay clientRttMs/2), each one number for
 * every region or an object per region like `clientRttMs`. For a region where either is given
 * (even 0), the launcher puts a UDP relay in front of each of its agents' WebRTC ports
 * (client-relays.ts): clients' media then crosses half the region's clientRttMs each way, with
 * that loss and jitter. Without them, client media goes straight to the agents (only signaling
 * and probes are delayed, by the TCP proxies). Region keys must be catalog regions: names such as
 * `__proto__` or `constructor` are refused like any other unknown region.
 */
export interface WanProfile {
  interRegionRttMs: RegionMatrix;
  interRegionLossPct?: number | RegionMatrix;
  interRegionJitterMs?: number | RegionMatrix;
  clientRttMs?: Record<string, number>;
  clientLossPct?: number | Record<string, number>;
  clientJitterMs?: number | Record<string, number>;
}

/** One direction of the emulated link between two regions. */
export interface InterRegionLink {
  oneWayDelayMs: number;
  jitterMs: number;
  lossPct: number;
}

/** One direction of the emulated link between a client and a region's agents (the same both ways). */
export type ClientLink = InterRegionLink;

export function readWanProfile(path: string, regionIds: readonly string[]): WanProfile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`GEO_SFU_WAN_PROFILE: cannot read ${path}: ${(err as Error).message}`);
  }
  const problems = wanProfileProblems(parsed, regionIds);
  if (problems.length > 0) throw new Error(`GEO_SFU_WAN_PROFILE ${path}:\n  - ${problems.join('\n  - ')}`);
  return parsed as WanProfile;
}

const isMs = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 10_000;
const isPct = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 100;

/** Problems of a region matrix field (`what` describes a valid value). */
function matrixProblems(field: string, value: unknown, known: ReadonlySet<string>, valid: (x: unknown) => boolean, what: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${field} must be an object`];
  const problems: string[] = [];
  for (const [from, row] of Object.entries(value)) {
    if (!known.has(from)) problems.push(`${field}.${from}: not a catalog region`);
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      problems.push(`${field}.${from} must be an object`);
      continue;
    }
    for (const [to, x] of Object.entries(row as Record<string, unknown>)) {
      if (!known.has(to)) problems.push(`${field}.${from}.${to}: not a catalog region`);
      if (!valid(x)) problems.push(`${field}.${from}.${to}: must be ${what}`);
    }
  }
  return problems;
}

export function wanProfileProblems(value: unknown, regionIds: readonly string[]): string[] {
  const known = new Set(regionIds);
  const profile = value as Partial<WanProfile> | null;
  if (typeof profile !== 'object' || profile === null || Array.isArray(profile)) return ['must be a JSON object'];
  const problems = matrixProblems('interRegionRttMs', profile.interRegionRttMs, known, isMs, 'a number of ms in [0, 10000]');
  if (problems.length === 0) {
    for (const a of regionIds) for (const b of regionIds) {
      if (a < b && interRegionRtt(profile as WanProfile, a, b) === undefined) problems.push(`interRegionRttMs: no RTT between ${a} and ${b}`);
    }
  }
  const impairments: Array<[keyof WanProfile & string, (x: unknown) => boolean, string]> = [
    ['interRegionLossPct', isPct, 'a percentage in [0, 100]'],
    ['interRegionJitterMs', isMs, 'a number of ms in [0, 10000]'],
  ];
  for (const [field, valid, what] of impairments) {
    const v = profile[field];
    if (v === undefined || valid(v)) continue;
    if (typeof v === 'number') problems.push(`${field}: must be ${what}, or a matrix of them like interRegionRttMs`);
    else problems.push(...matrixProblems(field, v, known, valid, what));
  }
  if (profile.clientRttMs !== undefined) problems.push(...perRegionProblems('clientRttMs', profile.clientRttMs, known, isMs, 'a number of ms in [0, 10000]'));
  const clientImpairments: Array<[keyof WanProfile & string, (x: unknown) => boolean, string]> = [
    ['clientLossPct', isPct, 'a percentage in [0, 100]'],
    ['clientJitterMs', isMs, 'a number of ms in [0, 10000]'],
  ];
  for (const [field, valid, what] of clientImpairments) {
    const v = profile[field];
    if (v === undefined || valid(v)) continue;
    if (typeof v === 'number') problems.push(`${field}: must be ${what}, or an object of them per region like clientRttMs`);
    else problems.push(...perRegionProblems(field, v, known, valid, what));
  }
  return problems;
}

/** Problems of a per-region object field (`what` describes a valid value). */
function perRegionProblems(field: string, value: unknown, known: ReadonlySet<string>, valid: (x: unknown) => boolean, what: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${field} must be an object`];
  const problems: string[] = [];
  for (const [region, x] of Object.entries(value)) {
    if (!known.has(region)) problems.push(`${field}.${region}: not a catalog region`);
    if (!valid(x)) problems.push(`${field}.${region}: must be ${what}`);
  }
  return problems;
}

/** A region's value in a per-region object (own keys only: `constructor` is not inherited). */
function regionValue(values: Record<string, number> | undefined, region: string): number | undefined {
  return values !== undefined && Object.hasOwn(values, region) ? values[region] : undefined;
}

/** The clients' RTT to a region in the profile, if it gives one. */
export function clientRtt(profile: WanProfile, region: string): number | undefined {
  return regionValue(profile.clientRttMs, region);
}

/**
 * The emulated link between clients and a region, when the profile impairs it (`clientLossPct`
 * or `clientJitterMs` given for the region, even as 0): half the region's clientRttMs (0 when
 * not given) each way, with that jitter and loss. Null when client media is not emulated there.
 */
export function clientLink(profile: WanProfile, region: string): ClientLink | null {
  const value = (v: number | Record<string, number> | undefined) => (typeof v === 'number' ? v : regionValue(v, region));
  const lossPct = value(profile.clientLossPct);
  const jitterMs = value(profile.clientJitterMs);
  if (lossPct === undefined && jitterMs === undefined) return null;
  return { oneWayDelayMs: (clientRtt(profile, region) ?? 0) / 2, jitterMs: jitterMs ?? 0, lossPct: lossPct ?? 0 };
}

/** A pair's value in a symmetric matrix, whichever direction it was written in. */
function pairValue(matrix: RegionMatrix, a: string, b: string): number | undefined {
  return (Object.hasOwn(matrix, a) ? matrix[a]![b] : undefined) ?? (Object.hasOwn(matrix, b) ? matrix[b]![a] : undefined);
}

/** RTT between two regions in the profile, whichever direction it was written in. */
export function interRegionRtt(profile: WanProfile, a: string, b: string): number | undefined {
  if (a === b) return 0;
  return pairValue(profile.interRegionRttMs, a, b);
}

/** The emulated link between two different regions (each direction alike); within a region nothing is emulated. */
export function interRegionLink(profile: WanProfile, a: string, b: string): InterRegionLink {
  if (a === b) return { oneWayDelayMs: 0, jitterMs: 0, lossPct: 0 };
  const impairment = (v: number | RegionMatrix | undefined) => (v === undefined ? 0 : typeof v === 'number' ? v : (pairValue(v, a, b) ?? 0));
  return { oneWayDelayMs: (interRegionRtt(profile, a, b) ?? 0) / 2, jitterMs: impairment(profile.interRegionJitterMs), lossPct: impairment(profile.interRegionLossPct) };
}
