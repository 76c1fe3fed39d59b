import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { GeoSfuError, NoCapacityError } from './errors.ts';

/**
 * fastify settings and the error handler shared by the router and the agents, so both refuse bad
 * input the same way: no coercion, no silent stripping, and a 4xx naming the field.
 */
export const AJV_OPTIONS: NonNullable<FastifyServerOptions['ajv']> = {
  customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
};

/** Body limit for JSON APIs (allocation and control messages are small). */
export const BODY_LIMIT_BYTES = 64 * 1024;

interface ValidationIssue {
  instancePath?: string;
  params?: { missingProperty?: string; additionalProperty?: string };
  message?: string;
}

/** Turns an ajv issue into a dotted field name: `latencies.us-west`, `roomId`. */
export function fieldOf(context: string | undefined, issue: ValidationIssue): string {
  const path = (issue.instancePath ?? '').split('/').filter(Boolean);
  if (issue.params?.missingProperty) path.push(issue.params.missingProperty);
  if (issue.params?.additionalProperty) path.push(issue.params.additionalProperty);
  const prefix = context && context !== 'body' ? [context] : [];
  return [...prefix, ...path].join('.') || (context ?? 'body');
}

export function errorHandler(error: FastifyError & { validation?: ValidationIssue[]; validationContext?: string }, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation && error.validation.length > 0) {
    const issue = error.validation[0]!;
    const field = fieldOf(error.validationContext, issue);
    const what = issue.params?.additionalProperty ? 'is not allowed' : (issue.message ?? 'is invalid');
    return reply.status(400).send({ error: { code: 'BAD_REQUEST', message: `${field} ${what}`, field } });
  }
  if (error instanceof GeoSfuError) {
    if (error instanceof NoCapacityError) reply.header('retry-after', String(error.retryAfterSeconds));
    const body: { code: string; message: string; field?: string } = { code: error.code, message: error.message };
    if (error.field) body.field = error.field;
    return reply.status(error.statusCode).send({ error: body });
  }
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
  if (status === 500) req.log.error({ err: error }, 'unhandled error');
  return reply.status(status).send({
    error: { code: status === 500 ? 'INTERNAL' : (error.code ?? 'BAD_REQUEST'), message: status === 500 ? 'internal error' : error.message },
  });
}
