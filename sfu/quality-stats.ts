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
 *
 * And per track (each producer: the SFU receives it; each consumer: the SFU sends it): bitrate,
 * loss, RTT, jitter, mediasoup's score and the simulcast/SVC layers, all measured by the SFU; and
 * the resolution and frame rate of the layer in use, DERIVED (mediasoup does not decode video):
 * the capture the client declared at produce time (`appData.capture`, see sdk/) divided by the
 * layer's `scaleResolutionDownBy` (simulcast) or 2 per spatial layer below the top (SVC), and the
 * frame rate halved per temporal layer below the top.
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
  /** One entry per producer ('in') and consumer ('out'). */
  tracks: TrackQualityStats[];
}

/** What a client declared of its video capture at produce time (`appData.capture`). */
export interface CaptureSettings {
  width: number;
  height: number;
  frameRate?: number;
}

/** One track as the SFU sees it. */
export interface TrackQualityStats {
  /** 'in': a producer (the participant publishes it); 'out': a consumer (the participant receives it). */
  direction: 'in' | 'out';
  kind: ms.MediaKind;
  /** The producer (for a consumer: the one it consumes). */
  producerId: string;
  paused: boolean;
  /** Measured: bits per second of RTP (in: every encoding summed). */
  bitrateBps: number;
  /** Measured: fraction lost (in: worst encoding; out: the receiver's reports). */
  loss?: number;
  /** Measured: from RTCP (out: receiver reports; in: sender reports when the client sends them). */
  rttMs?: number;
  /** Measured: inbound jitter, ms (in only). */
  jitterMs?: number;
  /** Measured: mediasoup's stream score 0..10 (in: best encoding). */
  score?: number;
  /** Spatial and temporal layers the producer has (1 and 1 without simulcast or SVC). */
  spatialLayers: number;
  temporalLayers: number;
  /** Measured: the spatial/temporal layer in use (in: highest encoding arriving; out: the consumer's current layers). */
  spatialLayer?: number;
  temporalLayer?: number;
  /** Derived (see the top of this file): resolution and frame rate of the layer in use. */
  width?: number;
  height?: number;
  frameRate?: number;
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

/** One producer or consumer with its stats and what the layers need. */
export interface TrackRawStats {
  direction: 'in' | 'out';
  kind: ms.MediaKind;
  producerId: string;
  paused: boolean;
  /** The codec's clock rate (jitter conversion). */
  clockRate: number;
  /** The producer's encodings as it was produced with (simulcast: one per spatial layer, lowest first). */
  encodings: ms.RtpEncodingParameters[];
  capture?: CaptureSettings;
  /** A consumer's current layers (undefined: a simple consumer, or nothing sent yet). */
  currentLayers?: ms.ConsumerLayers;
  /** mediasoup stats: a producer's 'inbound-rtp' entries, a consumer's 'outbound-rtp' one (others ignored). */
  stats: (ms.ProducerStat | ms.ConsumerStat)[];
}

/** What the room layer collects for one participant. */
export interface ParticipantRawStats {
  peerId: string;
  transports: ms.BaseTransportStats[];
  /** Its producers ('in') and consumers ('out'). */
  tracks: TrackRawStats[];
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
  const rtts: number[] = [];
  const consumerLoss: number[] = [];
  for (const track of raw.tracks) {
    for (const s of track.stats) {
      if (track.direction === 'in' && s.type === 'inbound-rtp') {
        const jitter = (s as ms.ProducerStat).jitter;
        if (isFiniteNumber(jitter)) jitters.push(jitterToMs(jitter, track.clockRate));
        if (isFiniteNumber(s.fractionLost)) producerLoss.push(s.fractionLost / 256);
      } else if (track.direction === 'out' && s.type === 'outbound-rtp') {
        if (isFiniteNumber(s.roundTripTime) && s.roundTripTime > 0) rtts.push(s.roundTripTime);
        if (isFiniteNumber(s.fractionLost)) consumerLoss.push(s.fractionLost / 256);
      }
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
    producers: raw.tracks.filter((t) => t.direction === 'in').length,
    consumers: raw.tracks.filter((t) => t.direction === 'out').length,
    tracks: raw.tracks.map(computeTrackStats),
  };
}

/** Spatial and temporal layer counts from a scalability mode ('L3T3', 'S2T1', 'L1T3_KEY'). */
function scalability(mode: string | undefined): { spatial: number; temporal: number } {
  const m = /^[LS](\d+)T(\d+)/.exec(mode ?? '');
  return m ? { spatial: Number(m[1]), temporal: Number(m[2]) } : { spatial: 1, temporal: 1 };
}

/** How much spatial layer `layer` of `spatialLayers` is scaled down from the capture. */
function scaleOf(encodings: ms.RtpEncodingParameters[], spatialLayers: number, layer: number): number {
  if (encodings.length > 1) {
    // What the client gave at produce time (kept by mediasoup, not in its type).
    const given = (encodings[layer] as { scaleResolutionDownBy?: unknown } | undefined)?.scaleResolutionDownBy;
    return isFiniteNumber(given) && given >= 1 ? given : 2 ** (spatialLayers - 1 - layer);
  }
  return 2 ** (spatialLayers - 1 - layer);
}

export function computeTrackStats(raw: TrackRawStats): TrackQualityStats {
  const modes = scalability(raw.encodings[0]?.scalabilityMode);
  const spatialLayers = raw.encodings.length > 1 ? raw.encodings.length : modes.spatial;
  const temporalLayers = modes.temporal;
  let bitrateBps = 0;
  const losses: number[] = [];
  const rtts: number[] = [];
  const jitters: number[] = [];
  const scores: number[] = [];
  let spatialLayer: number | undefined;
  for (const s of raw.stats) {
    const wanted = raw.direction === 'in' ? 'inbound-rtp' : 'outbound-rtp';
    if (s.type !== wanted) continue;
    if (isFiniteNumber(s.bitrate)) bitrateBps += s.bitrate;
    if (isFiniteNumber(s.fractionLost)) losses.push(s.fractionLost / 256);
    if (isFiniteNumber(s.roundTripTime) && s.roundTripTime > 0) rtts.push(s.roundTripTime);
    if (isFiniteNumber(s.score)) scores.push(s.score);
    if (raw.direction === 'in') {
      const jitter = (s as ms.ProducerStat).jitter;
      if (isFiniteNumber(jitter)) jitters.push(jitterToMs(jitter, raw.clockRate));
      // The highest simulcast encoding that is arriving (matched by rid, else by ssrc).
      if (isFiniteNumber(s.bitrate) && s.bitrate > 0) {
        const index = raw.encodings.length > 1 ? raw.encodings.findIndex((e) => (s.rid !== undefined ? e.rid === s.rid : e.ssrc === s.ssrc)) : spatialLayers - 1;
        if (index >= 0) spatialLayer = Math.max(spatialLayer ?? 0, index);
      }
    }
  }
  let temporalLayer: number | undefined;
  if (raw.direction === 'out') {
    spatialLayer = raw.currentLayers?.spatialLayer ?? (bitrateBps > 0 ? spatialLayers - 1 : undefined);
    temporalLayer = raw.currentLayers?.temporalLayer ?? (bitrateBps > 0 ? temporalLayers - 1 : undefined);
  } else if (spatialLayer !== undefined) {
    temporalLayer = temporalLayers - 1;
  }
  const derived: Pick<TrackQualityStats, 'width' | 'height' | 'frameRate'> = {};
  if (raw.kind === 'video' && raw.capture && spatialLayer !== undefined) {
    const scale = scaleOf(raw.encodings, spatialLayers, spatialLayer);
    derived.width = Math.round(raw.capture.width / scale);
    derived.height = Math.round(raw.capture.height / scale);
    if (raw.capture.frameRate !== undefined) derived.frameRate = Math.round((raw.capture.frameRate / 2 ** (temporalLayers - 1 - (temporalLayer ?? temporalLayers - 1))) * 10) / 10;
  }
  const loss = max(losses);
  const rttMs = mean(rtts);
  const jitterMs = max(jitters);
  const score = max(scores);
  return {
    direction: raw.direction,
    kind: raw.kind,
    producerId: raw.producerId,
    paused: raw.paused,
    bitrateBps: Math.round(bitrateBps),
    ...(loss !== undefined ? { loss } : {}),
    ...(rttMs !== undefined ? { rttMs } : {}),
    ...(jitterMs !== undefined ? { jitterMs } : {}),
    ...(score !== undefined ? { score } : {}),
    spatialLayers,
    temporalLayers,
    ...(spatialLayer !== undefined ? { spatialLayer } : {}),
    ...(temporalLayer !== undefined ? { temporalLayer } : {}),
    ...derived,
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

/** One stream a node receives over a cascade link: a producer piped in from the peer node. */
export interface PipedStreamRawStats {
  producerId: string;
  kind: ms.MediaKind;
  /** The codec's clock rate (jitter conversion). */
  clockRate: number;
  /** The imported producer's stats ('inbound-rtp' entries are read, others ignored). */
  stats: ms.ProducerStat[];
}

/**
 * A received stream's first transmissions so far (cumulative): how many it should have received
 * and how many of those were lost on the way, repaired since or not. mediasoup counts
 * `packetsLost` as expected minus received originals at each receiver report (about 1 s for
 * video, 5 s for audio); a retransmission over RTX is not an original, so a repaired packet stays
 * lost there, but without RTX (audio on the pipe) the retransmission carries the original's
 * sequence number and fills the gap: those losses are the stream's `packetsRepaired`.
 */
export function firstTransmissions(s: ms.ProducerStat): { expected: number; lost: number } {
  const repaired = s.packetsRepaired;
  const lost = s.packetsLost + (s.rtxSsrc === undefined ? repaired : 0);
  return { expected: s.packetCount - repaired + lost, lost };
}

/**
 * The jitter of what arrives over a cascade link, ms (rounded to 0.1 ms): the LOWEST interarrival
 * jitter (RFC 3550, mediasoup's `jitter` in RTP clock units) among the streams arriving (bitrate
 * > 0). Every stream crosses the same path, so the path's jitter shows in each; others add their
 * own on top (a video frame's packets share one timestamp and arrive spread by the sender's pacing;
 * a retransmission without RTX arrives a round trip late under the original's timestamp), so the
 * lowest is the path's. Undefined while nothing arrives.
 */
export function cascadeLinkJitterMs(streams: readonly PipedStreamRawStats[]): number | undefined {
  let jitterMs: number | undefined;
  for (const stream of streams) {
    for (const s of stream.stats) {
      if (s.type !== 'inbound-rtp' || !isFiniteNumber(s.bitrate) || s.bitrate <= 0 || !isFiniteNumber(s.jitter)) continue;
      jitterMs = Math.min(jitterMs ?? Infinity, jitterToMs(s.jitter, stream.clockRate));
    }
  }
  return jitterMs === undefined ? undefined : Math.round(jitterMs * 10) / 10;
}
