/**
 * Cross-region cascade (see README.md here): `registerCascade(app, ...)` adds the signed
 * `/v1/cascade/*` routes to the agent's fastify app and returns the running Cascade, which is
 * closed (telling the other nodes) when the app closes.
 */
import type { FastifyInstance } from 'fastify';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { RoomRouter } from '../../sfu/index.ts';
import type { RouterClient } from '../router-client.ts';
import { Cascade, type CascadeOptions, type CascadeTiming, type EndpointRewrite, type RoomNodesSource } from './cascade.ts';
import type { ConditionerSettings } from './conditioner.ts';
import { cascadeRoutes } from './routes.ts';

export { Cascade };
export type { EndpointRewrite, RoomNodesSource } from './cascade.ts';
export { derivePipeKey, seal, unseal } from './seal.ts';
export type { ConditionerSettings } from './conditioner.ts';

export interface RegisterCascadeOptions extends Omit<CascadeOptions, 'logger'> {
  signedRequestWindowMs: number;
}

export async function registerCascade(app: FastifyInstance, options: RegisterCascadeOptions): Promise<Cascade> {
  const now = options.now ?? Date.now;
  const cascade = new Cascade({ ...options, now, logger: app.log });
  await app.register(cascadeRoutes, { cascade, clusterSecret: options.clusterSecret, signedRequestWindowMs: options.signedRequestWindowMs, now });
  app.addHook('onClose', async () => cascade.close());
  cascade.start();
  return cascade;
}

/** What buildAgent() needs to run the cascade: the agent's rooms (and, for tests/launcher, hooks). */
export interface AgentCascadeDeps {
  rooms: RoomRouter;
  /** Default: the agent's RouterClient (the router's signed room-nodes call). */
  roomNodes?: RoomNodesSource;
  /** Tests and the launcher's WAN emulation only. */
  rewriteRemoteEndpoint?: EndpointRewrite;
}

/** The cascade's options from the agent's configuration (GEO_SFU_RTC_*, GEO_SFU_PIPE_*, peer routes). */
export function cascadeOptionsFromConfig(
  config: GeoSfuConfig,
  settings: { nodeId: string; region: string; peerRoutes: ReadonlyMap<string, string>; callTimeoutMs: number },
  deps: AgentCascadeDeps,
  router: RouterClient,
  now: () => number,
): RegisterCascadeOptions {
  return {
    rooms: deps.rooms,
    nodeId: settings.nodeId,
    region: settings.region,
    clusterSecret: config.clusterSecret,
    signedRequestWindowMs: config.signedRequestWindowMs,
    roomNodes: deps.roomNodes ?? ((roomIds) => router.roomNodes(roomIds)),
    peerRoutes: settings.peerRoutes,
    pipe: {
      listenIp: config.rtcListenIp,
      ...(config.rtcAnnouncedAddress !== '' ? { announcedAddress: config.rtcAnnouncedAddress } : {}),
      portRange: { min: config.rtcMinPort, max: config.rtcMaxPort },
      enableSrtp: config.pipeEnableSrtp,
      enableRtx: config.pipeEnableRtx,
      conditioner: pipeConditionerSettings(config),
      videoBufferMs: config.pipeVideoBufferMs,
    },
    timing: cascadeTiming(config, settings.callTimeoutMs),
    ...(deps.rewriteRemoteEndpoint ? { rewriteRemoteEndpoint: deps.rewriteRemoteEndpoint } : {}),
    now,
  };
}

/** The pipe conditioner's settings (GEO_SFU_PIPE_FEC_SHARE, _FEC_GROUP_MS, _FEC_MIN_RTT_MS, GEO_SFU_PIPE_REORDER_MAX_MS). */
export function pipeConditionerSettings(config: GeoSfuConfig): ConditionerSettings {
  return { fecShare: config.pipeFecShare, fecGroupMs: config.pipeFecGroupMs, reorderMaxMs: config.pipeReorderMaxMs, fecMinRttMs: config.pipeFecMinRttMs };
}

/** The cascade's cadences from the configuration (GEO_SFU_CASCADE_*); `requestTimeoutMs`: the agent's call timeout. */
export function cascadeTiming(config: GeoSfuConfig, requestTimeoutMs: number): CascadeTiming {
  return {
    reconcileMs: config.cascadeReconcileMs,
    syncIntervalMs: config.cascadeSyncIntervalMs,
    staleAfterMs: config.cascadeStaleAfterMs,
    requestTimeoutMs,
    stallChecks: config.cascadeStallChecks,
    retryMs: config.cascadeRetryMs,
    retryMaxMs: config.cascadeRetryMaxMs,
    debounceMs: config.cascadeDebounceMs,
    prewarmMs: config.cascadePrewarmMs,
  };
}
