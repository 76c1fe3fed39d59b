import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { controlPlane } from '../../shared/control-plane.ts';
import { bearerToken, type CredentialHashes } from '../../shared/credentials.ts';
import { UnauthorizedError } from '../../shared/errors.ts';
import type { CordonRequest } from '../../shared/schemas/index.ts';
import { requireSignature } from '../../shared/signed-http.ts';
import { SIGNATURE_HEADER } from '../../shared/signed-request.ts';
import type { AgentController } from '../controller.ts';

export interface AdminRoutesOptions {
  controller: AgentController;
  /** The admin token's hash; empty: bearer tokens are refused and only signed requests get in. */
  admin: CredentialHashes;
  clusterSecret: string;
  signedRequestWindowMs: number;
  now: () => number;
}

const CapacityBody = Type.Object(
  { maxParticipants: Type.Union([Type.Integer({ minimum: 1, maximum: 100_000 }), Type.Null()]) },
  { additionalProperties: false },
);

/**
 * Operator routes. Callers authenticate with `Authorization: Bearer <GEO_SFU_ADMIN_TOKEN>` (people,
 * scripts) or by signing with the cluster secret: the router's admin routes forward cordon and
 * drain here as the control plane's `nodeCordon` and `nodeDrain` calls (shared/control-plane.ts).
 */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, opts) => {
  const { controller } = opts;
  const verifySignature = requireSignature(opts.clusterSecret, opts.signedRequestWindowMs, opts.now);

  // onRequest: before the body is read or parsed (a signature is verified from its headers, the
  // body checked against its hash as it arrives), so an unauthenticated caller costs no parsing
  // and learns nothing about what a valid body looks like.
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const token = bearerToken(authorization);
      if (token === undefined || !opts.admin.matches(token)) {
        throw new UnauthorizedError('invalid admin token', 'BAD_ADMIN_TOKEN');
      }
      return;
    }
    if (req.headers[SIGNATURE_HEADER] !== undefined) return verifySignature(req, reply);
    throw new UnauthorizedError('admin routes need Authorization: Bearer <admin token> or a request signed with the cluster secret');
  });

  app.post<{ Body: CordonRequest }>(controlPlane.nodeCordon.path, { schema: { body: controlPlane.nodeCordon.body } }, async (req) => {
    controller.setCordoned(req.body.cordoned);
    return controller.status();
  });

  app.post<{ Body: Static<typeof CapacityBody> }>('/admin/capacity', { schema: { body: CapacityBody } }, async (req) => {
    controller.setCapacityOverride(req.body.maxParticipants);
    return controller.status();
  });

  // No body needed (the router's signed call sends `null`).
  app.post(controlPlane.nodeDrain.path, async (req, reply) => {
    controller.drain().catch((err: unknown) => req.log.error({ err }, 'drain failed'));
    return reply.code(202).send(controller.status());
  });
};
