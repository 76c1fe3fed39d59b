import { afterAll, afterEach, expect, it } from 'vitest';
import { request } from 'undici';
import { signRequest } from '../../shared/signed-request.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';

/**
 * Limits shared by router replicas (router/limits.ts): two routers on one Redis prefix enforce one
 * /allocate rate limit and one failed-authentication limit, and refuse a signed request replayed to
 * the other replica. With Redis cut, each decides alone (agents' signed calls still pass) and says so
 * in geo_sfu_limit_local_decisions_total.
 */
const routers: RunningRouter[] = [];
let proxy: TcpFaultProxy | null = null;
afterEach(async () => {
  await Promise.all(routers.splice(0).map((r) => r.close()));
  await proxy?.close();
  proxy = null;
});
afterAll(cleanupNamespaces);

const ALLOCATE_PER_MINUTE = 6;
const FAILED_AUTH_PER_MINUTE = 3;

/** Two routers sharing one prefix, each reaching Redis through the fault proxy. */
async function twoRouters(): Promise<[RunningRouter, RunningRouter]> {
  const target = new URL(REDIS_URL);
  proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
  const url = new URL(target);
  url.port = String(proxy.port);
  const ns = runNamespace();
  const config = testConfig('real', { redisUrl: url.href, redisTimeoutMs: 500, rateLimitPerMinute: ALLOCATE_PER_MINUTE, apiKeyRateLimitPerMinute: ALLOCATE_PER_MINUTE, failedAuthPerMinute: FAILED_AUTH_PER_MINUTE, trustProxy: true }, ns);
  for (let i = 0; i < 2; i++) routers.push(await startRouter(config, undefined, { sharedLimits: true }));
  return [routers[0]!, routers[1]!];
}

const apiKey = () => ({ authorization: `Bearer ${routers[0]!.config.apiKey}` });
/** Wrong credentials from another address (X-Forwarded-For, trusted here) than the signed calls', which they would block. */
const guess = { authorization: 'Bearer wrong-guess', 'x-forwarded-for': '203.0.113.7' };
const call = (r: RunningRouter, i: number, headers: Record<string, string>) => allocate(r.url, { roomId: 'limited', participantId: `p${i}` }, headers);

/** A signed agent call that needs no Redis to answer (an empty room-nodes query), and its exact bytes for a replay. */
function signedRoomNodes(secret: string): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ nodeId: 'us-west-1', roomIds: [] });
  return { headers: { ...signRequest(secret, { method: 'POST', path: '/v1/nodes/room-nodes', body }, Date.now()), 'content-type': 'application/json' }, body };
}
async function send(r: RunningRouter, signed: { headers: Record<string, string>; body: string }): Promise<{ status: number; code?: string }> {
  const res = await request(`${r.url}/v1/nodes/room-nodes`, { method: 'POST', headers: signed.headers, body: signed.body });
  const body = (await res.body.json()) as { error?: { code: string } };
  return { status: res.statusCode, ...(body.error ? { code: body.error.code } : {}) };
}

