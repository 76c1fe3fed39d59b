/**
 * The deployment check behind `npm run test:deploy` (test/deploy/run.sh builds the images first):
 * the stack of test/deploy/compose.yml brought up with podman-compose on a network this script
 * creates, then checked from the host, each step timed:
 *
 * 1. Redis, PostgreSQL and coturn up (`redis-cli ping`, `pg_isready`), then the two routers and
 *    HAProxy (`/readyz` through HAProxy), then the four agents (each `/readyz`, and every region
 *    healthy in the router's `/regions`), then Prometheus (`/api/v1/targets`: all seven up).
 *    podman-compose 1.0.3 ignores `depends_on: condition: service_healthy`, so this script waits.
 * 2. Two headless Chromium pages open the router's /demo page emulating us-west and eu-west, join
 *    one room and each decodes the other's video and receives its audio, across the cascade
 *    between the two agent containers.
 * 3. A third page, its peer connections forced to `iceTransportPolicy: "relay"`, joins with the
 *    TURN credentials /allocate handed out and gets both others' media through coturn.
 * 4. router-1 killed: allocations go on through HAProxy to router-2.
 * 5. The agent serving the second page killed (SIGKILL to its process; podman restarts the
 *    container), three times: the page decodes the first page's video again, on another agent,
 *    within 5 s (median).
 * 6. `podman-compose down -v` and the network removed: no container, volume or network is left.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { demoEdge, demoInboundMedia } from '../web/browser.ts';

const run = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const PROJECT = 'geo-sfu-deploy-test';
const NETWORK = 'geo-sfu-deploy-test';
const SUBNET = '10.89.27.0/24';
const COMPOSE = ['-p', PROJECT, '-f', `${HERE}compose.yml`];
const AGENTS = { 'us-west': 'agent-us-west', 'us-east': 'agent-us-east', 'eu-west': 'agent-eu-west', apac: 'agent-apac' } as const;
const ROOM = 'deploy-check';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

const secret = () => randomBytes(24).toString('hex');
const env: NodeJS.ProcessEnv = {
  ...process.env,
  GEO_SFU_CLUSTER_SECRET: secret(),
  GEO_SFU_TOKEN_SECRETS: `k1:${secret()}`,
  GEO_SFU_ADMIN_TOKEN: secret(),
  GEO_SFU_API_KEY: secret(),
  GEO_SFU_GRANT_SECRETS: `g1:${secret()}`,
  TURN_SECRET: secret(),
  COTURN_IP: '',
};
for (const name of ['GEO_SFU_IMAGE', 'SERVICES_IMAGE', 'CONTAINERS_CONF']) {
  if (!process.env[name]) throw new Error(`${name} is not set: run this through npm run test:deploy`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const timings: Array<[string, number]> = [];
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  console.log(`[test:deploy] ${name} ...`);
  const result = await fn();
  const s = (Date.now() - t0) / 1000;
  timings.push([name, s]);
  console.log(`[test:deploy] ${name.padEnd(60)} ${s.toFixed(1).padStart(6)} s`);
  return result;
}

async function podman(...args: string[]): Promise<string> {
  return (await run('podman', args, { env, maxBuffer: 64 << 20 })).stdout;
}
async function compose(...args: string[]): Promise<string> {
  return (await run('podman-compose', [...COMPOSE, ...args], { env, maxBuffer: 64 << 20 })).stdout;
}
const container = (service: string) => `${PROJECT}_${service}_1`;
async function ipOf(service: string): Promise<string> {
  const ip = (await podman('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container(service))).trim();
  if (!/^10\.89\.27\.\d+$/.test(ip)) throw new Error(`${service} has no address on ${NETWORK}: ${JSON.stringify(ip)}`);
  return ip;
}

/** Polls `check` until it returns a value (not undefined), or throws after `timeoutMs` with the last error. */
async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (${(last as Error).message})` : ''}`);
}

async function getJson<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: (await res.json().catch(() => null)) as T };
}

