import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, ScalingView } from '../../shared/schemas/index.ts';
import { requireAdmin } from '../auth.ts';
import { ADMIN_ONLY } from '../openapi.ts';

export const scalingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/scaling',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: {
        security: ADMIN_ONLY,
        summary: 'Scaling state per region and the recent decisions (admin)',
        response: {
          200: ScalingView,
          401: ErrorBody,
        },
      },
    },
    async () => {
      const { regions, decisions } = app.scaling.view();
      return { regions, decisions: decisions.map(({ atMs, ...d }) => ({ ...d, at: new Date(atMs).toISOString() })) };
    },
  );
};
