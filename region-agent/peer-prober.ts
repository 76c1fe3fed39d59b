import type { ConnectionOptions } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import { Pool } from 'undici';
import { RttEstimator } from '../shared/rtt.ts';
import type { PeerInfo, RttStats } from '../shared/schemas/index.ts';
import { Ticker } from '../shared/ticker.ts';

export interface PeerProberOptions {
  selfNodeId: string;
  peerRoutes: ReadonlyMap<string, string>;
  intervalMs: number;
  timeoutMs: number;
  rttEwmaAlpha: number;
  lossWindow: number;
  /** TLS options of the probe connections (GEO_SFU_TLS_CA_FILE). */
  tls?: ConnectionOptions;
  logger: FastifyBaseLogger;
}

export interface PeerStatus {
  nodeId: string;
  region: string;
  /** The URL actually probed (the peer's probeUrl, or its route from GEO_SFU_PEER_ROUTES). */
  probeUrl: string;
  rtt: RttStats;
}

interface Peer {
  info: PeerInfo;
  target: URL;
  pool: Pool;
  estimator: RttEstimator;
  probing: boolean;
  /** Connections the pool opened; a probe during which it grew paid a TCP (and TLS) handshake. */
  connects: number;
}

/**
 * Measures RTT to every peer agent the router lists, by timing GET <probeUrl> over a kept-alive
 * connection (so a sample is one request/response round trip, not a TCP handshake).
 */
export class PeerProber {
  readonly #peers = new Map<string, Peer>();
  readonly #ticker: Ticker;
  #closed = false;

  constructor(private readonly opts: PeerProberOptions) {
    this.#ticker = new Ticker(opts.intervalMs, async () => this.#probeAll(), (err) => opts.logger.error({ err }, 'peer probing failed'));
  }

  start(): void {
    this.#ticker.start();
  }

  /** Replaces the peer set with the router's latest list; peers no longer listed are dropped. */
  setPeers(peers: readonly PeerInfo[]): void {
    if (this.#closed) return;
    const listed = new Map(peers.filter((p) => p.nodeId !== this.opts.selfNodeId).map((p) => [p.nodeId, p]));
    for (const [nodeId, peer] of this.#peers) {
      const next = listed.get(nodeId);
      // A peer that came back at another URL is a new peer: its old figures say nothing about it.
      if (!next || this.#targetOf(next).href !== peer.target.href) this.#drop(nodeId, next ? 'moved' : 'no longer listed');
      else peer.info = next;
    }
    for (const [nodeId, info] of listed) {
      if (this.#peers.has(nodeId)) continue;
      let target: URL;
      try {
        target = this.#targetOf(info);
      } catch {
        this.opts.logger.warn({ peer: nodeId, probeUrl: info.probeUrl }, 'peer has an unusable probe URL; not probing it');
        continue;
      }
      this.#peers.set(nodeId, {
        info,
        target,
        // One connection: every probe reuses the warm socket; a second would pay a handshake.
        pool: new Pool(target.origin, { connections: 1, connect: { ...this.opts.tls, timeout: this.opts.timeoutMs } }),
        estimator: new RttEstimator(this.opts.rttEwmaAlpha, this.opts.lossWindow),
        probing: false,
        connects: 0,
      });
      const added = this.#peers.get(nodeId)!;
      added.pool.on('connect', () => added.connects++);
      this.opts.logger.info({ peer: nodeId, region: info.region, probeUrl: target.href }, 'probing peer');
    }
  }

  /** RTT stats by peer node id, as the heartbeat carries them. */
  rtt(): Record<string, RttStats> {
    return Object.fromEntries([...this.#peers].map(([nodeId, peer]) => [nodeId, peer.estimator.stats()]));
  }

  peers(): PeerStatus[] {
    return [...this.#peers.values()].map((p) => ({ nodeId: p.info.nodeId, region: p.info.region, probeUrl: p.target.href, rtt: p.estimator.stats() }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ticker.stop();
    const pools = [...this.#peers.values()].map((p) => p.pool);
    this.#peers.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }

  #targetOf(info: PeerInfo): URL {
    const route = this.opts.peerRoutes.get(info.nodeId);
    return new URL(route === undefined ? info.probeUrl : `${route}/probe`);
  }

  #drop(nodeId: string, why: string): void {
    const peer = this.#peers.get(nodeId);
    if (!peer) return;
    this.#peers.delete(nodeId);
    peer.pool.destroy().catch(() => undefined);
    this.opts.logger.info({ peer: nodeId }, `stopped probing peer (${why})`);
  }

  #probeAll(): void {
    // Not awaited: a peer that times out must not hold back the probes of the others.
    for (const peer of this.#peers.values()) if (!peer.probing) void this.#probe(peer);
  }

  async #probe(peer: Peer): Promise<void> {
    peer.probing = true;
    const startedAt = performance.now();
    const connectsBefore = peer.connects;
    try {
      const res = await peer.pool.request({
        method: 'GET',
        path: peer.target.pathname + peer.target.search,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      await res.body.dump();
      const rttMs = performance.now() - startedAt;
      if (this.#peers.get(peer.info.nodeId) !== peer) return;
      if (res.statusCode >= 200 && res.statusCode < 300) {
        // A probe that had to connect measured the handshake too (a TLS one can take hundreds of ms): not an RTT.
        if (peer.connects === connectsBefore) peer.estimator.addSample(rttMs);
      } else {
        peer.estimator.addLoss();
        this.opts.logger.debug({ peer: peer.info.nodeId, statusCode: res.statusCode }, 'peer probe refused');
      }
    } catch (err) {
      if (this.#peers.get(peer.info.nodeId) !== peer) return;
      peer.estimator.addLoss();
      this.opts.logger.debug({ peer: peer.info.nodeId, err: (err as Error).message }, 'peer probe lost');
    } finally {
      peer.probing = false;
    }
  }
}
