import type { Heartbeat, HeartbeatAck, ParticipantQuality } from '../../shared/schemas/index.ts';
import { send, sessionKey, type Sessions } from './sessions.ts';

/**
 * Quality in heartbeats: the router's alerts on this node's participants (in the heartbeat's
 * answer) are told to each participant once per alert, with its latest measured quality.
 */
export class QualityAlerts {
  /** Latest per-participant quality sent in a heartbeat. */
  #quality = new Map<string, ParticipantQuality>();

  constructor(
    private readonly sessions: Sessions,
    private readonly nodeId: string,
  ) {}

  onHeartbeat(heartbeat: Heartbeat, ack: HeartbeatAck): void {
    if (heartbeat.quality) this.#quality = new Map(heartbeat.quality.map((q) => [sessionKey(q.roomId, q.participantId), q]));
    const byParticipant = new Map<string, NonNullable<HeartbeatAck['alerts']>>();
    for (const alert of ack.alerts ?? []) {
      if (alert.nodeId !== this.nodeId) continue;
      const key = sessionKey(alert.roomId, alert.participantId);
      byParticipant.set(key, [...(byParticipant.get(key) ?? []), alert]);
    }
    for (const session of this.sessions.all()) {
      const alerts = byParticipant.get(session.key) ?? [];
      const keys = new Set(alerts.map((a) => `${a.kind} ${a.since}`));
      const fresh = [...keys].some((k) => !session.alerts.has(k));
      session.alerts = keys;
      if (!fresh || !session.socket) continue;
      const q = this.#quality.get(session.key);
      const msg = { peerId: session.peerId, packetLoss: q?.packetLoss ?? 0, rttMs: q?.rttMs ?? null, jitterMs: q?.jitterMs ?? null, bitrateBps: q?.bitrateBps ?? 0 };
      for (const a of alerts) {
        if (a.kind === 'packet_loss') msg.packetLoss = Math.max(msg.packetLoss, a.value);
        else msg.rttMs = Math.max(msg.rttMs ?? 0, a.value);
      }
      send(session.socket, 'quality', msg);
    }
  }
}
