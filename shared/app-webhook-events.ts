/**
 * Application webhook events (docs/webhooks.md) as plain types: the body of each delivery. Types
 * only (no schema library), so the server SDK that re-exports them stays on Node built-ins; the
 * agent's track report (shared/schemas/app-webhooks.ts) is checked against `AppTrack` where the
 * router turns it into an event.
 */

export type TrackSourceName = 'camera' | 'microphone' | 'screen_share' | 'screen_share_audio' | 'unknown';

/** A published track: its SFU producer id, kind, source, and one layer per encoding (several: simulcast). */
export interface AppTrack {
  trackId: string;
  kind: 'audio' | 'video';
  source: TrackSourceName;
  layers: Array<{ rid?: string; maxBitrate?: number; scalabilityMode?: string }>;
}

export type AppEventName = 'room_started' | 'room_finished' | 'participant_joined' | 'participant_left' | 'participant_moved' | 'track_published' | 'track_unpublished';
export type ParticipantLeftReason = 'left' | 'kicked' | 'timed_out' | 'replaced';
export type ParticipantMoveReason = 'rebalance' | 'failover' | 'drain';

/** Fields every application webhook event carries. */
interface AppEventBase {
  /** Unique per event: a receiver drops a delivery whose id it has seen (delivery is at least once). */
  id: string;
  /** Per room, increasing in the order events were queued (not necessarily gapless after a replay). */
  seq: number;
  roomId: string;
  /** Null for room events. */
  participantId: string | null;
  /** Where it happened: the participant's edge (for room events, the participant that started or last left the room). */
  region: string;
  nodeId: string;
  /** When the router saw it happen, ms since the epoch. */
  occurredAtMs: number;
  /** When it was queued for delivery (with its sequence number). */
  queuedAtMs: number;
}

/** One application webhook event: the body of each delivery. */
export type AppEvent = AppEventBase &
  (
    | { event: 'room_started' | 'room_finished' | 'participant_joined' }
    | { event: 'participant_left'; reason: ParticipantLeftReason }
    | { event: 'participant_moved'; reason: ParticipantMoveReason; from: { region: string; nodeId: string } }
    | { event: 'track_published' | 'track_unpublished'; track: AppTrack }
  );
