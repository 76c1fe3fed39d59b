import { availableParallelism } from 'node:os';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { ID_PATTERN, type ParticipantQuality } from '../shared/schemas/index.ts';
import { collectSfuLoad, type ParticipantQualityStats, RoomRouter, type types as ms, WorkerPool } from '../sfu/index.ts';
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
    });
    return new AgentSfu(pool, rooms);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The agent's load provider. */
  load = (): Promise<SfuLoad> => collectSfuLoad(this.pool, this.rooms);

  /** Media quality of every participant (mediasoup stats), in the heartbeat's shape. */
  quality = async (): Promise<ParticipantQuality[]> => {
    const id = new RegExp(ID_PATTERN);
    const out: ParticipantQuality[] = [];
    await Promise.all(
      [...this.rooms.rooms.values()].map(async (room) => {
        if (!id.test(room.id)) return;
        const stats = await room.getStats().catch(() => null);
        for (const p of stats?.participants ?? []) if (id.test(p.peerId)) out.push(toParticipantQuality(room.id, p));
      }),
    );
    return out.sort((a, b) => a.roomId.localeCompare(b.roomId) || a.participantId.localeCompare(b.participantId));
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

export function toParticipantQuality(roomId: string, p: ParticipantQualityStats): ParticipantQuality {
  const losses = [p.lossReceived, p.lossSent].filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return {
    roomId,
    participantId: p.peerId,
    packetLoss: losses.length > 0 ? clamp01(Math.max(...losses)) : 0,
    rttMs: typeof p.rttMs === 'number' && p.rttMs >= 0 ? Math.round(p.rttMs * 10) / 10 : null,
    jitterMs: typeof p.jitterMs === 'number' && p.jitterMs >= 0 ? Math.round(p.jitterMs * 10) / 10 : null,
    bitrateBps: Math.max(0, Math.round(p.sendBitrate + p.recvBitrate)),
  };
}
