import { median } from '../../shared/rtt.ts';

/**
 * The scaling manager's decisions, as a pure function of what it observed and when (the scaling
 * guide's ScalingManager done properly): per region, `scale_out` when its nodes' mean stress stays
 * at or above the scale-out level for a window, or when newcomers had to overflow to other
 * regions; `scale_in` when a region with several nodes stays well below it; `add_region` advice
 * when clients placed in a region keep a median RTT above the limit, which more nodes would not
 * fix. Hysteresis (separate levels, conditions that must hold for a window) and a cool-down per
 * region keep it from flapping.
 */
export type ScalingAction = 'scale_out' | 'scale_in' | 'add_region';

export interface ScalingSettings {
  windowMs: number;
  scaleOutStress: number;
  scaleInStress: number;
  cooldownMs: number;
  addRegionRttMs: number;
  /** Client RTT samples needed in the window before the median means anything. */
  minRttSamples: number;
}

export interface RegionObservation {
  region: string;
  /** Nodes able to take participants (not dead, draining or cordoned). */
  nodes: number;
  /** Mean stress of those nodes; null when there are none. */
  meanStress: number | null;
  /** Newcomers that could not be placed in this region (their room's home) since the last tick. */
  overflows: number;
  /** RTTs (ms) of clients placed in this region since the last tick, to that region. */
  clientRttMs: readonly number[];
}

export interface ScalingDecision {
  region: string;
  action: ScalingAction;
  reason: string;
  atMs: number;
  meanStress: number | null;
  nodes: number;
  medianClientRttMs: number | null;
}

interface RegionScalingState {
  highSinceMs: number | null;
  lowSinceMs: number | null;
  farSinceMs: number | null;
  lastDecisionMs: number | null;
  overflows: Array<{ atMs: number; count: number }>;
  rtts: Array<{ atMs: number; rttMs: number }>;
}

export type ScalingState = ReadonlyMap<string, RegionScalingState>;

export interface RegionScalingView {
  region: string;
  nodes: number;
  meanStress: number | null;
  overflowsInWindow: number;
  medianClientRttMs: number | null;
  /** Client RTTs in the window, and how many the median needs (null below that). */
  clientRttSamples: number;
  clientRttMinSamples: number;
  highForMs: number;
  lowForMs: number;
  farForMs: number;
  coolingDownForMs: number;
}

const fresh = (): RegionScalingState => ({ highSinceMs: null, lowSinceMs: null, farSinceMs: null, lastDecisionMs: null, overflows: [], rtts: [] });

export function evaluateScaling(
  state: ScalingState,
  observations: readonly RegionObservation[],
  nowMs: number,
  s: ScalingSettings,
): { state: ScalingState; decisions: ScalingDecision[]; views: RegionScalingView[] } {
  const next = new Map<string, RegionScalingState>();
  const decisions: ScalingDecision[] = [];
  const views: RegionScalingView[] = [];
  for (const o of observations) {
    const prev = state.get(o.region) ?? fresh();
    const since = nowMs - s.windowMs;
    const r: RegionScalingState = {
      ...prev,
      overflows: [...prev.overflows.filter((x) => x.atMs > since), ...(o.overflows > 0 ? [{ atMs: nowMs, count: o.overflows }] : [])],
      rtts: [...prev.rtts.filter((x) => x.atMs > since), ...o.clientRttMs.map((rttMs) => ({ atMs: nowMs, rttMs }))],
    };
    const high = o.meanStress !== null && o.meanStress >= s.scaleOutStress;
    const low = o.meanStress !== null && o.meanStress < s.scaleInStress && o.nodes > 1;
    const rtts = r.rtts.map((x) => x.rttMs).sort((a, b) => a - b);
    const medianRtt = rtts.length >= s.minRttSamples ? median(rtts) : null;
    const far = medianRtt !== null && medianRtt > s.addRegionRttMs;
    r.highSinceMs = high ? (r.highSinceMs ?? nowMs) : null;
    r.lowSinceMs = low ? (r.lowSinceMs ?? nowMs) : null;
    r.farSinceMs = far ? (r.farSinceMs ?? nowMs) : null;
    const overflowsInWindow = r.overflows.reduce((n, x) => n + x.count, 0);
    const cooling = r.lastDecisionMs !== null && nowMs - r.lastDecisionMs < s.cooldownMs;
    const held = (sinceMs: number | null) => sinceMs !== null && nowMs - sinceMs >= s.windowMs;

    let decision: Pick<ScalingDecision, 'action' | 'reason'> | null = null;
    if (overflowsInWindow > 0) {
      decision = { action: 'scale_out', reason: `${overflowsInWindow} newcomer(s) overflowed to other regions in the last ${s.windowMs / 1000} s` };
    } else if (held(r.highSinceMs)) {
      decision = { action: 'scale_out', reason: `mean node stress ${o.meanStress!.toFixed(2)} ≥ ${s.scaleOutStress} for ${s.windowMs / 1000} s` };
    } else if (held(r.lowSinceMs)) {
      decision = { action: 'scale_in', reason: `mean node stress ${o.meanStress!.toFixed(2)} < ${s.scaleInStress} on ${o.nodes} nodes for ${s.windowMs / 1000} s` };
    } else if (held(r.farSinceMs)) {
      decision = { action: 'add_region', reason: `clients placed here have a median RTT of ${medianRtt!.toFixed(0)} ms > ${s.addRegionRttMs} ms; more nodes would not lower it` };
    }
    if (decision && !cooling) {
      decisions.push({ region: o.region, ...decision, atMs: nowMs, meanStress: o.meanStress, nodes: o.nodes, medianClientRttMs: medianRtt });
      r.lastDecisionMs = nowMs;
      r.highSinceMs = r.lowSinceMs = r.farSinceMs = null;
      r.overflows = [];
    }
    next.set(o.region, r);
    const forMs = (sinceMs: number | null) => (sinceMs === null ? 0 : nowMs - sinceMs);
    views.push({
      region: o.region,
      nodes: o.nodes,
      meanStress: o.meanStress,
      overflowsInWindow: r.overflows.reduce((n, x) => n + x.count, 0),
      medianClientRttMs: medianRtt,
      clientRttSamples: rtts.length,
      clientRttMinSamples: s.minRttSamples,
      highForMs: forMs(r.highSinceMs),
      lowForMs: forMs(r.lowSinceMs),
      farForMs: forMs(r.farSinceMs),
      coolingDownForMs: r.lastDecisionMs === null ? 0 : Math.max(0, s.cooldownMs - (nowMs - r.lastDecisionMs)),
    });
  }
  return { state: next, decisions, views };
}
