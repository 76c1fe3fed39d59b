import type { RegionInfo } from '../../shared/regions.ts';
import { geoRttMs, type GeoRttModel } from './geo-rtt.ts';
import type { InterRegionRtt } from './types.ts';
import { own } from '../../shared/own.ts';

/** Inter-region RTTs measured by the agents, ms: `measured[from][to]`, null while unanswered. */
export type MeasuredInterRegionRtt = Readonly<Record<string, Readonly<Record<string, number | null>>>>;

export interface InterRegionRttInput {
  regions: readonly RegionInfo[];
  measured?: MeasuredInterRegionRtt;
  model: GeoRttModel;
}

/**
 * The full, symmetric inter-region RTT matrix over the catalog, computed once. A pair measured in
 * both directions gets the average (each side's probes see the same path, so the mean halves the
 * noise); a pair measured in one direction only uses that figure both ways; an unmeasured pair
 * falls back to the geo model between the regions' locations.
 */
export function buildInterRegionRtt(input: InterRegionRttInput): InterRegionRtt {
  const { regions, measured = {}, model } = input;
  const matrix = new Map<string, Map<string, number>>();
  for (const from of regions) {
    const row = new Map<string, number>();
    for (const to of regions) {
      row.set(to.id, from.id === to.id ? 0 : pairRttMs(measured, from, to, model));
    }
    matrix.set(from.id, row);
  }
  return (from, to) => {
    const rttMs = matrix.get(from)?.get(to);
    if (rttMs === undefined) throw new RangeError(`no inter-region RTT for ${from} → ${to}: not in the region catalog`);
    return rttMs;
  };
}

function pairRttMs(measured: MeasuredInterRegionRtt, a: RegionInfo, b: RegionInfo, model: GeoRttModel): number {
  const measuredRtt = (from: string, to: string) => {
    const row = own(measured, from);
    return (row && own(row, to)) ?? null;
  };
  const there = measuredRtt(a.id, b.id);
  const back = measuredRtt(b.id, a.id);
  if (there !== null && back !== null) return (there + back) / 2;
  return there ?? back ?? geoRttMs(a, b, model);
}
