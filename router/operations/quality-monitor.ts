import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { Ticker } from '../../shared/ticker.ts';
import type { ParticipantQualityAlert, QualityAlert } from '../../shared/schemas/index.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import { evaluateQuality, type LinkQualitySample, type QualitySample, type QualityState } from './quality.ts';
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
 * Evaluates the agents' latest per-participant quality stats and cascade links every tick: active
 * alerts are served at GET /alerts, counted in metrics, POSTed to the alert webhook when one is
 * configured, and the participants' sent back to each node in its heartbeat ack (the agent tells
 * the affected clients).
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
    const snapshot = registry.snapshot();
    const samples: (QualitySample | LinkQualitySample)[] = [];
    for (const n of snapshot.nodes) {
      if (n.state === 'dead') continue;
      const hb = n.record.heartbeat;
      for (const q of hb?.quality ?? []) samples.push({ ...q, region: n.region, nodeId: n.nodeId });
      for (const link of hb?.media?.links ?? []) {
        // The two nodes' own probe RTT; before its first answer, the best measured for the region pair.
        const rttMs = hb?.peerRtt[link.peerNodeId]?.rttMs ?? snapshot.interRegion[n.region]?.[link.peerRegion]?.rttMs ?? null;
        samples.push({ scope: 'cascade_link', nodeId: n.nodeId, region: n.region, peerNodeId: link.peerNodeId, peerRegion: link.peerRegion, loss: link.loss ?? null, jitterMs: link.jitterMs ?? null, rttMs });
      }
    }
    const result = evaluateQuality(this.#state, samples, now(), { lossRatio: config.alertLossRatio, rttMs: config.alertRttMs, jitterMs: config.alertJitterMs, windowMs: config.alertWindowMs });
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

  /** The alerts on the node's participants (it tells those clients); a cascade link's alerts concern no client. */
  forNode(nodeId: string): ParticipantQualityAlert[] {
    return this.#active.filter((a): a is ParticipantQualityAlert => a.scope === 'participant' && a.nodeId === nodeId);
  }
}