/** Removes whatever a previous run left (a killed run skips its own clean-up). */
async function cleanSlate(): Promise<void> {
  await compose('down', '-v', '-t', '2').catch(() => undefined);
  for (const id of (await podman('ps', '-aq', '--filter', `label=io.podman.compose.project=${PROJECT}`)).split('\n').filter(Boolean)) await podman('rm', '-f', id);
  for (const v of (await podman('volume', 'ls', '-q', '--filter', `label=io.podman.compose.project=${PROJECT}`)).split('\n').filter(Boolean)) await podman('volume', 'rm', '-f', v);
  if (await podman('network', 'exists', NETWORK).then(() => true, () => false)) await podman('network', 'rm', '-f', NETWORK);
}

async function leftovers(): Promise<string[]> {
  const left: string[] = [];
  const containers = (await podman('ps', '-aq', '--filter', `label=io.podman.compose.project=${PROJECT}`)).trim();
  if (containers) left.push(`containers ${containers.replace(/\n/g, ' ')}`);
  const volumes = (await podman('volume', 'ls', '-q', '--filter', `label=io.podman.compose.project=${PROJECT}`)).trim();
  if (volumes) left.push(`volumes ${volumes.replace(/\n/g, ' ')}`);
  if (await podman('network', 'exists', NETWORK).then(() => true, () => false)) left.push(`network ${NETWORK}`);
  return left;
}

async function dumpLogs(): Promise<void> {
  const services = ['router-1', 'router-2', 'haproxy', 'coturn', ...Object.values(AGENTS)];
  for (const s of services) {
    const out = await run('podman', ['logs', '--tail', '25', container(s)], { env }).then((r) => r.stdout + r.stderr, () => '(no logs)');
    console.log(`--- ${s}\n${out.trim()}`);
  }
}

// ---------------------------------------------------------------------------------------------
interface RegionsView { regions: Array<{ id: string; healthy: boolean; nodes: Array<{ nodeId: string; state: string }> }> }

let routerUrl = '';
const agentIps: Record<string, string> = {};

async function stackUp(): Promise<void> {
  await step('network + Redis, PostgreSQL, coturn up and ready', async () => {
    await podman('network', 'create', '--subnet', SUBNET, NETWORK);
    await compose('up', '-d', 'redis', 'postgres', 'coturn');
    const [redis, postgres] = [await ipOf('redis'), await ipOf('postgres')];
    env.COTURN_IP = await ipOf('coturn');
    await until('redis-cli ping', 30_000, async () => ((await run('redis-cli', ['-h', redis, 'ping'])).stdout.trim() === 'PONG' ? true : undefined));
    await until('pg_isready', 60_000, async () => ((await run('pg_isready', ['-h', postgres, '-p', '5432', '-q']).then(() => true, () => false)) ? true : undefined));
  });
  await step('two routers + HAProxy up, /readyz through HAProxy', async () => {
    await compose('up', '-d', 'router-1', 'router-2');
    await until('routers ready', 60_000, async () => {
      for (const r of ['router-1', 'router-2']) if ((await getJson(`http://${await ipOf(r)}:8080/readyz`)).status !== 200) return undefined;
      return true;
    });
    await compose('up', '-d', 'haproxy');
    routerUrl = `http://${await ipOf('haproxy')}:8080`;
    await until('HAProxy /readyz', 30_000, async () => ((await getJson(`${routerUrl}/readyz`)).status === 200 ? true : undefined));
  });
  await step('four agents up, registered, every region healthy', async () => {
    await compose('up', '-d', ...Object.values(AGENTS));
    for (const [region, service] of Object.entries(AGENTS)) {
      agentIps[region] = await ipOf(service);
      await until(`${service} /readyz`, 60_000, async () => ((await getJson(`http://${agentIps[region]}:8081/readyz`)).status === 200 ? true : undefined));
    }
    await regionsHealthy(60_000);
  });
  await step('Prometheus up, /api/v1/targets all up', async () => {
    await compose('up', '-d', 'prometheus');
    const url = `http://${await ipOf('prometheus')}:9090/api/v1/targets`;
    const targets = await until('Prometheus targets all up', 60_000, async () => {
      const { body } = await getJson<{ data: { activeTargets: Array<{ scrapePool: string; scrapeUrl: string; health: string }> } }>(url);
      const active = body.data.activeTargets;
      return active.length === 7 && active.every((t) => t.health === 'up') ? active : undefined;
    });
    for (const t of targets) console.log(`  ${t.scrapePool.padEnd(16)} ${t.scrapeUrl.padEnd(36)} ${t.health}`);
  });
}

