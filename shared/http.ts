import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyRequest, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { GeoSfuConfig } from './config/index.ts';
import { DependencyUnavailableError, GeoSfuError, NoCapacityError, TooManyRequestsError } from './errors.ts';
import type { ErrorBody } from './schemas/index.ts';
import { LocalWindowCounter, type WindowCounter } from './limits.ts';
import { SIGNATURE_HEADER } from './signed-request.ts';

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

export type ListenerSettings = Pick<GeoSfuConfig, 'httpRequestTimeoutMs' | 'httpHeadersTimeoutMs' | 'httpKeepAliveTimeoutMs' | 'httpMaxConnections'>;

/**
 * The HTTP(S) server of the router and the agents, as a fastify `serverFactory`: request, headers
 * and keep-alive timeouts and a cap on concurrent connections (GEO_SFU_HTTP_*). Node checks the
 * request and headers timeouts on a timer (30 s by default, longer than the timeouts themselves):
 * it runs at a quarter of the headers timeout here, at most once a second.
 */
export function httpServerFactory(settings: ListenerSettings, tls?: https.ServerOptions | null) {
  const requestTimeout = settings.httpRequestTimeoutMs;
  const headersTimeout = Math.min(settings.httpHeadersTimeoutMs, requestTimeout);
  const options: http.ServerOptions = {
    requestTimeout,
    headersTimeout,
    keepAliveTimeout: settings.httpKeepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, Math.max(25, Math.floor(headersTimeout / 4))),
  };
  return (handler: http.RequestListener): http.Server => {
    // close() ends the connections idle at that moment; one whose request is under way would stay
    // open for the keep-alive timeout after its answer, and the close would wait that long (agents
    // heartbeating while a router stops). Such a connection ends with its answer instead.
    const endWhenClosing: http.RequestListener = (req, res) => {
      res.once('finish', () => {
        if (!server.listening) req.socket.end();
      });
      handler(req, res);
    };
    const server = tls ? https.createServer({ ...tls, ...options }, endWhenClosing) : http.createServer(options, endWhenClosing);
    server.keepAliveTimeout = settings.httpKeepAliveTimeoutMs;
    // Past the cap Node closes each new connection as soon as it is accepted.
    if (settings.httpMaxConnections > 0) server.maxConnections = settings.httpMaxConnections;
    return server;
  };
}

/** True when the request presents a credential: a bearer token, an API key or a request signature. */
const presentsCredential = (req: FastifyRequest): boolean =>
  req.headers.authorization !== undefined || req.headers['x-api-key'] !== undefined || req.headers[SIGNATURE_HEADER] !== undefined;

const FAILED_AUTH_WINDOW_MS = 60_000;

/**
 * Per client IP, the 401 answers of the current minute (GEO_SFU_FAILED_AUTH_PER_MINUTE): past the
 * limit, that address's requests presenting a credential get 429 until the minute is over, before
 * the credential is looked at, so guessing tokens or keys costs a minute per few tries. Requests
 * without a credential are not refused (they are not guesses).
 */
export interface FailedAuthLimitOptions {
  perMinute: number;
  /** Where the failures are counted: default this process's memory (router replicas share theirs in Redis). */
  counter?: WindowCounter;
  now?: () => number;
}

export const failedAuthLimit = fp<FailedAuthLimitOptions>(
  async (app, { perMinute, counter, now = Date.now }) => {
    if (perMinute <= 0) return;
    const failures = counter ?? new LocalWindowCounter(now);
    app.addHook('onRequest', async (req, reply) => {
      if (!presentsCredential(req)) return;
      const { count, resetInMs } = await failures.peek(req.ip, FAILED_AUTH_WINDOW_MS);
      if (count >= perMinute) {
        const retryAfterS = Math.max(1, Math.ceil(resetInMs / 1000));
        void reply.header('retry-after', String(retryAfterS));
        throw new TooManyRequestsError(`more than ${perMinute} failed authentications from this address in a minute; retry in ${retryAfterS} s`);
      }
    });
    app.addHook('onResponse', async (req, reply) => {
      if (reply.statusCode === 401) await failures.hit(req.ip, FAILED_AUTH_WINDOW_MS);
    });
  },
  { name: 'geo-sfu-failed-auth-limit' },
);

/** What GET /metrics answers (a prom-client registry, read at scrape time). */
export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The listener of its own serving GET /metrics (GEO_SFU_*_METRICS_PORT), or null when metrics are on the main port. */
    metricsServer: http.Server | null;
  }
}

export interface MetricsListener {
  host: string;
  /** '' = on the app's own port; else a port of its own (0: any free port). */
  port: string;
  settings: ListenerSettings;
  tls?: https.ServerOptions | null;
}

/**
 * Serves GET /metrics on the app's port, or, when a metrics port is set, on a listener of its own
 * serving nothing else (opened when the app is ready, closed with it): the main port can then be
 * exposed to clients while the metrics port stays internal.
 */
export function serveMetrics(app: FastifyInstance, source: MetricsSource, listener: MetricsListener): void {
  if (listener.port === '') {
    app.decorate('metricsServer', null);
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => reply.type(source.contentType).send(await source.render()));
    return;
  }
  const server = httpServerFactory(listener.settings, listener.tls)((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'this listener serves GET /metrics only' } }));
      return;
    }
    source.render().then(
      (body) => res.writeHead(200, { 'content-type': source.contentType }).end(body),
      (err: unknown) => {
        app.log.error({ err }, 'metrics scrape failed');
        res.writeHead(500).end();
      },
    );
  });
  app.decorate('metricsServer', server);
  app.addHook('onReady', () => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listener.port), listener.host, () => {
      server.off('error', reject);
      app.log.info({ port: (server.address() as AddressInfo).port }, 'metrics listening on a port of their own');
      resolve();
    });
  }));
  app.addHook('onClose', () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
}
