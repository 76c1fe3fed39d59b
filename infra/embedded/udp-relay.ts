/**
 * WAN emulation for UDP (pipe transports between regions): a userspace relay with a one-way
 * delay, jitter and loss per direction.
 *
 *   side A ──▶ [socket facing A] ──(a→b: delay, jitter, loss)──▶ [socket facing B] ──▶ side B
 *   side A ◀── [socket facing A] ◀──(b→a: delay, jitter, loss)── [socket facing B] ◀── side B
 *
 * A PipeTransport drops packets from any address other than the one it connected to, so each side
 * must connect to the socket facing it (`facing('a')` is what A is told the other side is), and
 * the relay sends toward each side from that same socket. The real endpoints are given with
 * `setTarget()` (the cascade's address-rewrite hook does it); a side that sends first is also
 * learnt from its packets. `RelayMesh` makes that hook for a set of nodes: one relay per
 * (room, node pair), with the delay of the pair's regions.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface DirectionProfile {
  /** One-way delay, ms. */
  delayMs: number;
  /** Uniform jitter ± ms around the delay (packets may be reordered). Default 0. */
  jitterMs?: number;
  /** Loss fraction 0..1. Default 0. */
  loss?: number;
}

export type Side = 'a' | 'b';

export interface DirectionStats {
  /** Packets accepted for forwarding (the dropped ones excluded). */
  packets: number;
  bytes: number;
  dropped: number;
  /** Packets sent on after their delay, and the sum and maximum of the time each was held, ms (measured, timer lateness included). */
  forwarded: number;
  heldTotalMs: number;
  heldMaxMs: number;
  /** Packets that looked like RTP (not RTCP), by SSRC (readable under SRTP: the header is clear). */
  rtpBySsrc: Map<number, number>;
  /**
   * RTCP generic NACKs (RFC 4585) forwarded, and the packets they asked for again. Readable only
   * on a link without SRTP (SRTCP encrypts all but the first header of a compound packet).
   */
  nacks: number;
  nackedPackets: number;
}

interface Address {
  ip: string;
  port: number;
}

const newStats = (): DirectionStats => ({ packets: 0, bytes: 0, dropped: 0, forwarded: 0, heldTotalMs: 0, heldMaxMs: 0, rtpBySsrc: new Map(), nacks: 0, nackedPackets: 0 });

/** A UDP socket bound to `ip`:`port` (0: any free port). */
export function bindUdp(ip: string, port = 0): Promise<Socket> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, ip, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** RTP vs RTCP (RFC 5761) — and the SSRC of an RTP packet. */
function rtpSsrc(packet: Buffer): number | undefined {
  if (packet.length < 12 || (packet[0]! & 0xc0) !== 0x80) return undefined;
  const pt = packet[1]! & 0x7f;
  if (pt >= 64 && pt <= 95) return undefined; // RTCP (192..223 with the marker bit)
  return packet.readUInt32BE(8);
}

/**
 * The generic NACKs of a plain compound RTCP packet: messages, and packets asked for (each FCI
 * entry names one packet plus a bitmask of the 16 after it). Zero when the packet does not parse
 * as plain RTCP to its last byte (SRTCP, or not RTCP at all).
 */
export function rtcpNacks(packet: Buffer): { nacks: number; packets: number } {
  let nacks = 0;
  let packets = 0;
  for (let at = 0; at < packet.length; ) {
    if (packet.length - at < 4 || (packet[at]! & 0xc0) !== 0x80) return { nacks: 0, packets: 0 };
    const end = at + (packet.readUInt16BE(at + 2) + 1) * 4;
    if (end > packet.length) return { nacks: 0, packets: 0 };
    // RTPFB (205) with FMT 1: header, sender SSRC, media SSRC, then 4-byte FCI entries.
    if (packet[at + 1] === 205 && (packet[at]! & 0x1f) === 1) {
      nacks++;
      for (let fci = at + 12; fci + 4 <= end; fci += 4) {
        let mask = packet.readUInt16BE(fci + 2);
        packets++;
        for (; mask !== 0; mask &= mask - 1) packets++;
      }
    }
    at = end;
  }
  return { nacks, packets };
}

