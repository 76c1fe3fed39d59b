import type { CascadeLinkQualityAlert, ParticipantQuality, ParticipantQualityAlert, QualityAlert } from '../../shared/schemas/index.ts';

/**
 * Quality alerts as a pure function of the samples seen and when: a participant whose packet
 * loss or RTT stays above its threshold (the guide's 5% and 200 ms) for a window raises an alert;
 * so does a cascade link (what a node receives from another: loss and jitter, and the two nodes'
 * RTT); the alert clears once the value has been back under the threshold for a window, or at once
 * when the participant or the link is gone.
 */
export interface QualitySettings {
  lossRatio: number;
  rttMs: number;
  /** Cascade links only. */
  jitterMs: number;
  windowMs: number;
}

/** A participant's figures, as its node reported them. */
export interface QualitySample extends ParticipantQuality {
  region: string;
  nodeId: string;
}

/** A cascade link's figures: what `nodeId` receives from `peerNodeId`, and the RTT between them (null: not measured). */
export interface LinkQualitySample {
  scope: 'cascade_link';
  nodeId: string;
  region: string;
  peerNodeId: string;
  peerRegion: string;
  loss: number | null;
  jitterMs: number | null;
  rttMs: number | null;
}

interface ConditionState {
  badSinceMs: number | null;
  goodSinceMs: number | null;
  alert: QualityAlert | null;
}

export type QualityState = ReadonlyMap<string, ConditionState>;

/** One condition of one subject this tick: its value and the alert it raises (given the value and since when). */
interface Condition {
  key: string;
  value: number | null;
  threshold: number;
  alert: (value: number, since: string) => QualityAlert;
}

const PARTICIPANT_KINDS: ParticipantQualityAlert['kind'][] = ['packet_loss', 'rtt'];
const LINK_KINDS: CascadeLinkQualityAlert['kind'][] = ['packet_loss', 'rtt', 'jitter'];

function conditionsOf(sample: QualitySample | LinkQualitySample, s: QualitySettings): Condition[] {
  if ('scope' in sample) {
    const figures = { loss: sample.loss, jitterMs: sample.jitterMs, rttMs: sample.rttMs };
    return LINK_KINDS.map((kind) => {
      const [value, threshold] = kind === 'packet_loss' ? [sample.loss, s.lossRatio] : kind === 'rtt' ? [sample.rttMs, s.rttMs] : [sample.jitterMs, s.jitterMs];
      return {
        key: `link\u0000${sample.nodeId}\u0000${sample.peerNodeId}\u0000${kind}`,
        value,
        threshold,
        alert: (v, since) => ({
          scope: 'cascade_link',
          peerNodeId: sample.peerNodeId,
          peerRegion: sample.peerRegion,
          kind,
          region: sample.region,
          nodeId: sample.nodeId,
          value: v,
          threshold,
          since,
          ...figures,
        }),
      };
    });
  }
  return PARTICIPANT_KINDS.map((kind) => {
    const [value, threshold] = kind === 'packet_loss' ? [sample.packetLoss, s.lossRatio] : [sample.rttMs, s.rttMs];
    return {
      key: `${sample.roomId}\u0000${sample.participantId}\u0000${kind}`,
      value,
      threshold,
      alert: (v, since) => ({ scope: 'participant', roomId: sample.roomId, participantId: sample.participantId, region: sample.region, nodeId: sample.nodeId, kind, value: v, threshold, since }),
    };
  });
}

export function evaluateQuality(
  state: QualityState,
  samples: readonly (QualitySample | LinkQualitySample)[],
  nowMs: number,
  s: QualitySettings,
): { state: QualityState; raised: QualityAlert[]; cleared: QualityAlert[]; active: QualityAlert[] } {
  const next = new Map<string, ConditionState>();
  const raised: QualityAlert[] = [];
  const cleared: QualityAlert[] = [];
  const reported = new Set<string>();
  for (const condition of samples.flatMap((sample) => conditionsOf(sample, s))) {
    const { key, value, threshold } = condition;
    reported.add(key);
    const prev = state.get(key) ?? { badSinceMs: null, goodSinceMs: null, alert: null };
    const c: ConditionState = { ...prev };
    if (value !== null && value > threshold) {
      c.goodSinceMs = null;
      c.badSinceMs ??= nowMs;
      if (c.alert === null && nowMs - c.badSinceMs >= s.windowMs) {
        c.alert = condition.alert(value, new Date(c.badSinceMs).toISOString());
        raised.push(c.alert);
      } else if (c.alert !== null) {
        c.alert = condition.alert(value, c.alert.since);
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
  // Participants and links no longer reported (left, closed, or their node died): their alerts end now.
  for (const [key, c] of state) if (!reported.has(key) && c.alert !== null) cleared.push(c.alert);
  const active = [...next.values()].flatMap((c) => (c.alert ? [c.alert] : []));
  return { state: next, raised, cleared, active };
}
