import type { ChildProcess } from 'node:child_process';
import { RelayMesh, type UdpRelay } from './udp-relay.ts';
import { interRegionLink, type WanProfile } from './wan-profile.ts';

/**
 * WAN emulation for the media between regions: the launcher owns one delaying UDP relay per
 * (room, pair of nodes in different regions), and each agent, started through
 * infra/embedded/relayed-agent.ts, asks it over the child-process IPC channel where to send its
 * pipe transport's packets instead of the other agent's real endpoint. One way of a pair is
 * delayed by half the profile's inter-region RTT, so the cascade's media crosses the same
 * emulated link as the agents' HTTP (the TCP delay proxies), with the profile's loss and jitter
 * on top (media only: TCP would hide them). A relay (two UDP sockets) lives
 * until the launcher closes: a link set up again between the same nodes reuses it.
 */

/** Agent → launcher: the cascade's rewriteRemoteEndpoint context. */
export interface PipeRelayRequest {
  type: 'geo-sfu:pipe-relay';
  id: number;
  roomId: string;
  localNodeId: string;
  remoteNodeId: string;
  ip: string;
  port: number;
}

/** Launcher → agent: the address to connect to instead (or why not). */
export type PipeRelayAnswer = { type: 'geo-sfu:pipe-relay'; id: number; ip: string; port: number } | { type: 'geo-sfu:pipe-relay'; id: number; error: string };

export interface PipeRelayView {
  roomId: string;
  /** The two nodes (side a first: the lower node id) and their regions. */
  nodes: [string, string];
  regions: [string, string];
  /** Configured one-way delay, ms, and each direction's jitter (± ms) and loss (%). */
  oneWayDelayMs: number;
  jitterMs: number;
  lossPct: number;
  relay: UdpRelay;
}

/** A request (launcher side) or an answer (agent side) of this protocol. */
export function isPipeRelayMessage(msg: unknown): msg is { type: 'geo-sfu:pipe-relay'; id: number } {
  const m = msg as { type?: unknown; id?: unknown } | null;
  return typeof m === 'object' && m !== null && m.type === 'geo-sfu:pipe-relay' && typeof m.id === 'number';
}

export class PipeRelays {
  readonly #mesh: RelayMesh;
  readonly #regionOf: (nodeId: string) => string;
  readonly #profile: WanProfile;

  constructor(profile: WanProfile, regionOf: (nodeId: string) => string) {
    this.#profile = profile;
    this.#regionOf = regionOf;
    this.#mesh = new RelayMesh(regionOf, (a, b) => {
      const { oneWayDelayMs, jitterMs, lossPct } = interRegionLink(this.#profile, a, b);
      const direction = { delayMs: oneWayDelayMs, jitterMs, loss: lossPct / 100 };
      return { ab: direction, ba: { ...direction } };
    });
  }

  /** Answers a child's relay requests for as long as it runs. */
  serve(child: ChildProcess): void {
    child.on('message', (msg: unknown) => {
      if (!isPipeRelayMessage(msg)) return;
      const request = msg as PipeRelayRequest;
      this.#mesh
        .hook(request)
        .then(
          ({ ip, port }): PipeRelayAnswer => ({ type: 'geo-sfu:pipe-relay', id: request.id, ip, port }),
          (err: unknown): PipeRelayAnswer => ({ type: 'geo-sfu:pipe-relay', id: request.id, error: (err as Error).message }),
        )
        .then((answer) => {
          if (child.connected) child.send(answer);
        });
    });
  }

  /** Every relay opened so far, with its measured traffic (`relay.stats`). */
  list(): PipeRelayView[] {
    return [...this.#mesh.relays.entries()].map(([key, relay]) => {
      const [roomId, a, b] = key.split('|') as [string, string, string];
      const regions: [string, string] = [this.#regionOf(a), this.#regionOf(b)];
      return { roomId, nodes: [a, b], regions, ...interRegionLink(this.#profile, ...regions), relay };
    });
  }

  close(): void {
    this.#mesh.close();
  }
}
