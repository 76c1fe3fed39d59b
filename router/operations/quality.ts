import type { ParticipantQuality, QualityAlert } from '../../shared/schemas/index.ts';

/**
 * Quality alerts as a pure function of the samples seen and when: a participant whose packet
 * loss or RTT stays above its threshold (the guide's 5% and 200 ms) for a window raises an alert;
 * the alert clears once the value has been back under the threshold for a window, or at once
 * when the participant is gone.
 */
export interface QualitySettings {
  lossRatio: number;
  rttMs: number;
  windowMs: number;
}

export interface QualitySample extends ParticipantQuality {
  region: string;
  nodeId: string;
}

type Kind = QualityAlert['kind'];

interface ConditionState {
  badSinceMs: number | null;
  goodSinceMs: number | null;
  alert: QualityAlert | null;
}

export type QualityState = ReadonlyMap<string, ConditionState>;

const KINDS: Kind[] = ['packet_loss', 'rtt'];

function valueOf(sample: QualitySample, kind: Kind): number | null {
  return kind === 'packet_loss' ? sample.packetLoss : sample.rttMs;
}

export function evaluateQuality(
  state: QualityState,
  samples: readonly QualitySample[],
  nowMs: number,
  s: QualitySettings,
): { state: QualityState; raised: QualityAlert[]; cleared: QualityAlert[]; active: QualityAlert[] } {
  const next = new Map<string, ConditionState>();
  const raised: QualityAlert[] = [];
  const cleared: QualityAlert[] = [];
  const reported = new Set<string>();
  for (const sample of samples) {
    for (const kind of KINDS) {
      const key = `${sample.roomId}\u0000${sample.participantId}\u0000${kind}`;
      reported.add(key);
      const prev = state.get(key) ?? { badSinceMs: null, goodSinceMs: null, alert: null };
      const value = valueOf(sample, kind);
      const threshold = kind === 'packet_loss' ? s.lossRatio : s.rttMs;
      const bad = value !== null && value > threshold;
      const c: ConditionState = { ...prev };
      if (bad) {
        c.goodSinceMs = null;
        c.badSinceMs ??= nowMs;
        if (c.alert === null && nowMs - c.badSinceMs >= s.windowMs) {
          c.alert = {
            roomId: sample.roomId,
            participantId: sample.participantId,
            region: sample.region,
            nodeId: sample.nodeId,
            kind,
            value: value!,
            threshold,
            since: new Date(c.badSinceMs).toISOString(),
          };
          raised.push(c.alert);
        } else if (c.alert !== null) {
          c.alert = { ...c.alert, value: value! };
        }
      } else {
        c.badSinceMs = null;
        if (c.alert !== null) {
          c.goodSinceMs ??= nowMs;
          if (nowMs - c.goodSinceMs >= s.windowMs) {
            cleared.push(c.alert);
            c.alert = null;
            c.goodSinceMs = null;
          }
        }
      }
      if (c.alert !== null || c.badSinceMs !== null) next.set(key, c);
    }
  }
  // Participants no longer reported (left, or their node died): their alerts end now.
  for (const [key, c] of state) if (!reported.has(key) && c.alert !== null) cleared.push(c.alert);
  const active = [...next.values()].flatMap((c) => (c.alert ? [c.alert] : []));
  return { state: next, raised, cleared, active };
}
