/**
 * Cross-region cascade (see README.md here): `registerCascade(app, ...)` adds the signed
 * `/v1/cascade/*` routes to the agent's fastify app and returns the running Cascade, which is
 * closed (telling the other nodes) when the app closes.
 */
import type { FastifyInstance } from 'fastify';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import type { RoomRouter } from '../../sfu/index.ts';
import { Cascade, routerRoomNodes, type CascadeOptions, type EndpointRewrite, type RoomNodesSource } from './cascade.ts';
import { cascadeRoutes } from './routes.ts';

export { Cascade, routerRoomNodes };
export type { CascadeEvents, CascadeLinkStatus, CascadeOptions, CascadePipeSettings, EndpointRewrite, RoomNodesSource } from './cascade.ts';
export { derivePipeKey, PIPE_KEY_INFO, seal, unseal } from './seal.ts';

export interface RegisterCascadeOptions extends Omit<CascadeOptions, 'roomNodes' | 'logger'> {
  signedRequestWindowMs: number;
  /** Default: the router's signed room-nodes route at `routerUrl`. */
  roomNodes?: RoomNodesSource;
  routerUrl?: string;
  /** Start polling at once (default true). */
  start?: boolean;
}

export async function registerCascade(app: FastifyInstance, options: RegisterCascadeOptions): Promise<Cascade> {
  const now = options.now ?? Date.now;
  const roomNodes =
    options.roomNodes ??
    (options.routerUrl
      ? routerRoomNodes({ routerUrl: options.routerUrl, clusterSecret: options.clusterSecret, nodeId: options.nodeId, now })
      : undefined);
  if (!roomNodes) throw new Error('registerCascade: give roomNodes or routerUrl');
  const cascade = new Cascade({ ...options, roomNodes, now, logger: app.log });
  await app.register(cascadeRoutes, { cascade, clusterSecret: options.clusterSecret, signedRequestWindowMs: options.signedRequestWindowMs, now });
  app.addHook('onClose', async () => cascade.close());
  if (options.start ?? true) cascade.start();
  return cascade;
}

/** What buildAgent() needs to run the cascade: the agent's rooms (and, for tests/launcher, hooks). */
export interface AgentCascadeDeps {
  rooms: RoomRouter;
  /** Default: the router's signed room-nodes route at GEO_SFU_ROUTER_URL. */
  roomNodes?: RoomNodesSource;
  /** Tests and the launcher's WAN emulation only. */
  rewriteRemoteEndpoint?: EndpointRewrite;
}

/** The cascade's options from the agent's configuration (GEO_SFU_RTC_*, GEO_SFU_PIPE_*, peer routes). */
export function cascadeOptionsFromConfig(
  config: GeoSfuConfig,
  settings: { nodeId: string; region: string; peerRoutes: ReadonlyMap<string, string> },
  deps: AgentCascadeDeps,
  now: () => number,
): RegisterCascadeOptions {
  return {
    rooms: deps.rooms,
    nodeId: settings.nodeId,
    region: settings.region,
    clusterSecret: config.clusterSecret,
    signedRequestWindowMs: config.signedRequestWindowMs,
    routerUrl: config.routerUrl,
    ...(deps.roomNodes ? { roomNodes: deps.roomNodes } : {}),
    peerRoutes: settings.peerRoutes,
    pipe: {
      listenIp: config.rtcListenIp,
      ...(config.rtcAnnouncedAddress !== '' ? { announcedAddress: config.rtcAnnouncedAddress } : {}),
      portRange: { min: config.rtcMinPort, max: config.rtcMaxPort },
      enableSrtp: config.pipeEnableSrtp,
      enableRtx: config.pipeEnableRtx,
    },
    requestTimeoutMs: Math.max(1_000, 2 * config.heartbeatIntervalMs),
    ...(deps.rewriteRemoteEndpoint ? { rewriteRemoteEndpoint: deps.rewriteRemoteEndpoint } : {}),
    now,
  };
}
