import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { liveHeapGauge } from '../shared/live-heap.ts';
import { unexpectedErrorsCounter } from '../shared/process-safety.ts';

/**
 * The router's Prometheus metrics, on a registry of its own (tests run several routers in one
 * process). Labels are bounded: region, node, outcome — never room or participant ids.
 */
export function createRouterMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'geo_sfu_router_' });
  liveHeapGauge(registry, 'geo_sfu_router_nodejs_heap_after_gc_bytes');
  return {
    registry,
    allocations: new Counter({
      name: 'geo_sfu_allocations_total',
      help: 'Allocations by outcome (home, edge, cascade, overflow, rebalanced: a move planned by rebalancing, p2p, refused).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    placementSeconds: new Histogram({
      name: 'geo_sfu_allocation_duration_seconds',
      help: 'Time to answer /allocate (placement and state commit).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    probeRtt: new Gauge({
      name: 'geo_sfu_probe_rtt_milliseconds',
      help: 'Smoothed router→node probe RTT.',
      labelNames: ['region', 'node'] as const,
      registers: [registry],
    }),
    probeLoss: new Gauge({
      name: 'geo_sfu_probe_loss_ratio',
      help: 'Fraction of recent router→node probes lost.',
      labelNames: ['region', 'node'] as const,
      registers: [registry],
    }),
    interRegionRtt: new Gauge({
      name: 'geo_sfu_inter_region_rtt_milliseconds',
      help: 'Inter-region RTT measured by the agents (best node pair).',
      labelNames: ['from', 'to'] as const,
      registers: [registry],
    }),
    nodeStress: new Gauge({
      name: 'geo_sfu_node_stress_ratio',
      help: 'max(cpu/maxCpu, memory/maxMemory, participants/maxParticipants) per node.',
      labelNames: ['region', 'node'] as const,
      registers: [registry],
    }),
    nodeBitrate: new Gauge({
      name: 'geo_sfu_node_bitrate_bps',
      help: "Media bandwidth of a node (every transport: clients' and cascade pipes'), by direction (in: received, out: sent), from its last heartbeat.",
      labelNames: ['region', 'node', 'direction'] as const,
      registers: [registry],
    }),
    cascadeBitrate: new Gauge({
      name: 'geo_sfu_cascade_bitrate_bps',
      help: "Media bandwidth of a node's cascade links to the nodes of a peer region, by direction (in: received from there, out: sent there).",
      labelNames: ['region', 'node', 'peer_region', 'direction'] as const,
      registers: [registry],
    }),
    nodesByState: new Gauge({
      name: 'geo_sfu_nodes',
      help: 'Registered nodes by region and state.',
      labelNames: ['region', 'state'] as const,
      registers: [registry],
    }),
    sessionLogBufferDepth: new Gauge({
      name: 'geo_sfu_session_log_buffer_depth',
      help: 'Session-log writes queued and not yet in PostgreSQL.',
      registers: [registry],
    }),
    sessionLogDropped: new Gauge({
      name: 'geo_sfu_session_log_dropped_total',
      help: 'Session-log writes dropped because the buffer was full.',
      registers: [registry],
    }),
    replicaAckShortfalls: new Gauge({
      name: 'geo_sfu_redis_replica_ack_shortfalls',
      help: 'Allocations served although fewer Redis replicas than GEO_SFU_REDIS_MIN_REPLICAS_ACK acknowledged them within the wait (counted since start).',
      registers: [registry],
    }),
    regionStress: new Gauge({
      name: 'geo_sfu_region_stress_ratio',
      help: 'Mean stress of the nodes of a region able to take participants (the autoscaling signal).',
      labelNames: ['region'] as const,
      registers: [registry],
    }),
    scalingDecisions: new Counter({
      name: 'geo_sfu_scaling_decisions_total',
      help: 'Scaling decisions by region and action (scale_out, scale_in, add_region).',
      labelNames: ['region', 'action'] as const,
      registers: [registry],
    }),
    scalingWebhookFailures: new Counter({
      name: 'geo_sfu_scaling_webhook_failures_total',
      help: 'Scaling decisions the webhook did not accept after every retry.',
      registers: [registry],
    }),
    qualityAlerts: new Gauge({
      name: 'geo_sfu_quality_alerts',
      help: "Active quality alerts (packet loss, RTT or jitter over threshold) by region and kind: participants', and cascade links' with the peer region (peer_region, the region the link's media comes from).",
      labelNames: ['region', 'kind', 'peer_region'] as const,
      registers: [registry],
    }),
    alertWebhookFailures: new Counter({
      name: 'geo_sfu_alert_webhook_failures_total',
      help: 'Alert notifications the webhook did not accept after every retry.',
      registers: [registry],
    }),
    degradedAllocations: new Counter({
      name: 'geo_sfu_degraded_allocations_total',
      help: 'Allocations placed from local state while Redis was unreachable (GEO_SFU_DEGRADED_ALLOCATION).',
      registers: [registry],
    }),
    journalReplays: new Counter({
      name: 'geo_sfu_degraded_journal_replays_total',
      help: 'Degraded allocations written to Redis when it came back, by result (applied, already_applied, rehomed, superseded).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    limitLocalDecisions: new Counter({
      name: 'geo_sfu_limit_local_decisions_total',
      help: 'Checks of a limit shared by router replicas (allocate: /allocate rate limit, failed_auth: failed authentications, nonce: replayed signed requests) decided by this process alone because Redis did not answer.',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    reconcileActions: new Counter({
      name: 'geo_sfu_reconcile_actions_total',
      help: "What the reconcile with the agents' inventories did (after a Redis failover and periodically): adopted (a participant Redis lost, re-created from its node), joined (an allocation Redis holds as not joined whose node serves it joined: its join was lost), dropped (a participant no node serves), recounted (a node count corrected), moved_second_home, moved_overbooked, failover_seen.",
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    rehomes: new Counter({
      name: 'geo_sfu_room_rehomes_total',
      help: 'Rooms given a new home because their home node died.',
      registers: [registry],
    }),
    rebalanceDecisions: new Counter({
      name: 'geo_sfu_rebalance_decisions_total',
      help: 'Live rebalancing decisions by outcome (moved, stable, below_threshold, plan_in_flight, raced, failed).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    rebalanceMoves: new Counter({
      name: 'geo_sfu_rebalance_moves_total',
      help: 'Participants live rebalancing moved, by whether their agent was told (told, not_told).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    rebalanceDecisionSeconds: new Histogram({
      name: 'geo_sfu_rebalance_decision_seconds',
      help: 'Time of one rebalancing decision (the pure search over the room).',
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'geo_sfu_router_leader',
      help: '1 while this router holds the leader lease (runs background duties).',
      registers: [registry],
    }),
    p2pRelayConnections: new Gauge({
      name: 'geo_sfu_p2p_relay_connections',
      help: 'P2P fallback participants connected to this router\'s signaling relay.',
      registers: [registry],
    }),
    p2pRelayRefusals: new Counter({
      name: 'geo_sfu_p2p_relay_refusals_total',
      help: 'Relay connections and messages refused, by reason (bad token, not in room, bad message, rate limited...).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    p2pRelayLocalOnly: new Counter({
      name: 'geo_sfu_p2p_relay_local_only_total',
      help: 'P2P relay steps shared with the other router replicas through Redis (join, signal, leave, renew, migrate) done for this replica\'s peers alone because Redis did not answer.',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    p2pMigrations: new Counter({
      name: 'geo_sfu_p2p_migrations_total',
      help: 'P2P rooms told to move to an SFU because a region can take them again.',
      registers: [registry],
    }),
    expiredAllocations: new Counter({
      name: 'geo_sfu_allocations_expired_total',
      help: 'Allocations not followed by a join in time.',
      registers: [registry],
    }),
    appWebhookQueued: new Counter({
      name: 'geo_sfu_app_webhook_events_queued_total',
      help: 'Application webhook events queued for delivery (by this router).',
      registers: [registry],
    }),
    appWebhookDelivered: new Counter({
      name: 'geo_sfu_app_webhook_events_delivered_total',
      help: 'Application webhook events every receiver answered 2xx to (delivered by this router).',
      registers: [registry],
    }),
    appWebhookRetried: new Counter({
      name: 'geo_sfu_app_webhook_retries_total',
      help: 'Application webhook attempts that failed and were scheduled again.',
      registers: [registry],
    }),
    appWebhookDeadLettered: new Counter({
      name: 'geo_sfu_app_webhook_dead_lettered_total',
      help: 'Application webhook events given up on (attempts or age limit) and moved to the dead-letter stream.',
      registers: [registry],
    }),
    appWebhookLatency: new Histogram({
      name: 'geo_sfu_app_webhook_delivery_seconds',
      help: 'From an application webhook event queued to delivered (retries included).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
      registers: [registry],
    }),
    unexpectedErrors: unexpectedErrorsCounter(registry),
  };
}

export type RouterMetrics = ReturnType<typeof createRouterMetrics>;
