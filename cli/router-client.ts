import { FormatRegistry, Type, TypeRegistry, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Agent, request } from 'undici';
import { CONFIG_SPEC } from '../shared/config/spec.ts';
import {
  AllocatePreview,
  AllocateResponse,
  NodeAdminStatus,
  QualityAlert,
  RegionsResponse,
  RoomView,
  ScalingView,
  type AllocateRequest,
  type ErrorBody,
} from '../shared/schemas/index.ts';
import { CliError } from './errors.ts';

const RoomIds = Type.Object({ rooms: Type.Array(Type.String()) });
const Alerts = Type.Object({ alerts: Type.Array(QualityAlert) });

/** A credential the CLI sends, and the variable it comes from (named when the router refuses it). */
interface Credential {
  value: string | undefined;
  env: string;
}

/**
 * The router's HTTP API as the CLI uses it: the public routes (GET /regions, POST /allocate and its
 * dry run) with the API key, and the admin routes (rooms, nodes, alerts, scaling) with the admin token.
 * Every answer is checked against the shared schema, so a router of another version fails with a
 * message instead of a crash halfway through a table.
 */

// The shared schemas use `date-time` and Type.Unsafe string enums (reasons, exclusion codes);
// fastify validates them with ajv, the CLI with TypeBox's Value, which needs both registered.
if (!TypeRegistry.Has('Unsafe')) {
  TypeRegistry.Set('Unsafe', (schema: { enum?: unknown[] }, value) => !Array.isArray(schema.enum) || schema.enum.includes(value));
}
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

export const ROUTER_TIMEOUT_MS = 10_000;

export interface RouterClientOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  /** Sent to the admin routes (and GET /rooms/:id, which needs it in production mode). */
  adminToken?: string | undefined;
  timeoutMs?: number;
}

export class RouterClient {
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(private readonly opts: RouterClientOptions) {
    this.#timeoutMs = opts.timeoutMs ?? ROUTER_TIMEOUT_MS;
    this.#agent = new Agent({ connectTimeout: this.#timeoutMs, keepAliveTimeout: 5_000 });
  }

  regions(): Promise<RegionsResponse> {
    return this.#call('GET', '/regions', undefined, RegionsResponse, this.#apiKey);
  }

  room(roomId: string): Promise<RoomView> {
    return this.#call('GET', `/rooms/${encodeURIComponent(roomId)}`, undefined, RoomView, this.#admin);
  }

  async roomIds(): Promise<string[]> {
    return (await this.#call<{ rooms: string[] }>('GET', '/rooms', undefined, RoomIds, this.#admin)).rooms;
  }

  /** Removes the participant from the room (the router closes its sessions). */
  async kick(roomId: string, participantId: string): Promise<void> {
    await this.#call('DELETE', `/rooms/${encodeURIComponent(roomId)}/participants/${encodeURIComponent(participantId)}`, undefined, null, this.#admin);
  }

  allocate(body: AllocateRequest): Promise<AllocateResponse> {
    return this.#call('POST', '/allocate', body, AllocateResponse, this.#apiKey);
  }

  allocateDryRun(body: AllocateRequest): Promise<AllocatePreview> {
    return this.#call('POST', '/allocate/dry-run', body, AllocatePreview, this.#apiKey);
  }

  cordon(nodeId: string, cordoned: boolean): Promise<NodeAdminStatus> {
    return this.#call('POST', `/nodes/${encodeURIComponent(nodeId)}/cordon`, { cordoned }, NodeAdminStatus, this.#admin);
  }

  drain(nodeId: string): Promise<NodeAdminStatus> {
    return this.#call('POST', `/nodes/${encodeURIComponent(nodeId)}/drain`, undefined, NodeAdminStatus, this.#admin);
  }

  async alerts(): Promise<QualityAlert[]> {
    return (await this.#call<{ alerts: QualityAlert[] }>('GET', '/alerts', undefined, Alerts, this.#admin)).alerts;
  }

  scaling(): Promise<ScalingView> {
    return this.#call('GET', '/scaling', undefined, ScalingView, this.#admin);
  }

  get #apiKey(): Credential {
    return { value: this.opts.apiKey, env: CONFIG_SPEC.apiKey.env };
  }

  get #admin(): Credential {
    return { value: this.opts.adminToken, env: CONFIG_SPEC.adminToken.env };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  /** `schema`: the answer's, or null for a route that answers 204; `credential`: the bearer token sent (the API key, or the admin token). */
  async #call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, schema: TSchema | null, credential: Credential): Promise<T> {
    const what = `${method} ${decodeURIComponent(path)}`;
    const url = `${this.opts.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (credential.value) headers.authorization = `Bearer ${credential.value}`;
    let res;
    try {
      res = await request(url, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        dispatcher: this.#agent,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (err) {
      throw new CliError('ROUTER_UNREACHABLE', `cannot reach the router at ${this.opts.baseUrl} (${describeNetworkError(err)})`, { url });
    }
    const text = await res.body.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 400) {
      const error = routerError(what, res.statusCode, parsed, res.headers['retry-after']);
      if (res.statusCode === 401 && !credential.value) error.message += ` (set ${credential.env})`;
      throw error;
    }
    if (schema === null) {
      if (res.statusCode === 204) return undefined as T;
      throw new CliError('UNEXPECTED_RESPONSE', `${what} answered ${res.statusCode} instead of 204`, { status: res.statusCode });
    }
    if (parsed === undefined || !Value.Check(schema, parsed)) {
      const first = parsed === undefined ? undefined : Value.Errors(schema, parsed).First();
      const where = first ? `: ${first.path || '/'} ${first.message}` : ': not JSON';
      throw new CliError('UNEXPECTED_RESPONSE', `${what} answered ${res.statusCode} with an unexpected body${where}`, { status: res.statusCode });
    }
    return parsed as T;
  }
}

function routerError(what: string, status: number, body: unknown, retryAfter: string | string[] | undefined): CliError {
  const error = (body as Partial<ErrorBody> | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : `HTTP_${status}`;
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
  const field = typeof error?.field === 'string' ? error.field : undefined;
  const retry = typeof retryAfter === 'string' ? Number(retryAfter) : undefined;
  let text = `${what} failed: ${status} ${code}: ${message}`;
  if (field !== undefined) text += ` (field: ${field})`;
  if (retry !== undefined && Number.isFinite(retry)) text += `; retry after ${retry} s`;
  return new CliError(code, text, {
    status,
    ...(field !== undefined ? { field } : {}),
    ...(retry !== undefined && Number.isFinite(retry) ? { retryAfterSeconds: retry } : {}),
  });
}

/** "connect ECONNREFUSED 127.0.0.1:1", "timeout after 10000 ms", ... */
export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT' || e?.code === 'UND_ERR_CONNECT_TIMEOUT') return 'timed out';
  return e?.cause?.message ?? e?.message ?? String(err);
}
