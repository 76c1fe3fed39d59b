import type { FastifyPluginAsync } from 'fastify';
import { controlPlane } from '../../shared/control-plane.ts';
import { requireSignature } from '../../shared/signed-http.ts';
import type { SignalingServer } from './server.ts';

export interface InventoryRouteOptions {
  signaling: SignalingServer;
  nodeId: string;
  clusterSecret: string;
  signedRequestWindowMs: number;
  now: () => number;
}

/** The router asks which sessions this agent holds (signed with the cluster secret): its reconcile after a Redis failover. */
export const inventoryRoute: FastifyPluginAsync<InventoryRouteOptions> = async (app, opts) => {
  app.addHook('onRequest', requireSignature(opts.clusterSecret, opts.signedRequestWindowMs, opts.now));
  app.post(controlPlane.inventory.path, { schema: { hide: true, body: controlPlane.inventory.body } }, async () => ({
    nodeId: opts.nodeId,
    rooms: opts.signaling.inventory(),
  }));
};