async function regionsHealthy(timeoutMs: number): Promise<void> {
  await until('every region healthy in /regions', timeoutMs, async () => {
    const { body } = await getJson<RegionsView>(`${routerUrl}/regions`);
    const ok = Object.keys(AGENTS).every((id) => body.regions.find((r) => r.id === id)?.healthy);
    return ok ? true : undefined;
  });
}

// ---------------------------------------------------------------------------------------------
interface Participant { name: string; context: BrowserContext; page: Page; region: string; nodeId: string }

async function joinDemo(browser: Browser, name: string, region: string, opts: { relay?: boolean } = {}): Promise<Participant> {
  const context = await browser.newContext();
  // tsx (esbuild, keepNames) wraps the named functions of the callbacks below in __name(), which
  // the page does not have.
  await context.addInitScript({ content: 'globalThis.__name = (f) => f;' });
  // Every RTCPeerConnection the page makes (for getStats()), and the configuration it was given;
  // `relay` forces every one of them through TURN.
  await context.addInitScript((relay: boolean) => {
    const Native = window.RTCPeerConnection;
    const made: RTCPeerConnection[] = [];
    const configs: RTCConfiguration[] = [];
    Object.assign(window, { __peerConnections: made, __pcConfigs: configs });
    window.RTCPeerConnection = class extends Native {
      constructor(config: RTCConfiguration = {}) {
        const c = relay ? { ...config, iceTransportPolicy: 'relay' as const } : config;
        super(c);
        made.push(this);
        configs.push(c);
      }
    };
  }, opts.relay === true);
  const page = await context.newPage();
  await page.goto(`${routerUrl}/demo?room=${ROOM}&name=${name}&region=${region}`);
  await page.waitForFunction((r) => (document.querySelector('#region') as HTMLSelectElement | null)?.value === r, region, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('#rtt td[data-rtt]:not([data-rtt=""])').length === 4, null, { timeout: 30_000 });
  await page.click('#join');
  await page.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-state') === 'joined', null, { timeout: 60_000 }).catch(async (err: Error) => {
    throw new Error(`${name} did not join: ${await page.locator('#log').innerText()}\n${err.message}`);
  });
  const edge = await demoEdge(page);
  if (edge.mode !== 'sfu' || edge.region !== region) throw new Error(`${name} emulating ${region} joined ${edge.mode} in ${edge.region}`);
  return { name, context, page, region, nodeId: edge.node! };
}

/** `p` decodes video from and receives audio of each of `from`, growing over 3 s. */
async function expectMedia(p: Participant, from: string[]): Promise<void> {
  await until(`${p.name} decoding ${from.join(', ')}`, 60_000, async () => {
    const now = await demoInboundMedia(p.page);
    return from.every((o) => (now[o]?.framesDecoded ?? 0) > 0 && (now[o]?.audioPackets ?? 0) > 0) ? true : undefined;
  }, 500);
  const before = await demoInboundMedia(p.page);
  await sleep(3_000);
  const after = await demoInboundMedia(p.page);
  for (const o of from) {
    const fps = (after[o]!.framesDecoded - before[o]!.framesDecoded) / 3;
    const pps = (after[o]!.audioPackets - before[o]!.audioPackets) / 3;
    console.log(`  ${p.name} (${p.region}, ${p.nodeId}) ← ${o}: ${fps.toFixed(1)} frames/s decoded, ${pps.toFixed(1)} audio packets/s`);
    if (fps <= 5 || pps <= 16) throw new Error(`${p.name} gets too little from ${o}: ${fps} frames/s, ${pps} audio packets/s`);
  }
}

