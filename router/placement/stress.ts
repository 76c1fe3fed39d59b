import type { NodeLoad } from '../../shared/schemas/index.ts';

export interface StressLimits {
  /** CPU fraction at which stress reaches 1 (GEO_SFU_MAX_CPU). */
  maxCpu: number;
  /** Memory fraction at which stress reaches 1 (GEO_SFU_MAX_MEMORY). */
  maxMemory: number;
  /** Participants at which stress reaches 1: the lower of the configured and the advertised limit. */
  maxParticipants: number;
}

/**
 * How close a node is to its first limit: 0 idle, 1 or more full. The scarcest resource decides,
 * since a node is full as soon as any one of them is.
 */
export function nodeStress(load: Pick<NodeLoad, 'cpu' | 'memory' | 'participants'>, limits: StressLimits): number {
  return Math.max(
    usage(load.cpu, limits.maxCpu),
    usage(load.memory, limits.maxMemory),
    usage(load.participants, limits.maxParticipants),
  );
}

/** A limit of 0 (an operator set the node's capacity to 0) leaves no room at all, even when unused. */
function usage(used: number, limit: number): number {
  return limit > 0 ? used / limit : Number.POSITIVE_INFINITY;
}
