import { EXCLUSION_CODES, type ExclusionCode } from '../../shared/schemas/index.ts';
import type { PlacementInput, PlacementNode } from './types.ts';

/**
 * Shared filter steps of every strategy: which nodes may take a participant, why a region cannot,
 * and which node of a region gets the participant.
 *
 * A node is eligible when it is not dead, not cordoned, not draining, has stress < 1 and the client
 * did not just fail on it. 'suspect' nodes are eligible (a missed heartbeat or two is not an
 * outage) but every ranking puts them after alive ones.
 *
 * Precedence of exclusion codes. A node with several problems reports the first in EXCLUSION_CODES
 * order (NODE_DEAD, CORDONED, DRAINING, OVERLOADED, EXCLUDED_BY_CLIENT): the most lasting cause,
 * since a dead node is out whatever its load or the client's opinion. A region with no node reports
 * NO_NODES; otherwise it reports the least lasting cause among its nodes, i.e. the last barrier
 * between this participant and the region (one node dead and one overloaded: OVERLOADED, because
 * the region is out for as long as the overload lasts, not for as long as the dead node stays dead).
 * A region the room's policy does not allow reports POLICY_RESTRICTED whatever its nodes: no node
 * of it is ever chosen for the room.
 */

export type NodeChoiceReason = 'NODE_ALREADY_IN_ROOM' | 'NODE_LEAST_STRESSED';

export interface NodeChoice {
  node: PlacementNode;
  reason: NodeChoiceReason;
  /** Eligible nodes the choice was made among. */
  eligibleCount: number;
}

export interface RegionAssessment {
  region: string;
  /** Position in the catalog; the last tie-breaker between regions. */
  catalogIndex: number;
  /** Null exactly when `excludedBecause` is set. */
  choice: NodeChoice | null;
  excludedBecause: ExclusionCode | null;
}

export function nodeExclusion(node: PlacementNode, excludedNodeIds: ReadonlySet<string>): ExclusionCode | null {
  if (node.state === 'dead') return 'NODE_DEAD';
  if (node.cordoned) return 'CORDONED';
  if (node.draining) return 'DRAINING';
  // Written as "not below 1" so that an unknown (NaN) stress counts as no room to spare.
  if (!(node.stress < 1)) return 'OVERLOADED';
  if (excludedNodeIds.has(node.nodeId)) return 'EXCLUDED_BY_CLIENT';
  return null;
}

/** Null when at least one node of the region is eligible. */
export function regionExclusion(regionNodes: readonly PlacementNode[], excludedNodeIds: ReadonlySet<string>): ExclusionCode | null {
  if (regionNodes.length === 0) return 'NO_NODES';
  let leastLasting = -1;
  for (const node of regionNodes) {
    const code = nodeExclusion(node, excludedNodeIds);
    if (code === null) return null;
    leastLasting = Math.max(leastLasting, EXCLUSION_CODES.indexOf(code));
  }
  return EXCLUSION_CODES[leastLasting]!;
}

/** Alive before suspect, then lower stress: how healthy a node is, for ranking nodes and regions. */
export function compareNodeHealth(a: PlacementNode, b: PlacementNode): number {
  return stateRank(a) - stateRank(b) || a.stress - b.stress;
}

const stateRank = (node: PlacementNode) => (node.state === 'alive' ? 0 : 1);

function compareNodes(a: PlacementNode, b: PlacementNode): number {
  const health = compareNodeHealth(a, b);
  if (health !== 0) return health;
  return a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
}

/**
 * The node of a region that gets the participant: a node already serving the room there keeps the
 * room on as few nodes as possible (no extra cascade hop inside the region); otherwise the
 * healthiest node. Null when no node of the region is eligible.
 */
export function chooseNode(
  regionNodes: readonly PlacementNode[],
  roomNodeIds: ReadonlySet<string>,
  excludedNodeIds: ReadonlySet<string>,
): NodeChoice | null {
  const eligible = regionNodes.filter((node) => nodeExclusion(node, excludedNodeIds) === null).sort(compareNodes);
  const inRoom = eligible.find((node) => roomNodeIds.has(node.nodeId));
  if (inRoom) return { node: inRoom, reason: 'NODE_ALREADY_IN_ROOM', eligibleCount: eligible.length };
  const healthiest = eligible[0];
  return healthiest ? { node: healthiest, reason: 'NODE_LEAST_STRESSED', eligibleCount: eligible.length } : null;
}

/** Every catalog region, in catalog order, with its node choice or the reason it has none. */
export function assessRegions(input: PlacementInput): RegionAssessment[] {
  const excludedNodeIds = new Set(input.excludeNodeIds);
  const roomNodeIds = new Set(input.room.participants.map((p) => p.nodeId));
  if (input.room.homeNodeId !== null) roomNodeIds.add(input.room.homeNodeId);
  const nodesByRegion = new Map<string, PlacementNode[]>();
  for (const node of input.nodes) {
    const regionNodes = nodesByRegion.get(node.region);
    if (regionNodes) regionNodes.push(node);
    else nodesByRegion.set(node.region, [node]);
  }
  const allowed = input.policy ? new Set(input.policy.allowedRegions) : null;
  return input.regions.map((region, catalogIndex) => {
    if (allowed && !allowed.has(region)) return { region, catalogIndex, choice: null, excludedBecause: 'POLICY_RESTRICTED' };
    const regionNodes = nodesByRegion.get(region) ?? [];
    const choice = chooseNode(regionNodes, roomNodeIds, excludedNodeIds);
    return { region, catalogIndex, choice, excludedBecause: choice ? null : regionExclusion(regionNodes, excludedNodeIds) };
  });
}
