import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { ConnectAuth, REQUESTS, type RequestName, type SignalingError } from '../../shared/signaling.ts';
import { requestError } from './refusals.ts';

/**
 * Payload validators, compiled once per process (TypeBox's compiler: no coercion, no defaults,
 * unknown properties refused). A failure names the first offending field as a dotted path
 * (`rtpParameters`, `appData.x`, `spatialLayer`); the empty string is the payload itself.
 */
type Validator = (value: unknown) => SignalingError | null;

function compile(schema: TSchema): Validator {
  const check: TypeCheck<TSchema> = TypeCompiler.Compile(schema);
  return (value) => {
    if (check.Check(value)) return null;
    const first = check.Errors(value).First();
    const field = (first?.path ?? '').replace(/^\//, '').split('/').filter(Boolean).join('.');
    return requestError('INVALID_PAYLOAD', `${field === '' ? 'payload' : field}: ${first?.message ?? 'invalid'}`, field);
  };
}

export const validateRequest: Readonly<Record<RequestName, Validator>> = Object.fromEntries(
  Object.entries(REQUESTS).map(([name, schema]) => [name, compile(schema)]),
) as Record<RequestName, Validator>;

export const validateAuth: Validator = compile(ConnectAuth);

export const isRequestName = (name: string): name is RequestName => Object.hasOwn(REQUESTS, name);
