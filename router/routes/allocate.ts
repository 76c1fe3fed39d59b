import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AllocateRequest, AllocateResponse, ErrorBody } from '../../shared/schemas/index.ts';
import { isApiKeyCaller } from '../auth.ts';

export const allocateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/allocate',
    {
      schema: {
        summary: "Place a participant: the room's home region, this participant's edge, and a join token",
        body: AllocateRequest,
        response: { 200: AllocateResponse, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
      },
    },
    async (req) => {
      const { config, allocator } = app.services;
      // Only server-side callers (API key) may speak for another client's IP; everyone else is
      // located by the address the request came from (X-Forwarded-For only via trustProxy).
      const clientIp = req.body.clientIp !== undefined && isApiKeyCaller(req, config.apiKey) ? req.body.clientIp : req.ip;
      return allocator.allocate(req.body, clientIp);
    },
  );
};
