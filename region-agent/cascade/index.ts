/**
 * Cross-region cascade (see README.md here): `registerCascade(app, ...)` adds the signed
 * `/v1/cascade/*` routes to the agent's fastify app and returns the running Cascade, which is
 * closed (telling the other nodes) when the app closes.
 */
import type { FastifyInstance } from 'fastify';
import { Cascade, routerRoomNodes, type CascadeOptions, type RoomNodesSource } from './cascade.ts';
import { cascadeRoutes } from './routes.ts';

export { Cascade, routerRoomNodes };
export type { CascadeEvents, CascadeLinkStatus, CascadeOptions, CascadePipeSettings, EndpointRewrite, RoomNodesSource } from './cascade.ts';
export { derivePipeKey, PIPE_KEY_INFO, seal, unseal } from './seal.ts';
export { CASCADE_PATHS } from './protocol.ts';

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
