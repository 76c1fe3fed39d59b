import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Ticker } from '../../shared/ticker.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import { deliverSignedWebhook } from './webhook.ts';
import { evaluateScaling, type RegionScalingView, type ScalingDecision, type ScalingState } from './scaling.ts';

export interface ScalingManagerDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  now: () => number;
  /** Webhooks go out from the leader only, once per event across router replicas. */
  isLeader: () => boolean;
  /** Receives every decision (metrics, logs). */
  onDecision?: (decision: ScalingDecision) => void;
  /** Webhook delivery failed after every retry. */
  onWebhookFailure?: (decision: ScalingDecision, err: unknown) => void;
}

const HISTORY = 100;

/**
 * Runs `evaluateScaling` every tick on the registry snapshot and the allocations seen since the
 * last tick; keeps the recent decisions for GET /scaling and delivers each one to the optional
 * signed webhook, retried with backoff.
 */
export class ScalingManager {
  #state: ScalingState = new Map();
  #views: RegionScalingView[] = [];
  readonly #decisions: ScalingDecision[] = [];
  #overflows = new Map<string, number>();
  #clientRtts = new Map<string, number[]>();
  #ticker: Ticker | null = null;

  constructor(private readonly deps: ScalingManagerDeps) {}

  start(intervalMs: number): void {
    // tick() reports its own failures (webhook callbacks); nothing else can throw.
    this.#ticker = new Ticker(intervalMs, async () => void this.tick(), () => undefined);
    this.#ticker.start();
  }

  async stop(): Promise<void> {
    await this.#ticker?.stop();
  }

  /** One allocation: its edge region and the client's RTT to it; `overflowedFrom` the home it could not use. */
  observeAllocation(region: string, clientRttMs: number, overflowedFrom: string | null): void {
    const rtts = this.#clientRtts.get(region) ?? [];
    rtts.push(clientRttMs);
    this.#clientRtts.set(region, rtts);
    if (overflowedFrom !== null) this.#overflows.set(overflowedFrom, (this.#overflows.get(overflowedFrom) ?? 0) + 1);
  }

  tick(): ScalingDecision[] {
    const { config, registry, now } = this.deps;
    const snapshot = registry.snapshot();
    const observations = config.regions.map(({ id }) => {
      const usable = snapshot.nodes.filter((n) => n.region === id && n.state !== 'dead' && !n.draining && !n.cordoned);
      return {
        region: id,
        nodes: usable.length,
        meanStress: usable.length === 0 ? null : usable.reduce((sum, n) => sum + n.stress, 0) / usable.length,
        overflows: this.#overflows.get(id) ?? 0,
        clientRttMs: this.#clientRtts.get(id) ?? [],
      };
    });
    this.#overflows = new Map();
    this.#clientRtts = new Map();
    const result = evaluateScaling(this.#state, observations, now(), {
      windowMs: config.scalingWindowMs,
      scaleOutStress: config.scaleOutStress,
      scaleInStress: config.scaleInStress,
      cooldownMs: config.scalingCooldownMs,
      addRegionRttMs: config.addRegionRttMs,
      minRttSamples: 10,
    });
    this.#state = result.state;
    this.#views = result.views;
    for (const decision of result.decisions) {
      this.#decisions.unshift(decision);
      this.deps.onDecision?.(decision);
      if (config.scalingWebhookUrl !== '' && this.deps.isLeader()) {
        deliverSignedWebhook(config.scalingWebhookUrl, config.clusterSecret, { type: 'scaling_decision', decision }).catch((err: unknown) =>
          this.deps.onWebhookFailure?.(decision, err),
        );
      }
    }
    this.#decisions.splice(HISTORY);
    return result.decisions;
  }

  view(): { regions: RegionScalingView[]; decisions: ScalingDecision[] } {
    return { regions: this.#views, decisions: [...this.#decisions] };
  }
}
