/**
 * Issue 14, row 7: signed routes check the signature before they read, parse or validate the body.
 * An unsigned request gets 401 whatever its body (never a 400 naming a field), and an unsigned
 * 4 MB body is answered before it has been sent: nothing of it is read, let alone parsed.
 * Router `/v1/nodes/*`, and a real agent's cascade, move and admin routes.
 */
import net from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Agent, buildAgent } from '../../region-agent/app.ts';
import { AgentSfu } from '../../region-agent/sfu.ts';
import { signedCall } from '../../shared/signed-http.ts';
import { signRequest } from '../../shared/signed-request.ts';
import { CLUSTER_SECRET } from '../agent/helpers.ts';
import { signalingConfig, startSignalingRouter, type SignalingRouter } from '../signaling/helpers.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { controlPlane as cp } from '../../shared/control-plane.ts';

const NODE_PATHS = ['/v1/nodes/register', '/v1/nodes/heartbeat', '/v1/nodes/deregister', '/v1/nodes/participant-event', '/v1/nodes/room-nodes'];
const AGENT_PATHS = [...[cp.cascadeOpen, cp.cascadeSync, cp.cascadeClose, cp.cascadeKick, cp.move, cp.inventory].map((c) => c.path), '/admin/cordon'];

let router: RunningRouter;
let fakeRouter: SignalingRouter;
let agent: Agent & { url: string };

beforeAll(async () => {
  router = await startRouter(testConfig('memory'));
  fakeRouter = await startSignalingRouter(CLUSTER_SECRET);
  const config = signalingConfig(fakeRouter.url);
  const sfu = await AgentSfu.create(config);
  const built = await buildAgent({ config, sfu, cascade: { rooms: sfu.rooms, roomNodes: async () => new Map() } });
  agent = { ...built, url: await built.controller.start() };
}, 30_000);

afterAll(async () => {
  await agent?.controller.close();
  await fakeRouter?.close();
  await router?.close();
});

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; code: string | undefined }> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.body.text();
  return { status: res.statusCode, code: text === '' ? undefined : (JSON.parse(text) as { error?: { code: string } }).error?.code };
}

const BAD_BODIES = ['{"nodeId":5,"junk":true}', '{}', 'not json at all', '[1,2,3]'];

it('router /v1/nodes/*: an unsigned request gets 401 whatever its body', async () => {
  const answers: Record<string, string[]> = {};
  for (const path of NODE_PATHS) {
    answers[path] = [];
    for (const body of BAD_BODIES) {
      const res = await post(`${router.url}${path}`, body);
      answers[path]!.push(`${res.status} ${res.code}`);
    }
  }
  console.log('router, unsigned bad bodies:', JSON.stringify(answers));
  for (const path of NODE_PATHS) expect(answers[path], path).toEqual(BAD_BODIES.map(() => '401 SIGNATURE_MISSING'));
});

it('agent cascade, move and admin routes: an unsigned request gets 401 whatever its body', async () => {
  const answers: Record<string, string[]> = {};
  for (const path of AGENT_PATHS) {
    answers[path] = [];
    for (const body of BAD_BODIES) answers[path]!.push(String((await post(`${agent.url}${path}`, body)).status));
  }
  console.log('agent, unsigned bad bodies:', JSON.stringify(answers));
  for (const path of AGENT_PATHS) expect(answers[path], path).toEqual(BAD_BODIES.map(() => '401'));
});

/**
 * Sends the headers of an unsigned POST announcing `declared` bytes and only `sent` of them, and
 * returns the status line the server answered with before the rest came (null: it waited).
 */
function answerBeforeBody(baseUrl: string, path: string, declared: number, sent: number): Promise<string | null> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    const done = (value: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    // The server has everything it needs to refuse in the first packet: 5 s is only a bound.
    const timer = setTimeout(() => done(null), 5_000);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.slice(0, answer.indexOf('\r\n')));
    });
    socket.on('error', () => done(answer === '' ? 'connection reset' : answer.slice(0, answer.indexOf('\r\n'))));
    socket.write(`POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`);
    socket.write(Buffer.alloc(sent, 0x20));
  });
}

it('an unsigned 4 MB body is refused before it is read (router and agent)', async () => {
  const declared = 4 * 1024 * 1024;
  const targets = [
    [router.url, '/v1/nodes/heartbeat'],
    [agent.url, cp.cascadeSync.path],
    [agent.url, cp.cascadeOpen.path],
    [agent.url, cp.move.path],
  ] as const;
  const answers: string[] = [];
  for (const [base, path] of targets) answers.push(`${path}: ${await answerBeforeBody(base, path, declared, 64 * 1024)}`);
  console.log('answers with 64 KiB of 4 MiB sent:', JSON.stringify(answers));
  for (const [i, [, path]] of targets.entries()) expect(answers[i]).toMatch(new RegExp(`^${path}: HTTP/1.1 (401|413) `));
});

it('signed calls still get through, and a body changed after signing is refused', async () => {
  const registration = { nodeId: 'us-west-9', region: 'us-west', controlUrl: 'http://127.0.0.1:9', signalingUrl: 'http://127.0.0.1:9', probeUrl: 'http://127.0.0.1:9/probe', maxParticipants: 10, version: 'test' };
  const ok = await signedCall<{ known: boolean }>({ secret: router.config.clusterSecret, baseUrl: router.url, method: 'POST', path: '/v1/nodes/register', body: registration, timeoutMs: 5_000 });
  expect(ok.statusCode).toBe(200);
  // Signed for one body, sent with another: the signature does not cover it.
  const signedFor = JSON.stringify({ nodeId: 'us-west-9' });
  const headers = signRequest(router.config.clusterSecret, { method: 'POST', path: '/v1/nodes/deregister', body: signedFor }, Date.now());
  const swapped = await post(`${router.url}/v1/nodes/deregister`, JSON.stringify({ nodeId: 'us-west-8' }), headers);
  expect(swapped.status).toBe(401);
  // A valid signature over a body the schema refuses: now the field is named.
  const badBody = JSON.stringify({ nodeId: 5 });
  const signedBad = await post(`${router.url}/v1/nodes/deregister`, badBody, signRequest(router.config.clusterSecret, { method: 'POST', path: '/v1/nodes/deregister', body: badBody }, Date.now()));
  expect([signedBad.status, signedBad.code]).toEqual([400, 'BAD_REQUEST']);
  // The agent's signed admin route.
  const cordon = await signedCall({ secret: CLUSTER_SECRET, baseUrl: agent.url, method: 'POST', path: '/admin/cordon', body: { cordoned: false }, timeoutMs: 5_000 });
  expect(cordon.statusCode).toBe(200);
});
