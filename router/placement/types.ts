import type { RawConfig } from '../../shared/config/index.ts';
import type { Candidate, NormalizedPolicy, Reason } from '../../shared/schemas/index.ts';

/**
 * Inputs and outputs of placement. Placement is pure: everything it needs is in these values
 * (no stores, network, clock or randomness), so it can be tested with tables and reused by the
 * simulator and the rebalancer.
 */

export type RttSource = 'client' | 'geoip' | 'default';

/** The client's RTT to every catalog region, ms, and where the figures came from. */
export interface ClientRtt {
  byRegion: Readonly<Record<string, number>>;
  source: RttSource;
  /** Regions whose figure was estimated although the client measured others. */
  estimatedRegions: readonly string[];
}

export interface PlacementNode {
  nodeId: string;
  region: string;
  state: 'alive' | 'suspect' | 'dead';
  draining: boolean;
  cordoned: boolean;
  /** max(cpu/maxCpu, memory/maxMemory, participants/maxParticipants), reservations included. */
  stress: number;
}

export interface PlacedParticipant {
  participantId: string;
  region: string;
  nodeId: string;
  /** This participant's RTT to its edge region, ms. */
  edgeRttMs: number;
}

export interface RoomSnapshot {
  /** Null while the room has no home; set together with `homeNodeId` (a room without both has no home). */
  homeRegion: string | null;
  homeNodeId: string | null;
  /** Everyone else already in the room (the newcomer excluded). */
  participants: readonly PlacedParticipant[];
}

/** Full inter-region RTT matrix (ms): measured where known, estimated otherwise; 0 on the diagonal. */
export type InterRegionRtt = (from: string, to: string) => number;

export interface PlacementInput {
  /** Catalog order; breaks ties. */
  regions: readonly string[];
  nodes: readonly PlacementNode[];
  interRegionRtt: InterRegionRtt;
  client: ClientRtt;
  room: RoomSnapshot;
  excludeNodeIds: readonly string[];
  /** See GEO_SFU_MARGIN_MS. */
  marginMs: number;
  /**
   * The room's region policy: a region it does not allow is excluded (POLICY_RESTRICTED) before its
   * nodes are looked at; its preferred regions win near-ties (within `marginMs`). Absent or null: none.
   */
  policy?: NormalizedPolicy | null;
}

export interface PlacementDecision {
  homeRegion: string;
  homeNodeId: string;
  /** This participant's edge. */
  region: string;
  nodeId: string;
  /** Regions the room spans once this participant joins (home first). */
  cascadeRegions: string[];
  reasons: Reason[];
  candidates: Candidate[];
}

export type PlacementResult =
  | { ok: true; decision: PlacementDecision }
  | { ok: false; reasons: Reason[]; candidates: Candidate[] };

/** The strategies GEO_SFU_PLACEMENT_STRATEGY accepts. */
export type PlacementStrategyKind = RawConfig['placementStrategy'];

/** One placement strategy per file, built by `createStrategy(kind)`. */
export interface PlacementStrategy {
  readonly kind: string;
  place(input: PlacementInput): PlacementResult;
}