/**
 * One direction of an emulated link: each packet is lost with the profile's probability or sent
 * on after its one-way delay, ± a uniform jitter (never below 0, so packets may be reordered),
 * and counted in `stats`. The UDP relays (this file's, and the client media relays of
 * client-relays.ts) shape every direction with one of these.
 */
export class ShapedDirection {
  readonly stats: DirectionStats = newStats();
  #profile: DirectionProfile;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(profile: DirectionProfile) {
    this.#profile = { ...profile };
  }

  get profile(): DirectionProfile {
    return { ...this.#profile };
  }

  set profile(profile: DirectionProfile) {
    this.#profile = { ...profile };
  }

  /** A packet that could not be forwarded (no one to send it to): counted as dropped. */
  drop(): void {
    this.stats.dropped++;
  }

  /**
   * Counts `msg` and, unless the profile loses it, calls `accepted` at once and `send` after its
   * delay. False when it was lost (or the direction is closed).
   */
  forward(msg: Buffer, send: () => void, accepted?: () => void): boolean {
    if (this.#closed) return false;
    const { stats } = this;
    const profile = this.#profile;
    if ((profile.loss ?? 0) > Math.random()) {
      stats.dropped++;
      return false;
    }
    stats.packets++;
    stats.bytes += msg.length;
    const ssrc = rtpSsrc(msg);
    if (ssrc !== undefined) stats.rtpBySsrc.set(ssrc, (stats.rtpBySsrc.get(ssrc) ?? 0) + 1);
    else if (msg.length >= 8) {
      const { nacks, packets } = rtcpNacks(msg);
      stats.nacks += nacks;
      stats.nackedPackets += packets;
    }
    accepted?.();
    const jitter = profile.jitterMs ? (Math.random() * 2 - 1) * profile.jitterMs : 0;
    const delay = Math.max(0, profile.delayMs + jitter);
    const receivedAt = performance.now();
    const release = () => {
      if (this.#closed) return;
      const held = performance.now() - receivedAt;
      stats.forwarded++;
      stats.heldTotalMs += held;
      if (held > stats.heldMaxMs) stats.heldMaxMs = held;
      send();
    };
    if (delay === 0) {
      release();
      return true;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      release();
    }, delay);
    this.#timers.add(timer);
    return true;
  }

  /** Packets still held are never sent. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}

export class UdpRelay {
  readonly #sockets: Record<Side, Socket>;
  readonly #targets: Record<Side, Address | undefined> = { a: undefined, b: undefined };
  readonly #directions: { ab: ShapedDirection; ba: ShapedDirection };
  readonly stats: { ab: DirectionStats; ba: DirectionStats };
  /** Sees every packet forwarded (before the delay). */
  inspect: ((direction: 'ab' | 'ba', packet: Buffer) => void) | undefined;
  #closed = false;

  private constructor(a: Socket, b: Socket, profiles: { ab: DirectionProfile; ba: DirectionProfile }) {
    this.#sockets = { a, b };
    this.#directions = { ab: new ShapedDirection(profiles.ab), ba: new ShapedDirection(profiles.ba) };
    this.stats = { ab: this.#directions.ab.stats, ba: this.#directions.ba.stats };
    a.on('message', (msg, rinfo) => this.#onMessage('a', msg, rinfo));
    b.on('message', (msg, rinfo) => this.#onMessage('b', msg, rinfo));
  }

  /** Two sockets on `ip` (default 127.0.0.1); `ab` shapes A→B, `ba` B→A. */
  static async open(profiles: { ab: DirectionProfile; ba: DirectionProfile }, ip = '127.0.0.1'): Promise<UdpRelay> {
    const [a, b] = await Promise.all([bindUdp(ip), bindUdp(ip)]);
    return new UdpRelay(a, b, profiles);
  }

  /** The address to give side `side` as "the other side". */
  facing(side: Side): Address {
    const { address, port } = this.#sockets[side].address();
    return { ip: address, port };
  }

  /** The real address of side `side` (where packets towards it go). */
  setTarget(side: Side, target: Address): void {
    this.#targets[side] = { ...target };
  }

  setProfile(direction: 'ab' | 'ba', profile: DirectionProfile): void {
    this.#directions[direction].profile = profile;
  }

  /** SSRCs of RTP packets seen in either direction. */
  ssrcs(): Set<number> {
    return new Set([...this.stats.ab.rtpBySsrc.keys(), ...this.stats.ba.rtpBySsrc.keys()]);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#directions.ab.close();
    this.#directions.ba.close();
    for (const s of Object.values(this.#sockets)) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }

  #onMessage(from: Side, msg: Buffer, rinfo: { address: string; port: number }): void {
    if (this.#closed) return;
    const to: Side = from === 'a' ? 'b' : 'a';
    // Learn a side from its own packets when it was not given.
    this.#targets[from] ??= { ip: rinfo.address, port: rinfo.port };
    const direction = from === 'a' ? 'ab' : 'ba';
    const target = this.#targets[to];
    if (!target) {
      this.#directions[direction].drop();
      return;
    }
    this.#directions[direction].forward(
      msg,
      () => this.#sockets[to].send(msg, target.port, target.ip),
      () => this.inspect?.(direction, msg),
    );
  }
}

/** One-way profile between two regions (symmetric unless given per direction). */
export type RegionDelays = (regionA: string, regionB: string) => { ab: DirectionProfile; ba: DirectionProfile };

/**
 * Relays for a cascade mesh: `hook` is a Cascade `rewriteRemoteEndpoint` that puts a relay (one
 * per room and node pair, side 'a' = the lower nodeId) between the two pipe transports.
 */
export class RelayMesh {
  readonly relays = new Map<string, UdpRelay>();
  readonly #pending = new Map<string, Promise<UdpRelay>>();
  readonly #regionOf: (nodeId: string) => string;
  readonly #delays: RegionDelays;

  constructor(regionOf: (nodeId: string) => string, delays: RegionDelays) {
    this.#regionOf = regionOf;
    this.#delays = delays;
  }

  static key(roomId: string, n1: string, n2: string): string {
    const [a, b] = n1 < n2 ? [n1, n2] : [n2, n1];
    return `${roomId}|${a}|${b}`;
  }

  relay(roomId: string, n1: string, n2: string): UdpRelay | undefined {
    return this.relays.get(RelayMesh.key(roomId, n1, n2));
  }

  /** Relays of one room. */
  ofRoom(roomId: string): UdpRelay[] {
    return [...this.relays.entries()].filter(([k]) => k.startsWith(`${roomId}|`)).map(([, r]) => r);
  }

  readonly hook = async (ctx: { roomId: string; localNodeId: string; remoteNodeId: string; ip: string; port: number }): Promise<{ ip: string; port: number }> => {
    const key = RelayMesh.key(ctx.roomId, ctx.localNodeId, ctx.remoteNodeId);
    let relay = this.relays.get(key);
    if (!relay) {
      let pending = this.#pending.get(key);
      if (!pending) {
        const [a, b] = ctx.localNodeId < ctx.remoteNodeId ? [ctx.localNodeId, ctx.remoteNodeId] : [ctx.remoteNodeId, ctx.localNodeId];
        pending = UdpRelay.open(this.#delays(this.#regionOf(a), this.#regionOf(b)));
        this.#pending.set(key, pending);
      }
      relay = await pending;
      this.relays.set(key, relay);
      this.#pending.delete(key);
    }
    const local: Side = ctx.localNodeId < ctx.remoteNodeId ? 'a' : 'b';
    const remote: Side = local === 'a' ? 'b' : 'a';
    // We are told where the remote side is: that is the relay's target for it; we send to the socket facing us.
    relay.setTarget(remote, { ip: ctx.ip, port: ctx.port });
    return relay.facing(local);
  };

  close(): void {
    for (const r of this.relays.values()) r.close();
    this.relays.clear();
  }
}
