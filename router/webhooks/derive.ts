import type { AppOccurrence, PresentParticipant, RoomPresence, UnqueuedEvent } from './types.ts';

/**
 * What an occurrence does to a room's presence, and the events it raises (pure):
 * - `joined`: room_started if the room was closed; then participant_joined, or — when the
 *   participant was present on another allocation — participant_moved (a move: rebalancing, a
 *   failover or a drain) or participant_left (`replaced`) and participant_joined (a new session of
 *   the same participant). A join repeated for the same allocation raises nothing.
 * - `left`: participant_left if that allocation is present; the room's room_finished check is then
 *   due after its idle TTL if it is empty.
 * - `track`: track_published / track_unpublished while that allocation is present.
 * - `idle`: room_finished if the room is open, still empty and its idle TTL passed.
 */
export function deriveEvents(presence: RoomPresence, o: AppOccurrence, idleTtlMs: number, newId: () => string): { presence: RoomPresence; events: UnqueuedEvent[] } {
  const base = { roomId: o.roomId, occurredAtMs: o.atMs };
  const find = (participantId: string) => presence.participants.find((p) => p.participantId === participantId);
  const without = (participantId: string) => presence.participants.filter((p) => p.participantId !== participantId);
  switch (o.kind) {
    case 'joined': {
      const here: PresentParticipant = { participantId: o.participantId, allocationId: o.allocationId, region: o.region, nodeId: o.nodeId };
      const before = find(o.participantId);
      if (before?.allocationId === o.allocationId) return { presence, events: [] };
      const at = { region: o.region, nodeId: o.nodeId };
      const who = { ...base, participantId: o.participantId, ...at };
      const events: UnqueuedEvent[] = [];
      if (!presence.open) events.push({ ...base, id: newId(), event: 'room_started', participantId: null, ...at });
      if (before && o.moveReason) {
        events.push({ ...who, id: newId(), event: 'participant_moved', reason: o.moveReason, from: { region: before.region, nodeId: before.nodeId } });
      } else {
        if (before) events.push({ ...who, id: newId(), event: 'participant_left', reason: 'replaced', region: before.region, nodeId: before.nodeId });
        events.push({ ...who, id: newId(), event: 'participant_joined' });
      }
      return { presence: { open: true, participants: [...without(o.participantId), here], last: at, finishAtMs: null }, events };
    }
    case 'left': {
      const before = find(o.participantId);
      if (!before || (o.allocationId !== null && before.allocationId !== o.allocationId)) return { presence, events: [] };
      const at = { region: before.region, nodeId: before.nodeId };
      const participants = without(o.participantId);
      return {
        presence: { ...presence, participants, last: at, finishAtMs: participants.length === 0 ? o.atMs + idleTtlMs : null },
        events: [{ ...base, id: newId(), event: 'participant_left', reason: o.reason, participantId: o.participantId, ...at }],
      };
    }
    case 'track': {
      const here = find(o.participantId);
      if (here?.allocationId !== o.allocationId) return { presence, events: [] };
      const event = o.published ? 'track_published' : 'track_unpublished';
      return { presence, events: [{ ...base, id: newId(), event, participantId: o.participantId, region: here.region, nodeId: here.nodeId, track: o.track }] };
    }
    case 'idle': {
      if (!presence.open || presence.participants.length > 0 || presence.finishAtMs === null || presence.finishAtMs > o.atMs) return { presence, events: [] };
      const at = presence.last ?? { region: '', nodeId: '' };
      return { presence: { open: false, participants: [], last: null, finishAtMs: null }, events: [{ ...base, id: newId(), event: 'room_finished', participantId: null, ...at }] };
    }
  }
}
