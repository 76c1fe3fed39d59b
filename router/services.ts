import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import type { DegradedAllocator } from './allocation/degraded.ts';
import type { RouterCredentials } from './auth.ts';
import type { RouterLimits } from './limits.ts';
import type { RouterMetrics } from './metrics.ts';
import type { QualityMonitor } from './operations/quality-monitor.ts';
import type { Rebalancer } from './operations/rebalancer.ts';
import type { Reconciler } from './operations/reconciler.ts';
import type { RoomNodesPusher } from './operations/room-nodes.ts';
import type { ScalingManager } from './operations/scaling-manager.ts';
import type { SessionCloser } from './operations/session-closer.ts';
import type { P2pAllocator } from './p2p/p2p-allocator.ts';
import type { P2pRelay } from './p2p/relay.ts';
import type { NodeRegistry } from './registry/node-registry.ts';
import type { Prober } from './registry/prober.ts';
import type { NodeRegistryStore, RoomStore, SessionLog } from './state/types.ts';
import type { AppEvents } from './webhooks/app-events.ts';
import type { AppEventStore } from './webhooks/types.ts';

/**
 * The router's services, typed in one place: each is a decorator of the fastify instance, set by
 * the plugin named beside it (router/plugins/), which also starts and stops it. Routes read them
 * from the instance they are registered on (`app.rooms`, `app.registry`, ...).
 */
declare module 'fastify' {
  interface FastifyInstance {
    // buildRouter (app.ts)
    /** The configuration without the plain API key and admin token (see `credentials`). */
    config: GeoSfuConfig;
    credentials: RouterCredentials;
    metrics: RouterMetrics;
    now: () => number;
    /** The /allocate and failed-authentication limits and signed-request nonces, shared by replicas through Redis. */
    limits: RouterLimits;
    // plugins/stores.ts
    rooms: RoomStore;
    nodeStore: NodeRegistryStore;
    sessions: SessionLog;
    /** True while this router runs the background duties (the leader lease). */
    isLeader: () => boolean;
    // plugins/registry.ts
    registry: NodeRegistry;
    prober: Prober;
    // plugins/operations.ts
    scaling: ScalingManager;
    quality: QualityMonitor;
    rebalancer: Rebalancer;
    /** Closes participants' sessions on their agents (admin removal, replaced sessions). */
    sessionCloser: SessionCloser;
    /** Pushes a room's node set to its agents after it changed. */
    roomNodes: RoomNodesPusher;
    /** Reconciles Redis with the agents' inventories after a failover and periodically (null without Redis). */
    reconciler: Reconciler | null;
    // plugins/p2p.ts (both null when GEO_SFU_P2P_FALLBACK is off)
    p2pAllocator: P2pAllocator | null;
    /** The P2P fallback's signaling relay. */
    p2pRelay: P2pRelay | null;
    // plugins/allocation.ts
    /** The allocation loop, wrapped for Redis outages. */
    allocator: DegradedAllocator;
    // plugins/webhooks.ts (both null when GEO_SFU_APP_WEBHOOK_URLS is empty)
    /** Raises application webhook events. */
    appEvents: AppEvents | null;
    /** Their queue (the dead-letter routes read it). */
    appEventStore: AppEventStore | null;
  }
}

/** The router's fastify instance: its services as decorators, TypeBox schemas typing its routes. */
export type RouterApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;
