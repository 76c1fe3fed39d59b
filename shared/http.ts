import type { FastifyError, FastifyPluginAsync, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { DependencyUnavailableError, GeoSfuError, NoCapacityError } from './errors.ts';
import type { ErrorBody } from './schemas/index.ts';

/**
 * fastify settings and error replies shared by the router and the agents, so both refuse bad
 * input the same way: no coercion, no silent stripping, and a 4xx naming the field.
 */
export const AJV_OPTIONS: NonNullable<FastifyServerOptions['ajv']> = {
  customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
};

/** Body limit for JSON APIs (allocation and control messages are small). */
export const BODY_LIMIT_BYTES = 64 * 1024;

/** The field a schema validation error is about, as a dotted path: `latencies.us-west`, `params.roomId` → `roomId`. */
function fieldOf(err: FastifyError): string {
  const first = err.validation?.[0];
  const path = (first?.instancePath ?? '').split('/').filter(Boolean);
  const params = first?.params as { missingProperty?: string; additionalProperty?: string } | undefined;
  const named = params?.missingProperty ?? params?.additionalProperty;
  if (named !== undefined) path.push(named);
  return path.length > 0 ? path.join('.') : (err.validationContext ?? 'body');
}

function toReply(err: FastifyError): { statusCode: number; body: ErrorBody } {
  if (err instanceof GeoSfuError) {
    return { statusCode: err.statusCode, body: { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } } };
  }
  const first = err.validation?.[0];
  if (first) {
    // The first error only: for unions the others just restate the branches.
    const field = fieldOf(err);
    const extra = (first.params as { additionalProperty?: string }).additionalProperty;
    const message = extra === undefined ? `${field} ${first.message ?? 'is invalid'}` : `${field} is not allowed`;
    return { statusCode: 400, body: { error: { code: 'BAD_REQUEST', message, field } } };
  }
  const statusCode = err.statusCode ?? 500;
  if (statusCode >= 400 && statusCode < 500) {
    // fastify's own refusals (unparsable or oversized body, wrong content type) are about the body.
    return { statusCode, body: { error: { code: err.code ?? 'BAD_REQUEST', message: err.message, field: 'body' } } };
  }
  return { statusCode: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } };
}

/** Every error, and unknown routes, answered as `{ error: { code, message, field? } }`. */
export const errorReplies: FastifyPluginAsync = fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, req, reply) => {
      const { statusCode, body } = toReply(err);
      if (statusCode >= 500) req.log.error({ err }, 'request failed');
      if (err instanceof NoCapacityError || err instanceof DependencyUnavailableError) void reply.header('retry-after', String(err.retryAfterSeconds));
      return reply.code(statusCode).send(body);
    });
    app.setNotFoundHandler((req, reply) =>
      reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } } satisfies ErrorBody),
    );
  },
  { name: 'geo-sfu-error-replies' },
);