/** The candidate types of the page's connected ICE pairs, and the TURN servers its connections were given. */
function iceOf(p: Participant): Promise<{ localTypes: string[]; turnUrls: string[] }> {
  return p.page.evaluate(async () => {
    const w = window as unknown as { __peerConnections: RTCPeerConnection[]; __pcConfigs: RTCConfiguration[] };
    const localTypes: string[] = [];
    for (const pc of w.__peerConnections.filter((c) => c.connectionState === 'connected')) {
      const stats = await pc.getStats();
      const all = new Map<string, { type: string; state?: string; nominated?: boolean; localCandidateId?: string; candidateType?: string }>();
      stats.forEach((s: { id: string; type: string }) => all.set(s.id, s));
      for (const s of all.values()) {
        if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) localTypes.push(all.get(s.localCandidateId!)?.candidateType ?? '?');
      }
    }
    const turnUrls = w.__pcConfigs.flatMap((c) => (c.iceServers ?? []).filter((s) => s.username && s.credential).flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls])));
    return { localTypes, turnUrls };
  });
}

async function media(browser: Browser): Promise<Participant[]> {
  const [alice, bob] = await step('two pages (us-west, eu-west) decode each other across the cascade', async () => {
    const pair = [await joinDemo(browser, 'alice', 'us-west'), await joinDemo(browser, 'bob', 'eu-west')];
    await expectMedia(pair[0]!, ['bob']);
    await expectMedia(pair[1]!, ['alice']);
    return pair;
  });
  const carol = await step('a third page relayed through coturn gets both others\' media', async () => {
    const c = await joinDemo(browser, 'carol', 'us-east', { relay: true });
    await expectMedia(c, ['alice', 'bob']);
    const ice = await iceOf(c);
    console.log(`  carol's ICE: local candidates ${ice.localTypes.join(', ')}; TURN from /allocate: ${[...new Set(ice.turnUrls)].join(', ')}`);
    if (ice.localTypes.length === 0 || ice.localTypes.some((t) => t !== 'relay')) throw new Error(`carol's connections are not all relayed: ${ice.localTypes.join(', ')}`);
    if (!ice.turnUrls.some((u) => u.startsWith(`turn:${env.COTURN_IP}:3478`))) throw new Error(`carol was not given coturn's URL with credentials: ${ice.turnUrls.join(', ')}`);
    return c;
  });
  return [alice!, bob!, carol];
}

