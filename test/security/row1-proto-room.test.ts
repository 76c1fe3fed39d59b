import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, expect, it } from 'vitest';
import { ok, joinWith } from '../signaling/helpers.ts';
import { cleanupNamespaces, DATABASE_URL, REDIS_URL, runNamespace } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnAgent, spawnRouter } from '../utils/service-process.ts';
import { unexpectedErrors, until } from './helpers.ts';

/**
 * Issue #14, row 1: a participant joins a room named `__proto__` on a router and an agent running
 * as processes (real Redis). The agent's cascade asks the router which nodes serve its rooms right
 * after the join and then every poll period; before the fix the router's answer lost the room to
 * the prototype and the agent died on `nodes.filter is not a function`. Now the agent keeps
 * serving the participant through several polls and nothing unexpected was counted.
 */
const services: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await cleanupNamespaces();
});

it('a participant in a room named __proto__ does not end the agent hosting it', async () => {
  const t0 = performance.now();
  const marks: string[] = [];
  const at = (what: string) => marks.push(`${what} ${(performance.now() - t0).toFixed(0)} ms`);
  const ns = runNamespace();
  const apiKey = randomBytes(24).toString('hex');
  const adminToken = randomBytes(24).toString('hex');
  const common = {
    GEO_SFU_CLUSTER_SECRET: randomBytes(24).toString('hex'),
    GEO_SFU_TOKEN_SECRETS: `k1:${randomBytes(24).toString('hex')}`,
    GEO_SFU_ADMIN_TOKEN: adminToken,
    GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
  };
  const router = await spawnRouter({ ...common, REDIS_URL, DATABASE_URL, GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix, GEO_SFU_PG_SCHEMA: ns.pgSchema, GEO_SFU_API_KEY: apiKey });
  services.push(router);
  at('router');
  const agent = await spawnAgent({ ...common, GEO_SFU_AGENT_REGION: 'us-west', GEO_SFU_AGENT_ID: 'us-west-proto', GEO_SFU_ROUTER_URL: router.url });
  services.push(agent);
  at('agent');
  const exits: Array<number | null> = [];
  agent.child.once('exit', (code) => exits.push(code));
  const agentLog: string[] = [];
  agent.child.stderr!.on('data', (chunk: Buffer) => agentLog.push(chunk.toString()));
  agent.child.stdout!.on('data', (chunk: Buffer) => agentLog.push(chunk.toString()));

  const allocate = async () => {
    const res = await request(`${router.url}/allocate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify({ roomId: '__proto__', participantId: 'alice' }),
    });
    return { status: res.statusCode, body: (await res.body.json()) as { token?: string } };
  };
  // The agent registers on its own; wait until the router can place on it.
  let allocated = await allocate();
  for (let i = 0; i < 100 && allocated.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    allocated = await allocate();
  }
  expect(allocated.status).toBe(200);
  at('allocated');
  const { socket } = await joinWith(agent.url, { token: allocated.body.token });
  const { rtpCapabilities } = await ok(socket, 'getRouterRtpCapabilities', {});
  await ok(socket, 'join', { rtpCapabilities, displayName: '__proto__' });
  at('joined');
  const stillUp = () => {
    if (exits.length > 0) throw new Error(`agent exited with code ${exits[0]}:\n${agentLog.join('').slice(-3_000)}`);
  };
  // The join reached the router (so its room-nodes answer lists the room)...
  await until(
    'the router to count alice joined',
    async () => {
      stillUp();
      const res = await fetch(`${router.url}/rooms/__proto__`, { headers: { authorization: `Bearer ${adminToken}` } });
      const room = (await res.json()) as { participants?: Array<{ participantId: string; status: string }> };
      return room.participants?.some((p) => p.participantId === 'alice' && p.status === 'joined') ?? false;
    },
    10_000,
  );
  // ...then three of the agent's 2 s room-nodes polls (the first ran ~20 ms after the join).
  const pollsDoneAt = performance.now() + 6_500;
  await until(
    'three room-nodes polls',
    async () => {
      stillUp();
      return performance.now() > pollsDoneAt;
    },
    10_000,
  );

  stillUp();
  expect(await ok(socket, 'getRouterRtpCapabilities', {})).toHaveProperty('rtpCapabilities');
  expect(await unexpectedErrors(agent.url)).toBe(0);
  expect(await unexpectedErrors(router.url)).toBe(0);
  at('alive after three polls');
  console.log(`row 1: ${marks.join(', ')}`);
  // Leaving (rather than dropping the connection) lets the agent drain at once when stopped.
  await ok(socket, 'leave', {});
  socket.close();
}, 120_000);
