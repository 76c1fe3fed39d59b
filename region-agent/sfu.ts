import { availableParallelism } from 'node:os';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { ID_PATTERN, type ParticipantQuality, type TrackQuality, TRACKS_PER_PARTICIPANT } from '../shared/schemas/index.ts';
import { collectSfuLoad, type ParticipantQualityStats, RoomRouter, type TrackQualityStats, type types as ms, WorkerPool } from '../sfu/index.ts';
import type { SfuLoad } from './load.ts';

/**
 * The agent's SFU: a mediasoup WorkerPool (GEO_SFU_SFU_WORKERS, 0 = one per core) and the
 * RoomRouter on top of it. The agent reports its load and per-participant quality from it, the
 * signaling layer runs rooms on it, and the agent closes it when it closes.
 */
export class AgentSfu {
  #closed = false;

  private constructor(
    readonly pool: WorkerPool,
    readonly rooms: RoomRouter,
  ) {}

  static async create(config: GeoSfuConfig): Promise<AgentSfu> {
    const pool = await WorkerPool.create({
      numWorkers: config.sfuWorkers > 0 ? config.sfuWorkers : availableParallelism(),
      listenIp: config.rtcListenIp,
      ...(config.rtcAnnouncedAddress !== '' ? { announcedAddress: config.rtcAnnouncedAddress } : {}),
      portRange: { min: config.rtcMinPort, max: Math.max(config.rtcMinPort, config.rtcMaxPort) },
    });
    const rooms = new RoomRouter({
      pool,
      spread: { consumersPerWorker: config.consumersPerWorker },
      pipe: { enableSrtp: config.pipeEnableSrtp, enableRtx: config.pipeEnableRtx },
      keyFrameRequestDelayMs: config.keyFrameRequestDelayMs,
      keyFramesAhead: config.keyFramesAhead,
    });
    return new AgentSfu(pool, rooms);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The agent's load provider. */
  load = (): Promise<SfuLoad> => collectSfuLoad(this.pool, this.rooms);

  /**
   * Media quality of every participant (mediasoup stats) in the heartbeat's shape, and what the
   * participants' transports receive and send in all (the node's client bandwidth).
   */
  quality = async (): Promise<{ participants: ParticipantQuality[]; inBps: number; outBps: number }> => {
    const id = new RegExp(ID_PATTERN);
    const participants: ParticipantQuality[] = [];
    let inBps = 0;
    let outBps = 0;
    await Promise.all(
      [...this.rooms.rooms.values()].map(async (room) => {
        const stats = await room.getStats().catch(() => null);
        inBps += stats?.recvBitrate ?? 0;
        outBps += stats?.sendBitrate ?? 0;
        if (!id.test(room.id)) return;
        for (const p of stats?.participants ?? []) if (id.test(p.peerId)) participants.push(toParticipantQuality(room.id, p));
      }),
    );
    participants.sort((a, b) => a.roomId.localeCompare(b.roomId) || a.participantId.localeCompare(b.participantId));
    return { participants, inBps: bps(inBps), outBps: bps(outBps) };
  };

  /**
   * The routers' RTP capabilities, for a client of `roomId` that has not joined yet: its room's
   * own when the room is open, else the SFU's (the same: every router has the same codecs).
   */
  async routerRtpCapabilities(roomId: string): Promise<ms.RtpCapabilities> {
    const room = this.rooms.getRoom(roomId);
    if (room && !room.closed && room.routers.length > 0) return room.rtpCapabilities;
    return this.rooms.rtpCapabilities();
  }

  /** Closes every room, then the workers. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.rooms.close();
    this.pool.close();
  }
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

const tenth = (x: number) => Math.round(x * 10) / 10;
const bps = (x: number) => Math.max(0, Math.round(x));

export function toParticipantQuality(roomId: string, p: ParticipantQualityStats): ParticipantQuality {
  const losses = [p.lossReceived, p.lossSent].filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  // What it publishes first, then what it receives, the busiest first.
  const tracks = [...p.tracks].sort((a, b) => (a.direction === b.direction ? b.bitrateBps - a.bitrateBps : a.direction === 'in' ? -1 : 1)).slice(0, TRACKS_PER_PARTICIPANT);
  return {
    roomId,
    participantId: p.peerId,
    packetLoss: losses.length > 0 ? clamp01(Math.max(...losses)) : 0,
    rttMs: typeof p.rttMs === 'number' && p.rttMs >= 0 ? tenth(p.rttMs) : null,
    jitterMs: typeof p.jitterMs === 'number' && p.jitterMs >= 0 ? tenth(p.jitterMs) : null,
    bitrateBps: bps(p.sendBitrate + p.recvBitrate),
    inBps: bps(p.recvBitrate),
    outBps: bps(p.sendBitrate),
    ...(tracks.length > 0 ? { tracks: tracks.map(toTrackQuality) } : {}),
  };
}

function toTrackQuality(t: TrackQualityStats): TrackQuality {
  const layer = (x: number | undefined) => (x !== undefined && x >= 0 && x <= 15 ? { value: x } : null);
  const spatial = layer(t.spatialLayer);
  const temporal = layer(t.temporalLayer);
  return {
    direction: t.direction,
    kind: t.kind,
    producerId: t.producerId,
    paused: t.paused,
    bitrateBps: bps(t.bitrateBps),
    ...(t.loss !== undefined ? { loss: clamp01(Math.round(t.loss * 1000) / 1000) } : {}),
    ...(t.rttMs !== undefined && t.rttMs >= 0 ? { rttMs: tenth(t.rttMs) } : {}),
    ...(t.jitterMs !== undefined && t.jitterMs >= 0 ? { jitterMs: tenth(t.jitterMs) } : {}),
    ...(t.score !== undefined ? { score: Math.min(10, Math.max(0, t.score)) } : {}),
    spatialLayers: Math.min(16, Math.max(1, t.spatialLayers)),
    temporalLayers: Math.min(16, Math.max(1, t.temporalLayers)),
    ...(spatial ? { spatialLayer: spatial.value } : {}),
    ...(temporal ? { temporalLayer: temporal.value } : {}),
    ...(t.width !== undefined ? { width: t.width } : {}),
    ...(t.height !== undefined ? { height: t.height } : {}),
    ...(t.frameRate !== undefined ? { frameRate: Math.min(240, t.frameRate) } : {}),
  };
}
