import type { ConnectionOptions } from 'node:tls';
import { Pool } from 'undici';
import type { RttStats } from '../../shared/schemas/index.ts';
import { RttEstimator } from '../../shared/rtt.ts';
import { Ticker } from '../../shared/ticker.ts';

export interface ProbeTarget {
  nodeId: string;
  probeUrl: string;
}

export interface ProberOptions {
  intervalMs: number;
  timeoutMs: number;
  ewmaAlpha: number;
  lossWindow: number;
  /** TLS options of the probe connections (GEO_SFU_TLS_CA_FILE). */
  tls?: ConnectionOptions;
  /** Current targets (read every round, so nodes come and go without restarts). */
  targets: () => readonly ProbeTarget[];
  /** Observes each probe outcome (metrics). */
  onProbe?: (nodeId: string, rttMs: number | null) => void;
}

interface ProbeState {
  url: URL;
  pool: Pool;
  estimator: RttEstimator;
  inFlight: boolean;
  /** Connections the pool opened; a probe during which it grew paid a TCP (and TLS) handshake. */
  connects: number;
}

/**
 * Probes every node's probe URL on an interval over keep-alive connections (one undici Pool per
 * node; a probe that had to open a connection is not counted, so no handshake is) and keeps smoothed RTT,
 * jitter and loss per node. A probe that does not answer within the timeout counts as lost.
 */
export class Prober {
  readonly #states = new Map<string, ProbeState>();
  // Each round only starts probes (a node's next probe waits for its last): rounds never overlap.
  readonly #ticker: Ticker;

  constructor(private readonly opts: ProberOptions) {
    this.#ticker = new Ticker(opts.intervalMs, async () => this.round(), () => undefined, { unref: true });
  }

  start(): void {
    this.#ticker.start();
  }

  stats(nodeId: string): RttStats {
    return this.#states.get(nodeId)?.estimator.stats() ?? { rttMs: null, medianMs: null, jitterMs: 0, loss: 0, samples: 0 };
  }

  /** One probe to every current target; targets that disappeared are dropped. */
  round(): void {
    const targets = this.opts.targets();
    const current = new Set(targets.map((t) => t.nodeId));
    for (const [nodeId, state] of this.#states) {
      if (!current.has(nodeId)) {
        this.#states.delete(nodeId);
        state.pool.close().catch(() => undefined); // nobody awaits it; a pool already closed has nothing to release
      }
    }
    for (const target of targets) {
      let state = this.#states.get(target.nodeId);
      if (state && state.url.href !== target.probeUrl) {
        state.pool.close().catch(() => undefined); // nobody awaits it; a pool already closed has nothing to release
        state = undefined;
      }
      if (!state) {
        const url = new URL(target.probeUrl);
        state = {
          url,
          pool: new Pool(url.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000, connect: this.opts.tls }),
          estimator: new RttEstimator(this.opts.ewmaAlpha, this.opts.lossWindow),
          inFlight: false,
          connects: 0,
        };
        const opened = state;
        opened.pool.on('connect', () => opened.connects++);
        this.#states.set(target.nodeId, state);
      }
      if (!state.inFlight) void this.#probe(target.nodeId, state);
    }
  }

  async #probe(nodeId: string, state: ProbeState): Promise<void> {
    state.inFlight = true;
    const started = performance.now();
    const connectsBefore = state.connects;
    let rttMs: number | null = null;
    try {
      const res = await state.pool.request({
        method: 'GET',
        path: state.url.pathname + state.url.search,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode < 500) rttMs = performance.now() - started;
    } catch {
      // Timeout, refused or reset: a lost probe.
    } finally {
      state.inFlight = false;
    }
    if (this.#states.get(nodeId) !== state) return;
    // A probe that had to connect measured the handshake too (a TLS one can take hundreds of ms): not an RTT.
    if (rttMs !== null && state.connects !== connectsBefore) return;
    if (rttMs === null) state.estimator.addLoss();
    else state.estimator.addSample(rttMs);
    this.opts.onProbe?.(nodeId, rttMs);
  }

  async close(): Promise<void> {
    await this.#ticker.stop();
    const pools = [...this.#states.values()].map((s) => s.pool.close());
    this.#states.clear();
    await Promise.allSettled(pools);
  }
}
