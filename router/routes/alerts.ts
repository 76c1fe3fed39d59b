import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, QualityAlert } from '../../shared/schemas/index.ts';
import { requireAdmin } from '../auth.ts';
import { ADMIN_ONLY } from '../openapi.ts';

export const alertRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/alerts',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: { security: ADMIN_ONLY, summary: 'Active quality alerts (admin)', response: { 200: Type.Object({ alerts: Type.Array(QualityAlert) }), 401: ErrorBody } },
    },
    async () => ({ alerts: app.quality.active() }),
  );
};