async function localDecisions(r: RunningRouter): Promise<Record<string, number>> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^geo_sfu_limit_local_decisions_total\{limit="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

it('two replicas enforce one /allocate limit, one failed-auth limit, and refuse a request replayed to the other', async () => {
  const [a, b] = await twoRouters();
  // Alternating replicas: the limit holds for the pair, not per replica (which would allow 2×).
  const statuses: number[] = [];
  for (let i = 0; i < ALLOCATE_PER_MINUTE * 2; i++) statuses.push((await call(i % 2 === 0 ? a : b, i, apiKey())).status);
  console.log(`/allocate over two replicas, limit ${ALLOCATE_PER_MINUTE}/min: ${statuses.join(' ')}`);
  expect(statuses.slice(0, ALLOCATE_PER_MINUTE).filter((s) => s === 429)).toEqual([]);
  expect(statuses.slice(ALLOCATE_PER_MINUTE)).toEqual(Array(ALLOCATE_PER_MINUTE).fill(429));

  const guesses: number[] = [];
  for (let i = 0; i < FAILED_AUTH_PER_MINUTE * 2; i++) guesses.push((await call(i % 2 === 0 ? a : b, i, guess)).status);
  expect(guesses).toEqual([...Array(FAILED_AUTH_PER_MINUTE).fill(401), ...Array(FAILED_AUTH_PER_MINUTE).fill(429)]);

  const signed = signedRoomNodes(a.config.clusterSecret);
  expect(await send(a, signed)).toEqual({ status: 200 });
  expect(await send(b, signed)).toEqual({ status: 401, code: 'SIGNATURE_REPLAYED' });
  expect(await send(a, signed)).toEqual({ status: 401, code: 'SIGNATURE_REPLAYED' });
  expect(await send(b, signedRoomNodes(a.config.clusterSecret))).toEqual({ status: 200 });
  expect(await localDecisions(a)).toEqual({});
});

it('with Redis cut each replica decides alone: signed calls pass, its own replays and its own limit are still refused, and the metric says so', async () => {
  const [a, b] = await twoRouters();
  const before = signedRoomNodes(a.config.clusterSecret);
  expect(await send(a, before)).toEqual({ status: 200 });
  proxy!.cut();

  const signed = signedRoomNodes(a.config.clusterSecret);
  expect(await send(a, signed)).toEqual({ status: 200 });
  expect(await send(a, signed)).toEqual({ status: 401, code: 'SIGNATURE_REPLAYED' });
  expect(await send(a, before)).toEqual({ status: 401, code: 'SIGNATURE_REPLAYED' });
  // The other replica cannot know what A saw while Redis is away: the documented gap.
  expect(await send(b, signed)).toEqual({ status: 200 });

  const statuses: number[] = [];
  for (let i = 0; i <= ALLOCATE_PER_MINUTE; i++) statuses.push((await call(a, i, apiKey())).status);
  console.log(`/allocate on one replica with Redis cut, limit ${ALLOCATE_PER_MINUTE}/min: ${statuses.join(' ')}`);
  expect(statuses.slice(0, ALLOCATE_PER_MINUTE).filter((s) => s === 429)).toEqual([]);
  expect(statuses[ALLOCATE_PER_MINUTE]).toBe(429);
  const guesses: number[] = [];
  for (let i = 0; i <= FAILED_AUTH_PER_MINUTE; i++) guesses.push((await call(a, i, guess)).status);
  expect(guesses).toEqual([...Array(FAILED_AUTH_PER_MINUTE).fill(401), 429]);

  const local = await localDecisions(a);
  console.log(`local decisions on the cut replica: ${JSON.stringify(local)}`);
  expect(local.nonce).toBeGreaterThanOrEqual(1); // the fresh call; replays are refused by the process's own cache first
  expect(local.allocate).toBeGreaterThanOrEqual(ALLOCATE_PER_MINUTE + 1);
  expect(local.failed_auth).toBeGreaterThanOrEqual(FAILED_AUTH_PER_MINUTE + 1);

  // Redis back: decisions are shared again (a replay to the other replica is refused there).
  proxy!.restore();
  const deadline = Date.now() + 10_000;
  let again = signedRoomNodes(a.config.clusterSecret);
  for (;;) {
    const localBefore = (await localDecisions(a)).nonce;
    again = signedRoomNodes(a.config.clusterSecret);
    expect(await send(a, again)).toEqual({ status: 200 });
    if ((await localDecisions(a)).nonce === localBefore) break;
    if (Date.now() > deadline) throw new Error('limits did not return to Redis within 10 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(await send(b, again)).toEqual({ status: 401, code: 'SIGNATURE_REPLAYED' });
});

it('with Redis slow rather than gone, only the first request waits for its timeout: the limits then stay local for a second', async () => {
  const [a] = await twoRouters();
  proxy!.delay(5_000);
  const timed = async () => {
    const started = performance.now();
    expect(await send(a, signedRoomNodes(a.config.clusterSecret))).toEqual({ status: 200 });
    return performance.now() - started;
  };
  const first = await timed();
  const second = await timed();
  console.log(`signed call with Redis delayed 5 s (timeout ${a.config.redisTimeoutMs} ms): first ${first.toFixed(0)} ms, next ${second.toFixed(0)} ms`);
  expect(first).toBeGreaterThanOrEqual(a.config.redisTimeoutMs * 0.9);
  expect(second).toBeLessThan(a.config.redisTimeoutMs / 2);
  proxy!.restore();
});
