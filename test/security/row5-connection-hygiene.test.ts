/**
 * Issue 14, row 5: the router's and the agents' HTTP listeners close slow-body connections
 * (request timeout), refuse connections beyond their cap, cap `/events` subscribers per IP and in
 * total, answer 429 to an address that keeps failing authentication, and limit signed
 * `/v1/nodes/*` calls per verified node id (never per IP: every node here shares 127.0.0.1).
 */
import net from 'node:net';
import { Agent as HttpAgent, request } from 'undici';
import { afterEach, expect, it } from 'vitest';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { ADMIN_TOKEN, agentConfig, Agents, waitFor } from '../agent/helpers.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

let router: RunningRouter | null = null;
const agents = new Agents();
const sockets = new Set<net.Socket>();
const dispatchers: HttpAgent[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(dispatchers.splice(0).map((d) => d.destroy()));
  await agents.closeAll();
  await router?.close();
  router = null;
});

/** Polls an async probe until it holds; false when it never did within the bound. */
async function until(probe: () => Promise<boolean>, timeoutMs = 5_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await probe()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

async function world(overrides: Partial<GeoSfuConfig>): Promise<RunningRouter> {
  router = await startRouter(testConfig('memory', overrides));
  return router;
}

/** A raw connection; `closed` flips when the server (or anyone) ends it. */
function open(baseUrl: string, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; state: { closed: boolean; data: string } }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port), localAddress });
    sockets.add(socket);
    const state = { closed: false, data: '' };
    socket.on('data', (chunk: Buffer) => (state.data += chunk.toString('latin1')));
    socket.on('close', () => (state.closed = true));
    socket.on('error', () => (state.closed = true));
    socket.once('connect', () => resolve({ socket, state }));
    socket.once('error', reject);
  });
}

