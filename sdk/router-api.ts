import type { AllocateP2pResponse, AllocateRequest, AllocateSfuResponse } from '../shared/schemas/allocate.ts';
import type { RegionsResponse } from '../shared/schemas/views.ts';

/** What /allocate answers: an SFU edge to join, or (P2P fallback) a place in a direct mesh. */
export type Allocation = SfuAllocation | P2pAllocation;
export type SfuAllocation = AllocateSfuResponse;
export type P2pAllocation = AllocateP2pResponse;

/** How the caller proves it may allocate: a grant from the application's backend, or (servers only) the API key. */
export type AllocateAuth = { grant: string } | { apiKey: string } | Record<string, never>;

/** An HTTP or protocol failure, with the router's `{ error: { code, message, field? } }` when it sent one. */
export class GeoSfuClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
    readonly field?: string,
    /** From Retry-After on 503/429, ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'GeoSfuClientError';
  }
}

/** The 503 code of a room whose region policy allows no region that can take the participant now. */
export const NO_ALLOWED_REGION = 'NO_ALLOWED_REGION';

export interface RouterApiOptions {
  routerUrl: string;
  fetch?: typeof fetch;
  /** Per request, ms. Default 10 000. */
  requestTimeoutMs?: number;
}

export interface AllocateCallOptions {
  auth?: AllocateAuth;
  latencies?: Record<string, number>;
  excludeNodeIds?: string[];
  /** What the participant may do (the body's `permissions`: an API-key caller sets them; a grant caller may only narrow its grant's). */
  permissions?: AllocateRequest['permissions'];
  /** The room's region policy (the body's `policy`: API-key callers only; a grant carries its own). */
  policy?: AllocateRequest['policy'];
  /**
   * On 503/429, wait as Retry-After says (at least 250 ms, at most 10 s a time) while the total stays
   * under this. Default 30 000; 0 = do not retry. `NO_ALLOWED_REGION` (no region the room's policy
   * allows can take the participant) is not waited out: it is thrown at once, with `retryAfterMs`.
   */
  maxRetryWaitMs?: number;
  signal?: AbortSignal;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    });
  });

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** The router's public HTTP API: GET /regions and POST /allocate. */
export class RouterApi {
  readonly routerUrl: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  constructor(o: RouterApiOptions) {
    this.routerUrl = o.routerUrl.replace(/\/+$/, '');
    this.#fetch = o.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#timeoutMs = o.requestTimeoutMs ?? 10_000;
  }

  get fetch(): typeof fetch {
    return this.#fetch;
  }

  async regions(signal?: AbortSignal): Promise<RegionsResponse> {
    return (await this.#request('GET', '/regions', undefined, {}, signal)) as RegionsResponse;
  }

  /** POST /allocate, honouring Retry-After on 503 (no capacity) and 429 (rate limited). */
  async allocate(roomId: string, participantId: string, o: AllocateCallOptions = {}): Promise<Allocation> {
    const body: AllocateRequest = {
      roomId,
      participantId,
      ...(o.latencies && Object.keys(o.latencies).length > 0 ? { latencies: o.latencies } : {}),
      ...(o.excludeNodeIds && o.excludeNodeIds.length > 0 ? { excludeNodeIds: [...new Set(o.excludeNodeIds)] } : {}),
      ...(o.permissions ? { permissions: o.permissions } : {}),
      ...(o.policy ? { policy: o.policy } : {}),
    };
    const headers: Record<string, string> = {};
    const auth = o.auth ?? {};
    if ('grant' in auth) headers.authorization = `Bearer ${auth.grant}`;
    else if ('apiKey' in auth) headers.authorization = `Bearer ${auth.apiKey}`;
    const budget = o.maxRetryWaitMs ?? 30_000;
    const started = Date.now();
    for (;;) {
      try {
        const res = (await this.#request('POST', '/allocate', body, headers, o.signal)) as { mode?: unknown };
        if (res.mode !== 'sfu' && res.mode !== 'p2p') throw new GeoSfuClientError('UNSUPPORTED_MODE', `/allocate answered mode ${JSON.stringify(res.mode)}; this SDK speaks "sfu" and "p2p"`);
        return res as Allocation;
      } catch (err) {
        if (!(err instanceof GeoSfuClientError) || (err.status !== 503 && err.status !== 429) || err.code === NO_ALLOWED_REGION) throw err;
        const wait = Math.min(10_000, Math.max(250, err.retryAfterMs ?? 1_000));
        if (Date.now() - started + wait > budget) throw err;
        await sleep(wait, o.signal);
      }
    }
  }

  async #request(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let res: Response;
    try {
      res = await this.#fetch(`${this.routerUrl}${path}`, {
        method,
        headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      const e = err as Error & { cause?: { message?: string } };
      throw new GeoSfuClientError('NETWORK', `${method} ${path}: ${e.cause?.message ?? e.message}`);
    }
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: reported below
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
      throw new GeoSfuClientError(
        e?.code ?? `HTTP_${res.status}`,
        `${method} ${path}: ${res.status} ${e?.message ?? text.slice(0, 200)}`,
        res.status,
        e?.field,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    }
    if (json === undefined) throw new GeoSfuClientError('BAD_RESPONSE', `${method} ${path}: not JSON`, res.status);
    return json;
  }
}
