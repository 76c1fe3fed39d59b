import type { FastifyError, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { GeoSfuError } from '../shared/errors.ts';
import type { ErrorBody } from '../shared/schemas/index.ts';

/** The field a schema validation error is about, as a dotted path ("maxParticipants", "body"). */
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
    // The first error only: for `integer | null` the others just restate the union's branches.
    const extra = (first.params as { additionalProperty?: string }).additionalProperty;
    const message = `${err.validationContext ?? 'body'}${first.instancePath} ${first.message ?? 'is invalid'}${extra === undefined ? '' : ` ("${extra}")`}`;
    return { statusCode: 400, body: { error: { code: 'BAD_REQUEST', message, field: fieldOf(err) } } };
  }
  const statusCode = err.statusCode ?? 500;
  if (statusCode >= 400 && statusCode < 500) {
    // fastify's own refusals (unparsable or oversized body, wrong content type) are about the body.
    return { statusCode, body: { error: { code: err.code ?? 'BAD_REQUEST', message: err.message, field: 'body' } } };
  }
  return { statusCode: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } };
}

/** Every error, and unknown routes, answered as the shared `{ error: { code, message, field? } }`. */
export const errorReplies: FastifyPluginAsync = fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, req, reply) => {
      const { statusCode, body } = toReply(err);
      if (statusCode >= 500) req.log.error({ err }, 'request failed');
      return reply.code(statusCode).send(body);
    });
    app.setNotFoundHandler((req, reply) =>
      reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } } satisfies ErrorBody),
    );
  },
  { name: 'geo-sfu-error-replies' },
);
