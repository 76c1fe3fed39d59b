import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NotFoundError } from '../../shared/errors.ts';
import { ErrorBody } from '../../shared/schemas/index.ts';
import { requireAdmin } from '../auth.ts';
import { ADMIN_ONLY } from '../openapi.ts';

const DeadLetterView = Type.Object({
  id: Type.String(),
  event: Type.Unknown(),
  attempts: Type.Integer(),
  error: Type.String(),
  deadAtMs: Type.Number(),
});

/** The application webhooks' dead-letter stream (admin): list it, and queue an entry again. 404 when application webhooks are off. */
export const appWebhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const checkAdmin = requireAdmin(app.credentials.admin);
  const store = () => {
    if (!app.appEventStore) throw new NotFoundError('application webhooks are off (GEO_SFU_APP_WEBHOOK_URLS is empty)');
    return app.appEventStore;
  };

  app.get(
    '/webhooks/dead-letters',
    {
      preHandler: checkAdmin,
      schema: {
        security: ADMIN_ONLY,
        summary: 'Application webhook events given up on, oldest first (admin)',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000, default: 100 })) }),
        response: { 200: Type.Object({ total: Type.Integer(), deadLetters: Type.Array(DeadLetterView) }), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
      },
    },
    async (req) => store().listDead(req.query.limit ?? 100),
  );

  app.post(
    '/webhooks/dead-letters/:id/replay',
    {
      preHandler: checkAdmin,
      schema: {
        security: ADMIN_ONLY,
        summary: "Queue a dead-lettered application webhook event again, at the end of its room's queue (same event id and sequence number) (admin)",
        params: Type.Object({ id: Type.String({ pattern: '^[0-9]{1,20}-[0-9]{1,20}$' }) }),
        response: { 202: Type.Null(), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      if (!(await store().replayDead(req.params.id, app.now()))) throw new NotFoundError(`no dead letter ${req.params.id}`);
      return reply.status(202).send(null);
    },
  );
};
