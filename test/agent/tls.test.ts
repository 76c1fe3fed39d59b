import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../shared/signaling.ts';
import type { RegionsResponse } from '../../shared/schemas/index.ts';
import { testConfig } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnAgent, spawnRouter } from '../utils/service-process.ts';

/**
 * Every listener over TLS with certificates from a CA made for this test: the router and two
 * region agents as processes. Agents register and heartbeat over HTTPS, the router probes them
 * over HTTPS, the agents probe each other over HTTPS (GEO_SFU_TLS_CA_FILE makes them trust the
 * CA), and clients reach signaling over WSS. Real handshakes: a client without the CA is refused.
 */
const SECRETS = testConfig('memory');
const dir = mkdtempSync(join(tmpdir(), 'geo-sfu-tls-'));
const file = (name: string) => join(dir, name);
const services: ServiceProcess[] = [];
let router: ServiceProcess;
let https: Agent;

function makeCertificates(): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=geo-sfu test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('key.pem'), '-out', file('server.csr'));
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file('server.ext'), '-out', file('cert.pem'));
}

const tlsEnv = () => ({ GEO_SFU_TLS_CERT_FILE: file('cert.pem'), GEO_SFU_TLS_KEY_FILE: file('key.pem'), GEO_SFU_TLS_CA_FILE: file('ca.pem') });
const common = () => ({
  ...tlsEnv(),
  GEO_SFU_CLUSTER_SECRET: SECRETS.clusterSecret,
  GEO_SFU_TOKEN_SECRETS: SECRETS.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
  GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
  GEO_SFU_PROBE_INTERVAL_MS: '200',
});

beforeAll(async () => {
  makeCertificates();
  https = new Agent({ connect: { ca: readFileSync(file('ca.pem'), 'utf8') } });
  router = await spawnRouter({ ...common(), GEO_SFU_API_KEY: SECRETS.apiKey });
  services.push(router);
  for (const [nodeId, region] of [['us-west-1', 'us-west'], ['eu-west-1', 'eu-west']] as const) {
    services.push(await spawnAgent({ ...common(), GEO_SFU_AGENT_ID: nodeId, GEO_SFU_AGENT_REGION: region, GEO_SFU_ROUTER_URL: router.url }));
  }
}, 60_000);
afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await https?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function regions(): Promise<RegionsResponse> {
  const res = await request(`${router.url}/regions`, { dispatcher: https });
  return (await res.body.json()) as RegionsResponse;
}

it('agents register, heartbeat and are probed over HTTPS, probe each other over HTTPS, and serve signaling over WSS', async () => {
  expect(router.url.startsWith('https://')).toBe(true);
  // Registered and alive (agent→router), probed by the router (router→agent), and measuring each other (agent↔agent).
  const deadline = Date.now() + 20_000;
  let view = await regions();
  const ready = (v: RegionsResponse) => {
    const nodes = v.regions.flatMap((r) => r.nodes);
    return nodes.length === 2 && nodes.every((n) => n.state === 'alive' && n.probe.rttMs !== null) && v.interRegionRttMs['us-west']?.['eu-west'] != null && v.interRegionRttMs['eu-west']?.['us-west'] != null;
  };
  while (!ready(view) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    view = await regions();
  }
  const nodes = view.regions.flatMap((r) => r.nodes);
  console.log(`over TLS: ${nodes.map((n) => `${n.nodeId} ${n.state}, router→node RTT ${n.probe.rttMs?.toFixed(2)} ms`).join('; ')}; us-west→eu-west ${view.interRegionRttMs['us-west']?.['eu-west']?.toFixed(2)} ms`);
  expect(ready(view)).toBe(true);
  // Probes that paid a TCP + TLS handshake are not RTT samples: loopback figures stay small.
  expect(Math.max(...nodes.map((n) => n.probe.rttMs!), view.interRegionRttMs['us-west']!['eu-west']!)).toBeLessThan(100);

  const alloc = await request(`${router.url}/allocate`, {
    method: 'POST',
    dispatcher: https,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRETS.apiKey}` },
    body: JSON.stringify({ roomId: 'tls-room', participantId: 'alice', latencies: { 'us-west': 10, 'us-east': 60, 'eu-west': 140, apac: 170 } }),
  });
  const allocation = (await alloc.body.json()) as { node: { signalingUrl: string }; token: string };
  expect(alloc.statusCode).toBe(200);
  expect(allocation.node.signalingUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

  const connectWith = (ca: string | undefined) => {
    const socket = io(allocation.node.signalingUrl, { auth: { protocolVersion: PROTOCOL_VERSION, token: allocation.token }, transports: ['websocket'], reconnection: false, forceNew: true, ...(ca ? { ca } : {}) });
    return new Promise<{ welcome?: { nodeId: string }; error?: string }>((resolve) => {
      socket.once('welcome', (welcome: { nodeId: string }) => {
        socket.close();
        resolve({ welcome });
      });
      socket.once('connect_error', (err: Error & { description?: { message?: string } }) => {
        socket.close();
        resolve({ error: `${err.message} ${err.description?.message ?? ''}` });
      });
    });
  };
  // A client that does not trust the CA cannot complete the handshake; one that does gets in over WSS.
  expect((await connectWith(undefined)).error).toBeDefined();
  expect((await connectWith(readFileSync(file('ca.pem'), 'utf8'))).welcome?.nodeId).toBe('us-west-1');
});

it('refuses clients that do not trust the CA, and plain HTTP', async () => {
  const agentUrl = services[1]!.url;
  await expect(request(`${agentUrl}/healthz`)).rejects.toThrow(/certificate|self.signed|verify/i);
  await expect(request(`${router.url}/healthz`)).rejects.toThrow(/certificate|self.signed|verify/i);
  const ok = await request(`${agentUrl}/healthz`, { dispatcher: https });
  await ok.body.dump();
  expect(ok.statusCode).toBe(200);
  // Plain HTTP to a TLS listener gets no HTTP answer.
  const plain = await request(agentUrl.replace('https:', 'http:') + '/healthz').then(
    async (res) => {
      await res.body.dump();
      return res.statusCode;
    },
    () => 'refused',
  );
  expect(plain === 'refused' || plain === 400).toBe(true);
});

it('an agent without GEO_SFU_TLS_CA_FILE cannot reach the router over TLS: it never registers', async () => {
  const { GEO_SFU_TLS_CA_FILE: _ca, ...withoutCa } = common();
  const agent = await spawnAgent({ ...withoutCa, GEO_SFU_AGENT_ID: 'apac-1', GEO_SFU_AGENT_REGION: 'apac', GEO_SFU_ROUTER_URL: router.url });
  services.push(agent);
  await new Promise((r) => setTimeout(r, 2_000));
  expect((await regions()).regions.flatMap((r) => r.nodes).map((n) => n.nodeId)).not.toContain('apac-1');
  expect(agent.output.join('\n')).toMatch(/certificate|UNABLE_TO_VERIFY|self.signed/i);
});
