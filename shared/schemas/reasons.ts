import { Type, type Static } from '@sinclair/typebox';

/**
 * Why a placement decision came out as it did. A closed set, so dashboards, tests and the session
 * log can rely on them. Every fallback has its own code.
 */
export const REASON_CODES = [
  'CLIENT_MEASURED_RTT', // the client's own RTT measurements were used
  'GEOIP_ESTIMATED_RTT', // RTTs estimated from the client IP's location
  'DEFAULT_RTT', // no measurement, IP not locatable: configured default for every region
  'PARTIAL_CLIENT_RTT', // client measured some regions; the others were estimated
  'FIRST_PARTICIPANT_SETS_HOME', // the room was empty: this participant's best region became home
  'ROOM_HOME_EXISTS', // the room already had a home region
  'MIN_MEAN_DELAY', // edge chosen to minimise the room's mean pairwise one-way delay
  'NEAREST_REGION', // edge chosen as the client's lowest-RTT region
  'PINNED_TO_HOME', // edge is the room's home region (first-joiner strategy)
  'KEPT_IN_ROOM_REGION_BY_MARGIN', // a new region would have saved less than the margin
  'HOME_REGION_UNAVAILABLE', // the home region cannot take more participants: overflow elsewhere
  'CASCADE_ADDED', // the edge is a region new to the room: a cascade link is added
  'NODE_ALREADY_IN_ROOM', // the node already serves this room in that region
  'NODE_LEAST_STRESSED', // among eligible nodes of the region, the least stressed
  'ALL_REGIONS_EQUAL', // no information separates the regions: catalog order and load decide
  'REBALANCE_PLANNED', // the edge was planned by live rebalancing (the participant was told to move)
  'REBALANCE_MOVE', // rebalancing moves this participant: the room's mean delay drops and so does its own
  'REBALANCE_ROOM_AT_BEST', // rebalancing found no assignment better than the current one
  'REBALANCE_GAIN_BELOW_THRESHOLD', // a better assignment exists, but the room would gain too little
  'REBALANCE_PERSON_GAIN_TOO_SMALL', // kept in place: moving would gain this participant too little
  'REBALANCE_RECENTLY_MOVED', // kept in place: moved within the per-person window
  'REBALANCE_NOT_JOINED', // kept in place: allocated but not joined yet
  'REBALANCE_NODE_UNAVAILABLE', // kept in place: its node is leaving (drain/failover move it)
  'REBALANCE_HOME_MOVED', // nobody stays on the home region: the room's home moves
  'REGION_POLICY', // the room has a region policy: only its allowed regions were candidates
  'PREFERRED_REGION', // a region the policy prefers, within GEO_SFU_MARGIN_MS of the best allowed one
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export const EXCLUSION_CODES = [
  'POLICY_RESTRICTED', // the room's region policy does not allow the region (checked before its nodes)
  'NO_NODES', // no node registered in the region
  'NODE_DEAD', // nodes there missed heartbeats
  'CORDONED', // operator cordoned every node
  'DRAINING', // every node is draining
  'OVERLOADED', // every node at stress >= 1
  'EXCLUDED_BY_CLIENT', // the client just failed on every node of the region
] as const;
export type ExclusionCode = (typeof EXCLUSION_CODES)[number];

/** A string enum schema whose static type is the union of its values. */
export const stringEnum = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] });

export const Reason = Type.Object({
  code: stringEnum(REASON_CODES),
  message: Type.String(),
  region: Type.Optional(Type.String()),
  nodeId: Type.Optional(Type.String()),
  valueMs: Type.Optional(Type.Number()),
});
export type Reason = Static<typeof Reason>;