async function killRouter(): Promise<void> {
  await step('router-1 killed: allocations go on through router-2', async () => {
    await podman('kill', container('router-1'));
    const t0 = Date.now();
    let ok = 0;
    for (let i = 0; i < 20; i++) {
      const { status, body } = await getJson<{ mode?: string; node?: { id: string } }>(`${routerUrl}/allocate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.GEO_SFU_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ roomId: `after-router-kill-${i}`, participantId: 'probe' }),
      });
      if (status !== 200 || body.mode !== 'sfu') throw new Error(`allocation ${i} after router-1 died: ${status} ${JSON.stringify(body)}`);
      ok++;
    }
    console.log(`  ${ok}/20 allocations answered in ${Date.now() - t0} ms after the kill`);
  });
}

/** Where each page is, what it receives, and its log: for a failure's message. */
async function pageStates(ps: Participant[]): Promise<string> {
  const states = await Promise.all(ps.map(async (p) => `${p.name}: ${JSON.stringify(await demoEdge(p.page))} ${JSON.stringify(await demoInboundMedia(p.page))}\n${p.name}'s page log (newest first):\n${await p.page.locator('#log').innerText()}`));
  return states.join('\n');
}

async function killAgents(bob: Participant, alice: Participant): Promise<void> {
  const gaps: number[] = [];
  for (let round = 1; round <= 3; round++) {
    await step(`agent kill ${round}/3: bob's media back on another agent`, async () => {
      // From a steady state: both pages joined on an edge that stays put (a kill while a page is
      // still failing over from the last one is another test), bob decoding alice.
      await until('alice and bob settled, bob decoding alice', 30_000, async () => {
        const edges = await Promise.all([alice, bob].map((p) => demoEdge(p.page)));
        const before = (await demoInboundMedia(bob.page))[alice.name]?.framesDecoded ?? 0;
        await sleep(1_000);
        for (const [i, p] of [alice, bob].entries()) {
          const edge = await demoEdge(p.page);
          const joined = await p.page.evaluate(() => document.querySelector('#status')?.getAttribute('data-state') === 'joined');
          if (!joined || edge.mode !== 'sfu' || edge.node !== edges[i]!.node) return undefined;
          Object.assign(p, { nodeId: edge.node!, region: edge.region! });
        }
        return ((await demoInboundMedia(bob.page))[alice.name]?.framesDecoded ?? 0) > before ? true : undefined;
      }).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await pageStates([alice, bob])}`);
      });
      const service = AGENTS[bob.region as keyof typeof AGENTS];
      const baseline = await demoInboundMedia(bob.page);
      // SIGKILL to the agent's process from the host: a crash, which the container's restart
      // policy answers by starting it again (`podman kill` would be a stop by the user, which
      // podman does not restart).
      const pid = Number(await podman('inspect', '-f', '{{.State.Pid}}', container(service)));
      const restarts = Number(await podman('inspect', '-f', '{{.RestartCount}}', container(service)));
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      // Back: bob's page on another edge, decoding alice's video there (a new track).
      const back = await until(`bob decoding alice after ${service} died`, 30_000, async () => {
        const edge = await demoEdge(bob.page);
        const a = (await demoInboundMedia(bob.page))[alice.name];
        return edge.node !== bob.nodeId && a && a.videoTrackId !== baseline[alice.name]?.videoTrackId && a.framesDecoded > 0 ? Date.now() : undefined;
      }, 100).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await pageStates([bob, alice])}`);
      });
      gaps.push(back - killedAt);
      const edge = await demoEdge(bob.page);
      console.log(`  killed ${service} (${bob.nodeId}, alice ${alice.nodeId === bob.nodeId ? 'there too' : `on ${alice.nodeId}`}): bob on ${edge.node} (${edge.region}), alice's video back after ${back - killedAt} ms`);
      // The killed agent back (restarted by podman) and registered again, for the next round.
      await until(`${service} restarted`, 30_000, async () => (Number(await podman('inspect', '-f', '{{.RestartCount}}', container(service))) > restarts ? true : undefined));
      await regionsHealthy(60_000);
    });
  }
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[1]!;
  console.log(`  media back after ${gaps.join(', ')} ms; median ${median} ms`);
  if (median > 5_000) throw new Error(`median time for bob's media to come back is ${median} ms (> 5 s)`);
}

// ---------------------------------------------------------------------------------------------
const started = Date.now();
let failed: unknown = null;
let browser: Browser | null = null;
try {
  await step('clean slate (a previous run\'s leftovers)', cleanSlate);
  await stackUp();
  // The demo page comes from HAProxy's address on the test network, which is not a secure context
  // the way localhost is: without this, the page has no navigator.mediaDevices.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${routerUrl}`] });
  const [alice, bob] = await media(browser);
  await killRouter();
  await killAgents(bob!, alice!);
} catch (err) {
  failed = err;
  console.error(`[test:deploy] FAILED: ${(err as Error).stack ?? String(err)}`);
  await dumpLogs().catch(() => undefined);
} finally {
  await browser?.close().catch(() => undefined);
  await step('compose down -v, network removed: nothing left', async () => {
    await compose('down', '-v', '-t', '2');
    await podman('network', 'rm', NETWORK).catch(() => undefined);
    const left = await leftovers();
    if (left.length > 0) {
      failed ??= new Error(`left behind: ${left.join('; ')}`);
      await cleanSlate();
    }
  }).catch((err: unknown) => {
    failed ??= err;
  });
}
console.log('[test:deploy] step timings:');
for (const [name, s] of timings) console.log(`  ${name.padEnd(64)} ${s.toFixed(1).padStart(6)} s`);
console.log(`  ${'stack checks total'.padEnd(64)} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`);
// run.sh's start (base images and the image build included).
const since = Number(process.env.TEST_DEPLOY_STARTED_MS);
if (since > 0) console.log(`  ${'test:deploy total (images included)'.padEnd(64)} ${((Date.now() - since) / 1000).toFixed(1).padStart(6)} s`);
if (failed) console.log(`test:deploy: ${(failed as Error).message}`);
// Each step that finished is one check passed (a failed one is not timed, and skips the checks after it).
console.log(`test:deploy: ${timings.length} passed, ${failed ? 1 : 0} failed`);
process.exit(failed ? 1 : 0);
