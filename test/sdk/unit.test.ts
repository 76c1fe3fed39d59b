import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GeoSfuClientError, parseRetryAfter, RouterApi, summarizeSamples, TypedEmitter } from '../../sdk/index.ts';

describe('summarizeSamples', () => {
  it('median, min, jitter (mean |Δ|) and loss of a series; null is a lost sample', () => {
    expect(summarizeSamples([20, 22, null, 21, 30])).toEqual({ sent: 5, received: 4, minMs: 20, medianMs: 21.5, p95Ms: 30, jitterMs: 4, loss: 0.2 });
    expect(summarizeSamples([null, null])).toEqual({ sent: 2, received: 0, minMs: null, medianMs: null, p95Ms: null, jitterMs: null, loss: 1 });
    expect(summarizeSamples([])).toMatchObject({ sent: 0, loss: 0, medianMs: null });
    expect(summarizeSamples([5])).toMatchObject({ medianMs: 5, jitterMs: null });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 7_000)).toBe(3_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('RouterApi.allocate against a stub router', () => {
  let server: http.Server | null = null;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  async function stub(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void): Promise<string> {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => handler(req, body, res));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  }
  const sfu = (body: Record<string, unknown>) => JSON.stringify({ mode: 'sfu', allocationId: 'a1', roomId: body.roomId, participantId: body.participantId, node: { id: 'n1', region: 'r', signalingUrl: 'http://x' } });

  it('honours Retry-After on 503, sends the grant as a bearer and the latencies and exclusions', async () => {
    const seen: Array<{ at: number; auth?: string; body: Record<string, unknown> }> = [];
    const url = await stub((req, raw, res) => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      seen.push({ at: performance.now(), auth: req.headers.authorization, body });
      if (seen.length === 1) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify({ error: { code: 'NO_CAPACITY', message: 'full' } }));
      } else res.writeHead(200, { 'content-type': 'application/json' }).end(sfu(body));
    });
    const api = new RouterApi({ routerUrl: url });
    const res = await api.allocate('room', 'alice', { auth: { grant: 'g.r.ant' }, latencies: { 'us-west': 20 }, excludeNodeIds: ['n0', 'n0'] });
    expect(res.allocationId).toBe('a1');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(950);
    expect(seen[0]!.auth).toBe('Bearer g.r.ant');
    expect(seen[0]!.body).toEqual({ roomId: 'room', participantId: 'alice', latencies: { 'us-west': 20 }, excludeNodeIds: ['n0'] });
  });

  it('gives up when Retry-After exceeds the budget, with the router’s error code', async () => {
    const url = await stub((_req, _raw, res) => res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' }).end(JSON.stringify({ error: { code: 'NO_CAPACITY', message: 'full' } })));
    const err = (await new RouterApi({ routerUrl: url }).allocate('room', 'alice', { maxRetryWaitMs: 1_000 }).catch((e: unknown) => e)) as GeoSfuClientError;
    expect(err).toBeInstanceOf(GeoSfuClientError);
    expect([err.status, err.code, err.retryAfterMs]).toEqual([503, 'NO_CAPACITY', 5_000]);
  });

  it('a 400 names the field; a mode the SDK does not speak is an error', async () => {
    let n = 0;
    const url = await stub((_req, raw, res) => {
      if (n++ === 0) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'bad', field: 'roomId' } }));
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...JSON.parse(sfu(JSON.parse(raw) as Record<string, unknown>)), mode: 'mcu' }));
    });
    const api = new RouterApi({ routerUrl: url });
    const bad = (await api.allocate('bad room', 'a').catch((e: unknown) => e)) as GeoSfuClientError;
    expect([bad.status, bad.code, bad.field]).toEqual([400, 'BAD_REQUEST', 'roomId']);
    const unknownMode = (await api.allocate('room', 'a').catch((e: unknown) => e)) as GeoSfuClientError;
    expect(unknownMode.code).toBe('UNSUPPORTED_MODE');
  });

  it('an unreachable router is a NETWORK error', async () => {
    const err = (await new RouterApi({ routerUrl: 'http://127.0.0.1:1' }).allocate('r', 'a').catch((e: unknown) => e)) as GeoSfuClientError;
    expect(err.code).toBe('NETWORK');
  });
});

describe('TypedEmitter', () => {
  it('on/off/once/next; a throwing listener does not stop the others', async () => {
    class E extends TypedEmitter<{ x: number }> {
      fire(n: number) {
        this.emit('x', n);
      }
    }
    const e = new E();
    const got: number[] = [];
    const off = e.on('x', (n) => got.push(n));
    e.once('x', (n) => got.push(n * 10));
    const next = e.next('x', (n) => n > 1, 1_000);
    e.fire(1);
    e.fire(2);
    off();
    e.fire(3);
    expect(got).toEqual([1, 10, 2]);
    expect(await next).toBe(2);
  });
});
