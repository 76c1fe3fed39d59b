import type { FastifyPluginAsync } from 'fastify';
import { NotFoundError } from '../../shared/errors.ts';
import { controlPlane } from '../../shared/control-plane.ts';
import type { CloseSessionRequest } from '../../shared/schemas/index.ts';
import { requireSignature } from '../../shared/signed-http.ts';
import type { SignalingServer } from './server.ts';

export interface CloseSessionRouteOptions {
  signaling: SignalingServer;
  clusterSecret: string;
  signedRequestWindowMs: number;
  now: () => number;
}

/** The router closes a participant's session: admin removal, or a newer session of it elsewhere (signed with the cluster secret). */
export const closeSessionRoute: FastifyPluginAsync<CloseSessionRouteOptions> = async (app, opts) => {
  app.addHook('preValidation', requireSignature(opts.clusterSecret, opts.signedRequestWindowMs, opts.now));
  app.post<{ Body: CloseSessionRequest }>(controlPlane.closeSession.path, { schema: { hide: true, body: controlPlane.closeSession.body } }, async (req, reply) => {
    const { roomId, participantId, reason, keepAllocationId } = req.body;
    if (!opts.signaling.closeSession(roomId, participantId, reason, keepAllocationId)) {
      throw new NotFoundError(`no session of ${participantId} in ${roomId} to close here`);
    }
    return reply.code(204).send();
  });
};
