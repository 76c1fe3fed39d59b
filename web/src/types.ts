/** The snapshot the router streams (types only: erased from the bundle). */
export type { DashboardParticipant, DashboardRoom, DashboardSnapshot } from '../../shared/schemas/dashboard.ts';
import type { DashboardSnapshot } from '../../shared/schemas/dashboard.ts';

export type RegionView = DashboardSnapshot['regions']['regions'][number];
export type NodeView = RegionView['nodes'][number];

/** The router→region probe figure: the best smoothed RTT among the region's live nodes. */
export function regionProbeRtt(region: RegionView): number | null {
  const rtts = region.nodes.filter((n) => n.state !== 'dead' && n.probe.rttMs !== null).map((n) => n.probe.rttMs!);
  return rtts.length > 0 ? Math.min(...rtts) : null;
}

/** A node's media bandwidth, admin only (from its last heartbeat). */
export type NodeMediaView = NonNullable<DashboardSnapshot['media']>['nodes'][number];
