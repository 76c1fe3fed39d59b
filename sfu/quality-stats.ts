/**
 * Quality statistics per participant and per room, computed from mediasoup
 * stats:
 *
 * - bitrate: transport `sendBitrate` / `recvBitrate` (bps, all bytes incl.
 *   RTCP/ICE/DTLS), summed over the participant's transports;
 * - loss: transport `rtpPacketLossReceived` / `rtpPacketLossSent` (fraction,
 *   available with transport-cc); otherwise the producers' inbound
 *   `fractionLost` (received side) and the consumers' outbound
 *   `fractionLost` from receiver reports (sent side), as fractions 0..1;
 * - RTT: consumers' outbound `roundTripTime` (ms), averaged;
 * - jitter: producers' inbound `jitter` (RTP clock units) converted to ms
 *   with the stream's clock rate, maximum over streams.
 */
import type { types as ms } from 'mediasoup';

export interface ParticipantQualityStats {
  peerId: string;
  /** Date.now() when collected. */
  at: number;
  /** Bits per second the SFU sends to the participant. */
  sendBitrate: number;
  /** Bits per second the SFU receives from the participant. */
  recvBitrate: number;
  /** Fraction (0..1) of the participant's packets lost on the way to the SFU. */
  lossReceived?: number;
  /** Fraction (0..1) of packets lost on the way from the SFU to the participant. */
  lossSent?: number;
  /** Mean round-trip time to the participant in ms (consumer outbound streams). */
  rttMs?: number;
  /** Highest inbound jitter of the participant's producers in ms. */
  jitterMs?: number;
  transports: number;
  producers: number;
  consumers: number;
}

export interface RoomQualityStats {
  roomId: string;
  at: number;
  participants: ParticipantQualityStats[];
  /** Sum over participants. */
  sendBitrate: number;
  /** Sum over participants. */
  recvBitrate: number;
  /** Mean over participants that report it. */
  lossReceived?: number;
  lossSent?: number;
  rttMs?: number;
  /** Maximum over participants. */
  jitterMs?: number;
}

/** What the room layer collects for one participant. */
export interface ParticipantRawStats {
  peerId: string;
  transports: ms.BaseTransportStats[];
  /** Producer stats (inbound streams) with the producer's codec clock rate. */
  producers: { clockRate: number; stats: ms.ProducerStat[] }[];
  /** Consumer stats: only entries of type 'outbound-rtp' are used. */
  consumers: (ms.ConsumerStat | ms.ProducerStat)[][];
}

function mean(values: number[]): number | undefined {
  return values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
}

function max(values: number[]): number | undefined {
  return values.length > 0 ? Math.max(...values) : undefined;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Jitter in RTP clock units -> milliseconds. */
export function jitterToMs(jitter: number, clockRate: number): number {
  return clockRate > 0 ? (jitter / clockRate) * 1000 : 0;
}

export function computeParticipantStats(raw: ParticipantRawStats, at = Date.now()): ParticipantQualityStats {
  let sendBitrate = 0;
  let recvBitrate = 0;
  const transportLossReceived: number[] = [];
  const transportLossSent: number[] = [];
  for (const t of raw.transports) {
    sendBitrate += t.sendBitrate ?? 0;
    recvBitrate += t.recvBitrate ?? 0;
    if (isFiniteNumber(t.rtpPacketLossReceived)) transportLossReceived.push(t.rtpPacketLossReceived);
    if (isFiniteNumber(t.rtpPacketLossSent)) transportLossSent.push(t.rtpPacketLossSent);
  }

  const jitters: number[] = [];
  const producerLoss: number[] = [];
  for (const { clockRate, stats } of raw.producers) {
    for (const s of stats) {
      if (s.type !== 'inbound-rtp') continue;
      if (isFiniteNumber(s.jitter)) jitters.push(jitterToMs(s.jitter, clockRate));
      if (isFiniteNumber(s.fractionLost)) producerLoss.push(s.fractionLost / 256);
    }
  }

  const rtts: number[] = [];
  const consumerLoss: number[] = [];
  for (const stats of raw.consumers) {
    for (const s of stats) {
      if (s.type !== 'outbound-rtp') continue;
      if (isFiniteNumber(s.roundTripTime) && s.roundTripTime > 0) rtts.push(s.roundTripTime);
      if (isFiniteNumber(s.fractionLost)) consumerLoss.push(s.fractionLost / 256);
    }
  }

  const lossReceived = mean(transportLossReceived) ?? mean(producerLoss);
  const lossSent = mean(transportLossSent) ?? mean(consumerLoss);
  const rttMs = mean(rtts);
  const jitterMs = max(jitters);
  return {
    peerId: raw.peerId,
    at,
    sendBitrate,
    recvBitrate,
    ...(lossReceived !== undefined ? { lossReceived } : {}),
    ...(lossSent !== undefined ? { lossSent } : {}),
    ...(rttMs !== undefined ? { rttMs } : {}),
    ...(jitterMs !== undefined ? { jitterMs } : {}),
    transports: raw.transports.length,
    producers: raw.producers.length,
    consumers: raw.consumers.length,
  };
}

export function aggregateRoomStats(
  roomId: string,
  participants: ParticipantQualityStats[],
  at = Date.now(),
): RoomQualityStats {
  const pick = (key: 'lossReceived' | 'lossSent' | 'rttMs' | 'jitterMs'): number[] =>
    participants.map((p) => p[key]).filter(isFiniteNumber);
  const lossReceived = mean(pick('lossReceived'));
  const lossSent = mean(pick('lossSent'));
  const rttMs = mean(pick('rttMs'));
  const jitterMs = max(pick('jitterMs'));
  return {
    roomId,
    at,
    participants,
    sendBitrate: participants.reduce((a, p) => a + p.sendBitrate, 0),
    recvBitrate: participants.reduce((a, p) => a + p.recvBitrate, 0),
    ...(lossReceived !== undefined ? { lossReceived } : {}),
    ...(lossSent !== undefined ? { lossSent } : {}),
    ...(rttMs !== undefined ? { rttMs } : {}),
    ...(jitterMs !== undefined ? { jitterMs } : {}),
  };
}
