import type { ParticipantRecord } from './types.ts';

/** The order both room stores list participants in: by allocation time, then id (stable output). */
export function compareParticipants(a: ParticipantRecord, b: ParticipantRecord): number {
  return a.allocatedAtMs - b.allocatedAtMs || (a.participantId < b.participantId ? -1 : a.participantId > b.participantId ? 1 : 0);
}
