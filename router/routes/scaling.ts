import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../../shared/schemas/index.ts';
import { requireAdmin } from '../auth.ts';

const Nullable = (t: ReturnType<typeof Type.Number>) => Type.Union([t, Type.Null()]);

export const scalingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/scaling',
    {
      preHandler: requireAdmin(app.credentials.admin),
      schema: {
        summary: 'Scaling state per region and the recent decisions (admin)',
        response: {
          200: Type.Object({
            regions: Type.Array(
              Type.Object({
                region: Type.String(),
                nodes: Type.Integer(),
                meanStress: Nullable(Type.Number()),
                overflowsInWindow: Type.Integer(),
                medianClientRttMs: Nullable(Type.Number()),
                highForMs: Type.Number(),
                lowForMs: Type.Number(),
                farForMs: Type.Number(),
                coolingDownForMs: Type.Number(),
              }),
            ),
            decisions: Type.Array(
              Type.Object({
                region: Type.String(),
                action: Type.Union([Type.Literal('scale_out'), Type.Literal('scale_in'), Type.Literal('add_region')]),
                reason: Type.String(),
                at: Type.String({ format: 'date-time' }),
                meanStress: Nullable(Type.Number()),
                nodes: Type.Integer(),
                medianClientRttMs: Nullable(Type.Number()),
              }),
            ),
          }),
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
