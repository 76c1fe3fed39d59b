import type { FastifyPluginAsync } from 'fastify';
import { NotFoundError } from '../../shared/errors.ts';
import { controlPlane } from '../../shared/control-plane.ts';
import type { MoveRequest } from '../../shared/schemas/index.ts';
import { requireSignature } from '../../shared/signed-http.ts';
import type { SignalingServer } from './server.ts';

export interface MoveRouteOptions {
  signaling: SignalingServer;
  clusterSecret: string;
  signedRequestWindowMs: number;
  now: () => number;
}

/** The router's live rebalancing asks for a participant to be moved (signed with the cluster secret). */
export const moveRoute: FastifyPluginAsync<MoveRouteOptions> = async (app, opts) => {
  app.addHook('onRequest', requireSignature(opts.clusterSecret, opts.signedRequestWindowMs, opts.now));
  app.post<{ Body: MoveRequest }>(controlPlane.move.path, { schema: { hide: true, body: controlPlane.move.body } }, async (req, reply) => {
    const { roomId, participantId, allocationId } = req.body;
    if (!opts.signaling.requestMove(roomId, participantId, allocationId)) {
      throw new NotFoundError(`no connected session of ${participantId} in ${roomId} holds allocation ${allocationId}`);
    }
    return reply.code(202).send();
  });
};
