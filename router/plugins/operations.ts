import fp from 'fastify-plugin';
import { Ticker } from '../../shared/ticker.ts';
import { QualityMonitor } from '../operations/quality-monitor.ts';
import { Rebalancer } from '../operations/rebalancer.ts';
import { Reconciler } from '../operations/reconciler.ts';
import { RedisRoomStore } from '../state/redis-room-store.ts';
import { Rehomer } from '../operations/rehomer.ts';
import { RoomNodesPusher } from '../operations/room-nodes.ts';
import { ScalingManager } from '../operations/scaling-manager.ts';
import { SessionCloser } from '../operations/session-closer.ts';

/**
 * The background duties around the rooms: scaling advice, quality alerts, live rebalancing,
 * re-homing the rooms of dead nodes (the leader's, every GEO_SFU_REHOME_INTERVAL_MS), closing
 * participants' sessions on their agents and pushing rooms' node sets to them.
 */
export const operationsPlugin = fp(
  async (app) => {
    const { config, registry, rooms, metrics, isLeader, now } = app;
    const scaling = new ScalingManager({
      config,
      registry,
      now,
      isLeader,
      onDecision: (d) => metrics.scalingDecisions.inc({ region: d.region, action: d.action }),
      onWebhookFailure: () => metrics.scalingWebhookFailures.inc(),
    });
    const quality = new QualityMonitor({
      config,
      registry,
      now,
      isLeader,
      onChange: (active) => {
        metrics.qualityAlerts.reset();
        for (const a of active) metrics.qualityAlerts.inc(a.scope === 'cascade_link' ? { region: a.region, kind: a.kind, peer_region: a.peerRegion } : { region: a.region, kind: a.kind });
      },
      onWebhookFailure: () => metrics.alertWebhookFailures.inc(),
    });
    const rebalancer = new Rebalancer({
      config,
      registry,
      rooms,
      now,
      log: app.log,
      onDecision: (d) => {
        metrics.rebalanceDecisions.inc({ outcome: d.outcome });
        if (d.outcome !== 'plan_in_flight' && d.outcome !== 'failed') metrics.rebalanceDecisionSeconds.observe(d.decisionMs / 1000);
        for (const m of d.moves) metrics.rebalanceMoves.inc({ result: m.told ? 'told' : 'not_told' });
      },
    });
    const roomNodes = new RoomNodesPusher({ config, registry, rooms, log: app.log });
    const rehomer = new Rehomer(
      {
        registry,
        rooms,
        isLeader,
        onRehome: (roomId) => {
          metrics.rehomes.inc();
          roomNodes.changed(roomId);
        },
      },
      config.regions.map((r) => r.id),
    );
    const rehoming = new Ticker(config.rehomeIntervalMs, async () => void (await rehomer.tick()), (err) => app.log.warn({ err }, 'rehoming tick failed'), { unref: true });
    const sessionCloser = new SessionCloser({ config, registry, log: app.log });
    // Only Redis can lose what it acknowledged (a failover): the memory store needs no reconcile.
    const reconciler =
      rooms instanceof RedisRoomStore
        ? new Reconciler({
            config,
            registry,
            rooms,
            store: rooms,
            sessions: app.sessions,
            isLeader,
            now,
            log: app.log,
            onAction: (action, n) => {
              if (n > 0) metrics.reconcileActions.inc({ action }, n);
            },
            onRoomChanged: (roomId, formerNodeIds) => {
              roomNodes.changed(roomId, formerNodeIds);
              rebalancer.schedule(roomId);
            },
          })
        : null;
    app.decorate('scaling', scaling);
    app.decorate('quality', quality);
    app.decorate('rebalancer', rebalancer);
    app.decorate('sessionCloser', sessionCloser);
    app.decorate('roomNodes', roomNodes);
    app.decorate('reconciler', reconciler);
    app.addHook('onReady', async () => {
      scaling.start(config.scalingIntervalMs);
      quality.start(config.alertIntervalMs);
      rehoming.start();
      reconciler?.start();
    });
    app.addHook('onClose', async () => {
      sessionCloser.close();
      await Promise.all([rehoming.stop(), reconciler?.stop(), scaling.stop(), quality.stop(), rebalancer.close(), roomNodes.close()]);
    });
  },
  { name: 'operations', dependencies: ['stores', 'registry'], decorators: { fastify: ['metrics'] } },
);
