import { InvalidArgumentError } from 'commander';
import { ID_PATTERN, RegionId } from '../shared/schemas/common.ts';
import { CONFIG_SPEC } from '../shared/config/spec.ts';
import { UsageError } from './errors.ts';

/**
 * Argument parsers for commander's `argParser`: each throws InvalidArgumentError, which commander
 * reports as "option '--flag <x>' argument 'v' is invalid. <reason>" (exit 2).
 */

/** A whole number in [min, max]; rejects "1.5", "1e3", "0x10", "" and other forms Number() accepts. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`must be a whole number${range(min, max)}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be a whole number${range(min, max)}.`);
    return n;
  };
}

/** A decimal number > exclusiveMin (or ≥ min) and ≤ max. */
export function numberArg(opts: { min?: number; exclusiveMin?: number; max?: number }) {
  const describe = () => {
    const parts = [];
    if (opts.exclusiveMin !== undefined) parts.push(`> ${opts.exclusiveMin}`);
    if (opts.min !== undefined) parts.push(`≥ ${opts.min}`);
    if (opts.max !== undefined) parts.push(`≤ ${opts.max}`);
    return `must be a number ${parts.join(' and ')}.`;
  };
  return (value: string): number => {
    if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(value.trim())) throw new InvalidArgumentError(describe());
    const n = Number(value);
    if (opts.exclusiveMin !== undefined && !(n > opts.exclusiveMin)) throw new InvalidArgumentError(describe());
    if (opts.min !== undefined && !(n >= opts.min)) throw new InvalidArgumentError(describe());
    if (opts.max !== undefined && !(n <= opts.max)) throw new InvalidArgumentError(describe());
    return n;
  };
}

const range = (min: number, max: number) => (max === Number.MAX_SAFE_INTEGER ? ` ≥ ${min}` : ` in [${min}, ${max}]`);

const ID_RE = new RegExp(ID_PATTERN);
const REGION_RE = new RegExp(RegionId.pattern as string);

/** A room or participant id as the router accepts it (shared/schemas ID_PATTERN). */
export function idArg(value: string): string {
  if (!ID_RE.test(value)) throw new InvalidArgumentError('must be 1–128 characters of A-Z a-z 0-9 . _ : -');
  return value;
}

/** The router's limit on a client-measured RTT (shared/schemas AllocateRequest.latencies). */
export const MAX_LATENCY_MS = 60_000;

/**
 * `--latency us-west=80` (repeatable; `us-west=80,eu-west=140` also accepted) accumulated into a
 * record. A region given twice is an error.
 */
export function latencyArg(value: string, previous: Record<string, number> | undefined): Record<string, number> {
  const out = { ...(previous ?? {}) };
  for (const part of value.split(',')) {
    const m = /^\s*([^=\s]+)\s*=\s*([^=\s]+)\s*$/.exec(part);
    if (!m) throw new InvalidArgumentError(`expected REGION=MS, e.g. us-west=80 (got "${part}").`);
    const [, region, ms] = m as unknown as [string, string, string];
    if (!REGION_RE.test(region)) throw new InvalidArgumentError(`"${region}" is not a region id (lower-case letters, digits and -).`);
    const n = Number(ms);
    if (!/^\d+(\.\d*)?$/.test(ms) || n > MAX_LATENCY_MS) throw new InvalidArgumentError(`RTT for ${region} must be a number of ms in [0, ${MAX_LATENCY_MS}] (got "${ms}").`);
    if (region in out) throw new InvalidArgumentError(`region ${region} given twice.`);
    out[region] = n;
  }
  return out;
}

/** Router URL: `--router`, else GEO_SFU_ROUTER_URL, else the config spec's default. */
export function resolveRouterUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const envName = CONFIG_SPEC.routerUrl.env;
  const [raw, source] = flag !== undefined ? [flag, '--router'] : env[envName] ? [env[envName]!, envName] : [CONFIG_SPEC.routerUrl.default, 'default'];
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(source, `must be an http(s) URL such as http://127.0.0.1:8080 (got "${raw}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(source, `must be an http(s) URL (got "${raw}")`);
  return url.href.replace(/\/+$/, '');
}

/** API key for server-side callers (GEO_SFU_API_KEY), sent as `Authorization: Bearer`. */
export function resolveApiKey(env: NodeJS.ProcessEnv): string | undefined {
  const key = env[CONFIG_SPEC.apiKey.env];
  return key ? key : undefined;
}

/** Admin token (GEO_SFU_ADMIN_TOKEN), sent as `Authorization: Bearer` where the router needs it (a room in production mode). */
export function resolveAdminToken(env: NodeJS.ProcessEnv): string | undefined {
  const token = env[CONFIG_SPEC.adminToken.env];
  return token ? token : undefined;
}