/** Starts `count` POSTs announcing 1,000 body bytes and sending one every 200 ms; returns their states. */
async function slowBodies(baseUrl: string, path: string, count: number, headers: Record<string, string> = {}) {
  const conns = await Promise.all(Array.from({ length: count }, () => open(baseUrl)));
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  for (const { socket } of conns) socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n${extra}\r\n{`);
  const drip = setInterval(() => {
    for (const { socket, state } of conns) if (!state.closed) socket.write(' ');
  }, 200);
  return { states: conns.map((c) => c.state), stop: () => clearInterval(drip) };
}

it('slow-body connections are closed by the request timeout (router and agent)', async () => {
  const timeouts = { httpRequestTimeoutMs: 1_000, httpHeadersTimeoutMs: 500 };
  const r = await world(timeouts);
  const agent = await agents.start(agentConfig(r.url, { agentRegion: 'eu-west', ...timeouts }));
  const toRouter = await slowBodies(r.url, '/allocate', 20);
  const toAgent = await slowBodies(agent.url, '/admin/cordon', 20, { authorization: `Bearer ${ADMIN_TOKEN}` });
  try {
    const all = [...toRouter.states, ...toAgent.states];
    // Each trickles a byte every 200 ms, so only the request timeout can end them; 8 s bounds the wait.
    await waitFor('the slow requests to be closed', () => all.every((s) => s.closed), 8_000).catch(() => undefined);
    const stillOpen = { router: toRouter.states.filter((s) => !s.closed).length, agent: toAgent.states.filter((s) => !s.closed).length };
    console.log('slow-body connections still open after the wait (of 20 each):', JSON.stringify(stillOpen));
    expect(stillOpen).toEqual({ router: 0, agent: 0 });
    // A closed one was answered 408 or just closed, never served.
    for (const s of all) expect(s.data === '' || s.data.startsWith('HTTP/1.1 408')).toBe(true);
  } finally {
    toRouter.stop();
    toAgent.stop();
  }
  // The listener still serves.
  expect((await request(`${r.url}/healthz`)).statusCode).toBe(200);
});

it('refuses connections beyond the cap and takes new ones once some close', async () => {
  const r = await world({ httpMaxConnections: 5 });
  const held: Array<Awaited<ReturnType<typeof open>>> = [];
  for (let i = 0; i < 5; i++) {
    const c = await open(r.url);
    c.socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    held.push(c);
  }
  await waitFor('the 5 held connections to be served', () => held.every((c) => c.state.data.startsWith('HTTP/1.1 200')));
  const extra = await open(r.url);
  extra.socket.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
  await waitFor('the sixth connection to be dropped', () => extra.state.closed, 5_000).catch(() => undefined);
  console.log(`sixth connection: closed=${extra.state.closed} answered=${JSON.stringify(extra.state.data.slice(0, 15))}`);
  expect([extra.state.closed, extra.state.data]).toEqual([true, '']);
  expect(held.every((c) => !c.state.closed)).toBe(true);
  held[0]!.socket.destroy();
  expect(await until(async () => (await request(`${r.url}/healthz`).catch(() => null))?.statusCode === 200)).toBe(true);
});

it('caps /events subscribers per IP and in total', async () => {
  const r = await world({ eventsMaxPerIp: 2, eventsMaxSubscribers: 3 });
  const from = (localAddress: string) => {
    const d = new HttpAgent({ localAddress });
    dispatchers.push(d);
    return d;
  };
  const subscribe = async (dispatcher: HttpAgent) => {
    const res = await request(`${r.url}/events`, { dispatcher });
    if (res.statusCode !== 200) await res.body.text();
    return res;
  };
  const a = from('127.0.0.1');
  const b = from('127.0.0.2');
  const first = await subscribe(a);
  const second = await subscribe(a);
  const thirdSameIp = await subscribe(a);
  const otherIp = await subscribe(b);
  const beyondTotal = await subscribe(b);
  const statuses = [first, second, thirdSameIp, otherIp, beyondTotal].map((res) => res.statusCode);
  console.log('/events statuses (2 per IP, 3 in all):', statuses.join(' '));
  expect(statuses).toEqual([200, 200, 429, 200, 503]);
  // A subscriber that leaves frees its place.
  first.body.destroy();
  const freed = await until(async () => {
    const res = await subscribe(b);
    if (res.statusCode === 200) res.body.destroy();
    return res.statusCode === 200;
  });
  expect(freed).toBe(true);
  second.body.destroy();
  otherIp.body.destroy();
});


it('answers 429 to an address that keeps failing authentication, not to others (router and agent)', async () => {
  const r = await world({ failedAuthPerMinute: 3 });
  const agent = await agents.start(agentConfig(r.url, { agentRegion: 'eu-west', clusterSecret: r.config.clusterSecret, failedAuthPerMinute: 3 }));
  const local = new HttpAgent({ localAddress: '127.0.0.1' });
  const other = new HttpAgent({ localAddress: '127.0.0.2' });
  dispatchers.push(local, other);
  const get = async (url: string, token: string, dispatcher: HttpAgent) => {
    const res = await request(url, { headers: { authorization: `Bearer ${token}` }, dispatcher });
    await res.body.text();
    return res.statusCode;
  };
  const post = async (url: string, token: string, dispatcher: HttpAgent) => {
    const res = await request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"cordoned":false}', dispatcher });
    await res.body.text();
    return res.statusCode;
  };
  const routerAnswers = [];
  for (let i = 0; i < 5; i++) routerAnswers.push(await get(`${r.url}/rooms`, 'wrong-admin-token', local));
  const agentAnswers = [];
  for (let i = 0; i < 5; i++) agentAnswers.push(await post(`${agent.url}/admin/cordon`, 'wrong-admin-token', local));
  console.log('router /rooms with a wrong token:', routerAnswers.join(' '), '| agent /admin/cordon:', agentAnswers.join(' '));
  expect(routerAnswers).toEqual([401, 401, 401, 429, 429]);
  expect(agentAnswers).toEqual([401, 401, 401, 429, 429]);
  // Blocked: even the right token from that address waits for the window.
  expect(await get(`${r.url}/rooms`, r.config.adminToken, local)).toBe(429);
  // Another address is not.
  expect(await get(`${r.url}/rooms`, 'wrong-admin-token', other)).toBe(401);
  expect(await get(`${r.url}/rooms`, r.config.adminToken, other)).toBe(200);
  expect(await post(`${agent.url}/admin/cordon`, ADMIN_TOKEN, other)).toBe(200);
  // Requests without a credential are not what is limited.
  expect((await request(`${r.url}/regions`, { dispatcher: local })).statusCode).toBe(200);
});

it('limits signed /v1/nodes/* calls per verified node id, not per address', async () => {
  const r = await world({ nodeCallsPerMinute: 3 });
  const call = async (path: string, body: unknown) =>
    (await signedCall({ secret: r.config.clusterSecret, baseUrl: r.url, method: 'POST', path, body, timeoutMs: 5_000 })).statusCode;
  const registration = (nodeId: string) => ({ nodeId, region: 'us-west', controlUrl: 'http://127.0.0.1:9', signalingUrl: 'http://127.0.0.1:9', probeUrl: 'http://127.0.0.1:9/probe', maxParticipants: 10, version: 'test' });
  const heartbeat = (nodeId: string) => ({
    nodeId, seq: 1, draining: false, cordoned: false, maxParticipants: 10, peerRtt: {},
    load: { cpu: 0, memory: 0, participants: 0, rooms: 0, transports: 0, producers: 0, consumers: 0, workers: 1 },
  });
  const a = [await call('/v1/nodes/register', registration('us-west-1'))];
  for (let i = 0; i < 3; i++) a.push(await call('/v1/nodes/heartbeat', { ...heartbeat('us-west-1'), seq: i + 1 }));
  const b = [await call('/v1/nodes/register', registration('us-west-2')), await call('/v1/nodes/heartbeat', heartbeat('us-west-2'))];
  console.log('node us-west-1:', a.join(' '), '| node us-west-2 (same address):', b.join(' '));
  expect(a).toEqual([200, 200, 200, 429]);
  expect(b).toEqual([200, 200]);
});
