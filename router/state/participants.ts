/** The order both room stores list participants in (SFU and P2P): by allocation time, then id (stable output). */
export function compareParticipants(a: { allocatedAtMs: number; participantId: string }, b: { allocatedAtMs: number; participantId: string }): number {
  return a.allocatedAtMs - b.allocatedAtMs || (a.participantId < b.participantId ? -1 : a.participantId > b.participantId ? 1 : 0);
}
