import Fastify from 'fastify';
import { Pool } from 'undici';
import { expect, it } from 'vitest';
import { httpServerFactory } from '../../shared/http.ts';

const settings = { httpRequestTimeoutMs: 30_000, httpHeadersTimeoutMs: 10_000, httpKeepAliveTimeoutMs: 60_000, httpMaxConnections: 0 };

/**
 * Shutting down while a keep-alive client's request is under way: the connection was not idle
 * when the close began, so Node's server.close() left it open, and the close waited for the
 * keep-alive timeout after the answer (72 s by default: routers and agents took that long to stop
 * while heartbeats were in flight). The answer still arrives; then the connection ends.
 */
it('closing does not wait for the keep-alive timeout of a connection whose request was under way', async () => {
  const app = Fastify({ logger: false, serverFactory: httpServerFactory(settings) });
  let arrived = () => {};
  app.get('/slow', async () => {
    arrived();
    await new Promise((r) => setTimeout(r, 300));
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1, keepAliveTimeout: 60_000 });
  try {
    // A first request leaves an idle keep-alive connection; the second is under way at the close.
    await (await pool.request({ method: 'GET', path: '/slow' })).body.dump();
    const secondArrived = new Promise<void>((resolve) => (arrived = resolve));
    const answer = pool.request({ method: 'GET', path: '/slow' });
    await secondArrived;
    const started = performance.now();
    const closed = app.close().then(() => performance.now() - started);
    const res = await answer;
    const body = await res.body.json();
    const closeMs = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Number.POSITIVE_INFINITY), 10_000))]);
    console.log(`answered ${res.statusCode} during the close; closed ${closeMs.toFixed(0)} ms after it began (keep-alive ${settings.httpKeepAliveTimeoutMs} ms)`);
    expect([res.statusCode, body]).toEqual([200, { ok: true }]);
    // Well under the keep-alive timeout: the connection ended with its answer.
    expect(closeMs).toBeLessThan(settings.httpKeepAliveTimeoutMs / 6);
  } finally {
    await pool.destroy();
    await app.close();
  }
});
