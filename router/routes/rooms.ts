import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NotFoundError } from '../../shared/errors.ts';
import { ErrorBody, Id, RoomView } from '../../shared/schemas/index.ts';
import { requireAdmin, requireAdminOrRoomGrant } from '../auth.ts';
import { ADMIN_ONLY } from '../openapi.ts';
import { roomView } from '../room-view.ts';

export const roomRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app;
  const regionOrder = config.regions.map((r) => r.id);

  app.get<{ Params: { roomId: string } }>(
    '/rooms/:roomId',
    {
      // Participant and allocation ids: in production mode for the room's own people and operators only.
      ...(config.production ? { preHandler: requireAdminOrRoomGrant(app.credentials.admin, config, app.now) } : {}),
      schema: {
        security: config.production ? [{ admin: [] }, { grant: [] }] : [{}, { admin: [] }, { grant: [] }],
        summary: 'A room: home region, participants with their edge region, cascade links (production mode: admin token or a grant for the room)',
        params: Type.Object({ roomId: Id }),
        response: { 200: RoomView, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => {
      const state = await app.rooms.getRoom(req.params.roomId);
      if (!state) throw new NotFoundError(`room ${req.params.roomId} does not exist`);
      return roomView(state, regionOrder);
    },
  );

  app.get(
    '/rooms',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: { security: ADMIN_ONLY, summary: 'Room ids (admin)', response: { 200: Type.Object({ rooms: Type.Array(Type.String()) }), 401: ErrorBody } },
    },
    async () => ({ rooms: await app.rooms.listRoomIds() }),
  );

  app.delete(
    '/rooms/:roomId/participants/:participantId',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: {
        security: ADMIN_ONLY,
        summary:
          'Remove a participant (admin): releases its capacity, closes its sessions (`removed`, final) and refuses its grants issued until now (403 KICKED) for GEO_SFU_KICK_MEMORY_MS',
        params: Type.Object({ roomId: Id, participantId: Id }),
        response: { 204: Type.Null(), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const { roomId, participantId } = req.params;
      const atMs = app.now();
      const kicked = await app.rooms.kick(roomId, participantId, atMs, atMs + config.kickMemoryMs);
      if (!kicked) throw new NotFoundError(`participant ${participantId} is not in room ${roomId}`);
      app.sessions.setStatus(kicked.removed.allocationId, 'ended', new Date(atMs));
      await app.appEvents?.raise({ kind: 'left', roomId, participantId, allocationId: null, reason: 'kicked', atMs });
      app.rebalancer.schedule(roomId);
      app.roomNodes.changed(roomId, [kicked.removed.nodeId]);
      // Its session, and any older one still within the overlap, close now (the agents answer within 1 s).
      await app.sessionCloser.closeOn([kicked.removed.nodeId, ...kicked.earlierNodeIds], { roomId, participantId, reason: 'removed' });
      return reply.status(204).send(null);
    },
  );
};
