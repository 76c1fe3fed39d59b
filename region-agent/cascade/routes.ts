import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { requireSignature } from '../../shared/signed-http.ts';
import type { Cascade } from './cascade.ts';
import { controlPlane } from '../../shared/control-plane.ts';
import type { CloseRequest, KickRequest, OpenRequest, SyncRequest } from '../../shared/schemas/cascade.ts';
import type { RoomNodesPush } from '../../shared/schemas/index.ts';

export interface CascadeRoutesOptions {
  cascade: Cascade;
  clusterSecret: string;
  signedRequestWindowMs: number;
  now: () => number;
}

/** Sync bodies carry the RTP parameters of every producer of a room's local peers. */
const CASCADE_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

const refuse = (reply: FastifyReply, status: number, code: string, message: string) => reply.code(status).send({ error: { code, message } });

/**
 * The agent↔agent cascade routes, and the router's push of a room's node set. Every call must be
 * signed with the cluster secret (unsigned, stale or replayed requests get 401 before a byte of
 * the body is read).
 */
export const cascadeRoutes: FastifyPluginAsync<CascadeRoutesOptions> = async (app, opts) => {
  const { cascade } = opts;
  // Before the body is read: an unsigned sync cannot make the agent take in 4 MiB.
  app.addHook('onRequest', requireSignature(opts.clusterSecret, opts.signedRequestWindowMs, opts.now));
  const schema = (body: object) => ({ schema: { hide: true, body }, bodyLimit: CASCADE_BODY_LIMIT_BYTES });

  app.post<{ Body: OpenRequest }>(controlPlane.cascadeOpen.path, schema(controlPlane.cascadeOpen.body), async (req, reply) => {
    const res = await cascade.handleOpen(req.body);
    return res.status === 200 ? res.body : refuse(reply, res.status, res.code, res.message);
  });
  app.post<{ Body: SyncRequest }>(controlPlane.cascadeSync.path, schema(controlPlane.cascadeSync.body), async (req, reply) => {
    const res = await cascade.handleSync(req.body);
    return res.status === 200 ? res.body : refuse(reply, res.status, res.code, res.message);
  });
  app.post<{ Body: CloseRequest }>(controlPlane.cascadeClose.path, schema(controlPlane.cascadeClose.body), async (req, reply) => {
    await cascade.handleClose(req.body);
    return reply.code(204).send();
  });
  app.post<{ Body: KickRequest }>(controlPlane.cascadeKick.path, schema(controlPlane.cascadeKick.body), async (req, reply) => {
    cascade.handleKick(req.body);
    return reply.code(202).send();
  });
  app.post<{ Body: RoomNodesPush }>(controlPlane.roomNodesPush.path, schema(controlPlane.roomNodesPush.body), async (req, reply) => {
    for (const { roomId, version, nodes } of req.body.rooms) cascade.applyNodeSet(roomId, { version, nodes }, 'push');
    return reply.code(204).send();
  });
};
