import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Ticker } from '../../shared/ticker.ts';
import type { QualityAlert } from '../../shared/schemas/index.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import { evaluateQuality, type QualitySample, type QualityState } from './quality.ts';
import { deliverSignedWebhook } from './webhook.ts';

export interface QualityMonitorDeps {
  config: GeoSfuConfig;
  registry: NodeRegistry;
  now: () => number;
  /** Webhooks go out from the leader only, once per event across router replicas. */
  isLeader: () => boolean;
  onChange?: (active: readonly QualityAlert[], raised: readonly QualityAlert[], cleared: readonly QualityAlert[]) => void;
  onWebhookFailure?: (err: unknown) => void;
}

/**
 * Evaluates the agents' latest per-participant quality stats every tick: active alerts are
 * served at GET /alerts, counted in metrics, sent back to each node in its heartbeat ack (the
 * agent tells the affected clients) and, when configured, POSTed to the alert webhook.
 */
export class QualityMonitor {
  #state: QualityState = new Map();
  #active: QualityAlert[] = [];
  #ticker: Ticker | null = null;

  constructor(private readonly deps: QualityMonitorDeps) {}

  start(intervalMs: number): void {
    // tick() reports its own failures (webhook callbacks); nothing else can throw.
    this.#ticker = new Ticker(intervalMs, async () => void this.tick(), () => undefined);
    this.#ticker.start();
  }

  async stop(): Promise<void> {
    await this.#ticker?.stop();
  }

  tick(): void {
    const { config, registry, now } = this.deps;
    const samples: QualitySample[] = registry
      .snapshot()
      .nodes.filter((n) => n.state !== 'dead')
      .flatMap((n) => (n.record.heartbeat?.quality ?? []).map((q) => ({ ...q, region: n.region, nodeId: n.nodeId })));
    const result = evaluateQuality(this.#state, samples, now(), { lossRatio: config.alertLossRatio, rttMs: config.alertRttMs, windowMs: config.alertWindowMs });
    this.#state = result.state;
    this.#active = result.active;
    this.deps.onChange?.(result.active, result.raised, result.cleared);
    if (config.alertWebhookUrl !== '' && this.deps.isLeader() && (result.raised.length > 0 || result.cleared.length > 0)) {
      void deliverSignedWebhook(config.alertWebhookUrl, config.clusterSecret, { type: 'quality_alerts', raised: result.raised, cleared: result.cleared }).catch((err: unknown) =>
        this.deps.onWebhookFailure?.(err),
      );
    }
  }

  active(): QualityAlert[] {
    return [...this.#active];
  }

  forNode(nodeId: string): QualityAlert[] {
    return this.#active.filter((a) => a.nodeId === nodeId);
  }
}
