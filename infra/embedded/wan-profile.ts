import { readFileSync } from 'node:fs';

/**
 * A WAN profile makes the embedded regions behave as if far apart:
 * `{ "interRegionRttMs": { "us-west": { "us-east": 68, ... }, ... }, "clientRttMs"?: { "us-west": 20, ... } }`.
 * Pairs may be given in one direction only; the matrix is symmetric.
 */
export interface WanProfile {
  interRegionRttMs: Record<string, Record<string, number>>;
  clientRttMs?: Record<string, number>;
}

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

export function wanProfileProblems(value: unknown, regionIds: readonly string[]): string[] {
  const problems: string[] = [];
  const known = new Set(regionIds);
  const isMs = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 10_000;
  const profile = value as Partial<WanProfile> | null;
  if (typeof profile !== 'object' || profile === null) return ['must be a JSON object'];
  if (typeof profile.interRegionRttMs !== 'object' || profile.interRegionRttMs === null) problems.push('interRegionRttMs must be an object');
  else {
    for (const [from, row] of Object.entries(profile.interRegionRttMs)) {
      if (!known.has(from)) problems.push(`interRegionRttMs.${from}: not a catalog region`);
      for (const [to, ms] of Object.entries(row ?? {})) {
        if (!known.has(to)) problems.push(`interRegionRttMs.${from}.${to}: not a catalog region`);
        if (!isMs(ms)) problems.push(`interRegionRttMs.${from}.${to}: must be a number of ms in [0, 10000]`);
      }
    }
    for (const a of regionIds) for (const b of regionIds) {
      if (a < b && interRegionRtt(profile as WanProfile, a, b) === undefined) problems.push(`interRegionRttMs: no RTT between ${a} and ${b}`);
    }
  }
  if (profile.clientRttMs !== undefined) {
    for (const [region, ms] of Object.entries(profile.clientRttMs)) {
      if (!known.has(region)) problems.push(`clientRttMs.${region}: not a catalog region`);
      if (!isMs(ms)) problems.push(`clientRttMs.${region}: must be a number of ms in [0, 10000]`);
    }
  }
  return problems;
}

/** RTT between two regions in the profile, whichever direction it was written in. */
export function interRegionRtt(profile: WanProfile, a: string, b: string): number | undefined {
  if (a === b) return 0;
  return profile.interRegionRttMs[a]?.[b] ?? profile.interRegionRttMs[b]?.[a];
}
