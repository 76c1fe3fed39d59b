import type { InterRegionRtt } from './types.ts';

/**
 * The objective. Media from a to b travels a → edge A → (cascade) edge B → b, so its one-way delay
 * is half the round trip: (rtt(a,A) + rtt(A,B) + rtt(b,B)) / 2, with rtt(A,A) = 0. The sums below
 * group participants by edge region so that a whole room costs O(participants + regions²) instead
 * of O(participants²): a 500-person room is decided in microseconds.
 */

/** Where a participant's media enters the cascade. `PlacedParticipant` is one. */
export interface EdgeAssignment {
  region: string;
  /** The participant's RTT to its edge region, ms. */
  edgeRttMs: number;
}

export function oneWayDelayMs(aEdgeRttMs: number, interRegionRttMs: number, bEdgeRttMs: number): number {
  return (aEdgeRttMs + interRegionRttMs + bEdgeRttMs) / 2;
}

/** What the delay sums need to know about a room: head count, summed edge RTT, head count per edge region. */
export interface RoomDelayProfile {
  participants: number;
  edgeRttSumMs: number;
  participantsByRegion: ReadonlyMap<string, number>;
}

export function roomDelayProfile(assignments: readonly EdgeAssignment[]): RoomDelayProfile {
  const participantsByRegion = new Map<string, number>();
  let edgeRttSumMs = 0;
  for (const a of assignments) {
    edgeRttSumMs += a.edgeRttMs;
    participantsByRegion.set(a.region, (participantsByRegion.get(a.region) ?? 0) + 1);
  }
  return { participants: assignments.length, edgeRttSumMs, participantsByRegion };
}

/**
 * Mean one-way delay between a newcomer on `edge` (client RTT `clientRttMs` to it) and each
 * participant of the room; null when the room has nobody to be delayed from.
 */
export function newcomerMeanDelay(
  room: RoomDelayProfile,
  edge: string,
  clientRttMs: number,
  interRegionRtt: InterRegionRtt,
): number | null {
  if (room.participants === 0) return null;
  let interRegionSumMs = 0;
  for (const [region, count] of room.participantsByRegion) interRegionSumMs += count * interRegionRtt(edge, region);
  return (clientRttMs + (interRegionSumMs + room.edgeRttSumMs) / room.participants) / 2;
}

/**
 * Mean one-way delay over all ordered pairs of distinct participants (the same as over unordered
 * pairs when the RTT matrix is symmetric); null with fewer than two participants (no pair).
 */
export function roomMeanPairwiseDelay(assignments: readonly EdgeAssignment[], interRegionRtt: InterRegionRtt): number | null {
  const n = assignments.length;
  if (n < 2) return null;
  const room = roomDelayProfile(assignments);
  // Each participant's edge RTT appears in its n − 1 pairs as sender and n − 1 as receiver.
  let sumMs = 2 * (n - 1) * room.edgeRttSumMs;
  for (const [from, fromCount] of room.participantsByRegion) {
    for (const [to, toCount] of room.participantsByRegion) {
      if (from !== to) sumMs += fromCount * toCount * interRegionRtt(from, to);
    }
  }
  return sumMs / 2 / (n * (n - 1));
}
