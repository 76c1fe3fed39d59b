import type { ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { bindUdp, type DirectionProfile, type DirectionStats, ShapedDirection } from './udp-relay.ts';
import { clientLink, type ClientLink, type WanProfile } from './wan-profile.ts';

/**
 * WAN emulation for clients' media (the profile's `clientLossPct` / `clientJitterMs`): the
 * launcher puts a UDP relay in front of each WebRTC port of the agents of an impaired region.
 *
 *   client ──▶ 127.a.b.c:P ──(up: delay, jitter, loss)──▶ [one socket per client] ──▶ 127.0.0.1:P (WebRtcServer)
 *   client ◀── 127.a.b.c:P ◀──(down: delay, jitter, loss)── [that client's socket] ◀── 127.0.0.1:P
 *
 * Such an agent is started through infra/embedded/relayed-agent.ts with its own loopback address
 * 127.a.b.c (any 127/8 address is local on Linux), which its WebRtcServers announce in their ICE
 * candidates instead of their listen address, on their own ports; over the child-process IPC
 * channel it reports those ports (again when a worker is replaced) and waits for the relays to be
 * bound before it registers. A relay is a userspace NAT: one upstream socket per client address,
 * so that mediasoup's ICE-lite sees every client as a tuple of its own. Each direction is shaped
 * as the pipe relays' are (udp-relay.ts ShapedDirection): half the region's clientRttMs, ± the
 * jitter (never below 0), and the loss, per direction. UDP only: the TCP candidates the agent
 * announces lead nowhere (connection refused), so clients use UDP, where the impairments apply.
 * Signaling and probes keep going through the TCP delay proxies (launcher.ts).
 */

export interface Address {
  ip: string;
  port: number;
}

/** Agent → launcher: the UDP sockets of its WebRtcServers, all of them (each time they change). */
export interface ClientRelayRequest {
  type: 'geo-sfu:client-relay';
  id: number;
  sockets: Address[];
}

/** Launcher → agent: the relays are bound (or why not). */
export type ClientRelayAnswer = { type: 'geo-sfu:client-relay'; id: number; ok: true } | { type: 'geo-sfu:client-relay'; id: number; error: string };

/** A request (launcher side) or an answer (agent side) of this protocol. */
export function isClientRelayMessage(msg: unknown): msg is { type: 'geo-sfu:client-relay'; id: number } {
  const m = msg as { type?: unknown; id?: unknown } | null;
  return typeof m === 'object' && m !== null && m.type === 'geo-sfu:client-relay' && typeof m.id === 'number';
}

/** A client tuple without a packet either way for this long loses its upstream socket. */
const IDLE_MS = 60_000;

interface Tuple {
  upstream: Socket;
  lastPacketAt: number;
}

/** The relay in front of one WebRTC port: `up` is client → SFU, `down` SFU → client. */
export class ClientMediaRelay {
  readonly stats: { up: DirectionStats; down: DirectionStats };
  readonly target: Address;
  readonly #front: Socket;
  readonly #directions: { up: ShapedDirection; down: ShapedDirection };
  readonly #tuples = new Map<string, Tuple>();
  readonly #sweeper: NodeJS.Timeout;
  #clientsSeen = 0;
  #closed = false;

  private constructor(front: Socket, target: Address, profile: DirectionProfile) {
    this.#front = front;
    this.target = { ...target };
    this.#directions = { up: new ShapedDirection(profile), down: new ShapedDirection(profile) };
    this.stats = { up: this.#directions.up.stats, down: this.#directions.down.stats };
    front.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo));
    // A send that fails (the client went away) must not end the launcher.
    front.on('error', () => undefined);
    this.#sweeper = setInterval(() => this.#sweep(), IDLE_MS / 2);
    this.#sweeper.unref();
  }

  /** Listens on `listen` (its port must be free on that address) and forwards to `target`. */
  static async open(listen: Address, target: Address, profile: DirectionProfile): Promise<ClientMediaRelay> {
    return new ClientMediaRelay(await bindUdp(listen.ip, listen.port), target, profile);
  }

  /** Where clients send (what the agent announces). */
  get address(): Address {
    const { address, port } = this.#front.address();
    return { ip: address, port };
  }

  /** Client addresses with an upstream socket now, and all seen so far. */
  get clients(): { live: number; seen: number } {
    return { live: this.#tuples.size, seen: this.#clientsSeen };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#directions.up.close();
    this.#directions.down.close();
    for (const s of [this.#front, ...[...this.#tuples.values()].map((t) => t.upstream)]) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
    this.#tuples.clear();
  }

  #fromClient(msg: Buffer, client: { address: string; port: number }): void {
    if (this.#closed) return;
    const key = `${client.address}:${client.port}`;
    let tuple = this.#tuples.get(key);
    if (!tuple) {
      // Bound at once; Node queues what is sent before the bind completes.
      const upstream = createSocket('udp4');
      upstream.on('error', () => undefined);
      upstream.bind(0, this.target.ip === '0.0.0.0' ? '127.0.0.1' : this.target.ip);
      const created: Tuple = { upstream, lastPacketAt: performance.now() };
      upstream.on('message', (reply) => {
        if (this.#closed) return;
        created.lastPacketAt = performance.now();
        this.#directions.down.forward(reply, () => this.#front.send(reply, client.port, client.address));
      });
      this.#tuples.set(key, created);
      this.#clientsSeen++;
      tuple = created;
    }
    tuple.lastPacketAt = performance.now();
    const { upstream } = tuple;
    this.#directions.up.forward(msg, () => {
      try {
        upstream.send(msg, this.target.port, this.target.ip);
      } catch {
        // the tuple was swept meanwhile
      }
    });
  }

  #sweep(): void {
    const now = performance.now();
    for (const [key, tuple] of this.#tuples) {
      if (now - tuple.lastPacketAt < IDLE_MS) continue;
      this.#tuples.delete(key);
      try {
        tuple.upstream.close();
      } catch {
        // already closed
      }
    }
  }
}

export interface ClientRelayView {
  nodeId: string;
  region: string;
  /** Configured one-way delay, ms, and each direction's jitter (± ms) and loss (%). */
  oneWayDelayMs: number;
  jitterMs: number;
  lossPct: number;
  /** relay.address: where clients send; relay.target: the agent's WebRtcServer. */
  relay: ClientMediaRelay;
}

/** Both directions' counts summed over relays. */
export interface ClientRelayTotals {
  up: { packets: number; bytes: number; dropped: number };
  down: { packets: number; bytes: number; dropped: number };
}

/**
 * The launcher's client media relays: an address per agent of an impaired region, and the
 * relays of each such agent's WebRTC ports once it has reported them.
 */
export class ClientRelays {
  readonly #profile: WanProfile;
  readonly #agents = new Map<string, { region: string; ip: string; link: ClientLink }>();
  readonly #relays = new Map<string, Map<number, ClientMediaRelay>>();
  /** Reports of one agent are applied one after the other. */
  readonly #queues = new Map<string, Promise<unknown>>();
  #closed = false;

  /** `agents`: the launcher's plan; those of regions the profile impairs get an address. */
  constructor(profile: WanProfile, agents: ReadonlyArray<{ nodeId: string; region: string }>) {
    this.#profile = profile;
    // A random 127.a.b.0/24 per launcher, so that two launchers on one machine do not meet.
    const a = 1 + Math.floor(Math.random() * 254);
    const b = Math.floor(Math.random() * 256);
    let host = 0;
    for (const { nodeId, region } of agents) {
      const link = clientLink(profile, region);
      if (!link) continue;
      host++;
      if (host > 254) throw new Error('client media relays: at most 254 agents');
      this.#agents.set(nodeId, { region, ip: `127.${a}.${b}.${host}`, link });
    }
  }

  /** True when some region's client links are impaired. */
  get active(): boolean {
    return this.#agents.size > 0;
  }

  /** The address an agent announces to clients, when its region's client links are impaired. */
  addressOf(nodeId: string): string | undefined {
    return this.#agents.get(nodeId)?.ip;
  }

  /** Answers an agent's reports for as long as it runs. */
  serve(child: ChildProcess, nodeId: string): void {
    child.on('message', (msg: unknown) => {
      if (!isClientRelayMessage(msg)) return;
      const request = msg as ClientRelayRequest;
      this.setSockets(nodeId, Array.isArray(request.sockets) ? request.sockets : [])
        .then(
          (): ClientRelayAnswer => ({ type: 'geo-sfu:client-relay', id: request.id, ok: true }),
          (err: unknown): ClientRelayAnswer => ({ type: 'geo-sfu:client-relay', id: request.id, error: (err as Error).message }),
        )
        .then((answer) => {
          if (child.connected) child.send(answer);
        });
    });
  }

  /** Relays for exactly these WebRTC sockets of an agent (ports no longer listed lose theirs). */
  setSockets(nodeId: string, sockets: readonly Address[]): Promise<void> {
    const previous = this.#queues.get(nodeId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#apply(nodeId, sockets));
    this.#queues.set(nodeId, next);
    return next;
  }

  async #apply(nodeId: string, sockets: readonly Address[]): Promise<void> {
    const agent = this.#agents.get(nodeId);
    if (!agent) throw new Error(`${nodeId}: its region's client links are not emulated`);
    if (this.#closed) throw new Error('the launcher is closing');
    const relays = this.#relays.get(nodeId) ?? new Map<number, ClientMediaRelay>();
    this.#relays.set(nodeId, relays);
    const wanted = new Map(sockets.filter((s) => Number.isInteger(s.port) && s.port > 0 && typeof s.ip === 'string').map((s) => [s.port, s]));
    for (const [port, relay] of relays) {
      const target = wanted.get(port);
      if (target && target.ip === relay.target.ip) continue;
      relay.close();
      relays.delete(port);
    }
    const { oneWayDelayMs, jitterMs, lossPct } = agent.link;
    for (const [port, target] of wanted) {
      if (relays.has(port)) continue;
      const relay = await ClientMediaRelay.open({ ip: agent.ip, port }, target, { delayMs: oneWayDelayMs, jitterMs, loss: lossPct / 100 }).catch((err: unknown) => {
        throw new Error(`cannot relay ${agent.ip}:${port} to ${target.ip}:${port}: ${(err as Error).message}`);
      });
      if (this.#closed) {
        relay.close();
        throw new Error('the launcher is closing');
      }
      relays.set(port, relay);
    }
  }

  /** Every relay open now, with its measured traffic (`relay.stats`). */
  list(): ClientRelayView[] {
    return [...this.#relays.entries()].flatMap(([nodeId, relays]) => {
      const agent = this.#agents.get(nodeId)!;
      return [...relays.values()].map((relay) => ({ nodeId, region: agent.region, ...agent.link, relay }));
    });
  }

  /** Packets, bytes and drops per direction over the relays of a region (or of all regions). */
  totals(region?: string): ClientRelayTotals {
    const zero = () => ({ packets: 0, bytes: 0, dropped: 0 });
    const totals = { up: zero(), down: zero() };
    for (const view of this.list()) {
      if (region !== undefined && view.region !== region) continue;
      for (const dir of ['up', 'down'] as const) {
        const s = view.relay.stats[dir];
        totals[dir].packets += s.packets;
        totals[dir].bytes += s.bytes;
        totals[dir].dropped += s.dropped;
      }
    }
    return totals;
  }

  close(): void {
    this.#closed = true;
    for (const relays of this.#relays.values()) for (const relay of relays.values()) relay.close();
    this.#relays.clear();
  }
}
