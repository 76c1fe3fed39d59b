import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { GeoSfuConfig, TokenKey } from '../../shared/config/index.ts';
import { ClientRelays } from './client-relays.ts';
import { startDelayProxy, type DelayProxy } from './delay-proxy.ts';
import { PipeRelays } from './pipe-relays.ts';
import { clientRtt, interRegionRtt, readWanProfile, type WanProfile } from './wan-profile.ts';

/**
 * The embedded default: one router and `agentsPerRegion` region agents per catalog region, each a
 * child process on loopback, with in-memory state unless REDIS_URL/DATABASE_URL are set. With a
 * WAN profile, loopback delay proxies sit between agents (so agents measure the profile's
 * inter-region RTTs) and, with `clientRttMs`, in front of each agent's public URL (so clients and
 * the router's prober see those RTTs); with `pipeRelays`, the cascade's media between regions
 * crosses delaying UDP relays too (pipe-relays.ts); with `clientLossPct` or `clientJitterMs` for
 * a region, its clients' media crosses lossy, jittery UDP relays in front of its agents
 * (client-relays.ts). The router hands out demo grants (the /demo
 * page) and has the P2P fallback on unless GEO_SFU_DEMO_GRANTS / GEO_SFU_P2P_FALLBACK say otherwise
 * or production mode is on.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface LaunchOptions {
  config: GeoSfuConfig;
  /** Extra environment for every child (tests pass per-run Redis prefixes, log levels...). */
  env?: NodeJS.ProcessEnv;
  /** Use routerPort, routerPort+1, ... (npm start); otherwise free ports are picked. */
  fixedPorts: boolean;
  /** Receives each child's output lines. */
  onOutput?: (name: string, line: string) => void;
  /**
   * Route the cascade's pipe transports between regions through delaying UDP relays in this
   * process, half the WAN profile's inter-region RTT each way (needs GEO_SFU_WAN_PROFILE).
   */
  pipeRelays?: boolean;
}

export interface LaunchedAgent {
  nodeId: string;
  region: string;
  /** Where the agent really listens. */
  directUrl: string;
  /** What clients see (the delay proxy when the profile has clientRttMs). */
  publicUrl: string;
  process: ChildProcess;
}

export interface Credentials {
  clusterSecret: string;
  tokenSecrets: string;
  adminToken: string;
  apiKey: string;
  /** GEO_SFU_GRANT_SECRETS: what an application backend would sign grants with (createGrant). */
  grantSecrets: string;
}

export interface Embedded {
  routerUrl: string;
  router: ChildProcess;
  agents: LaunchedAgent[];
  credentials: Credentials;
  /** The credentials this run generated (the others came from the environment). */
  generated: ReadonlySet<keyof Credentials>;
  wanProfile: WanProfile | null;
  /** The media relays between regions (`pipeRelays`), else null. */
  pipeRelays: PipeRelays | null;
  /** The client media relays (a profile with `clientLossPct` or `clientJitterMs`), else null. */
  clientRelays: ClientRelays | null;
  /** Starts an agent again (same id, port and proxies) after it was stopped. */
  restartAgent(nodeId: string): Promise<LaunchedAgent>;
  close(): Promise<void>;
}

const secret = () => randomBytes(32).toString('base64url');

export async function launchEmbedded(opts: LaunchOptions): Promise<Embedded> {
  const { config } = opts;
  const generated = new Set<keyof Credentials>();
  const given = (name: keyof Credentials, value: string, generate: () => string) => {
    if (value !== '') return value;
    generated.add(name);
    return generate();
  };
  const keyList = (keys: readonly TokenKey[]) => keys.map((k) => `${k.kid}:${k.secret}`).join(',');
  const credentials: Credentials = {
    clusterSecret: given('clusterSecret', config.clusterSecret, secret),
    tokenSecrets: given('tokenSecrets', keyList(config.tokenKeys), () => `dev-${Date.now().toString(36)}:${secret()}`),
    adminToken: given('adminToken', config.adminToken, secret),
    apiKey: given('apiKey', config.apiKey, secret),
    grantSecrets: given('grantSecrets', keyList(config.grantKeys), () => `demo-${Date.now().toString(36)}:${secret()}`),
  };
  const wanProfile = config.wanProfile ? readWanProfile(config.wanProfile, config.regions.map((r) => r.id)) : null;
  if (opts.pipeRelays && !wanProfile) throw new Error('launchEmbedded: pipeRelays needs a WAN profile (GEO_SFU_WAN_PROFILE)');
  const proxies: DelayProxy[] = [];
  const children = new Set<ChildProcess>();
  // If this process ends without close() (a failed test set-up, an uncaught error), its router
  // and agents must not outlive it.
  const killChildren = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.once('exit', killChildren);

  const routerPort = opts.fixedPorts ? config.routerPort : await freePort();
  const routerUrl = `http://${config.routerHost}:${routerPort}`;
  const plan = config.regions.flatMap((region) =>
    Array.from({ length: config.agentsPerRegion }, (_, i) => ({ nodeId: `${region.id}-${i + 1}`, region: region.id })),
  );
  const ports: number[] = [];
  for (let i = 0; i < plan.length; i++) ports.push(opts.fixedPorts ? routerPort + 1 + i : await freePort());

  const baseEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...opts.env,
    GEO_SFU_CLUSTER_SECRET: credentials.clusterSecret,
    GEO_SFU_TOKEN_SECRETS: credentials.tokenSecrets,
    GEO_SFU_ADMIN_TOKEN: credentials.adminToken,
    GEO_SFU_API_KEY: credentials.apiKey,
    GEO_SFU_GRANT_SECRETS: credentials.grantSecrets,
  };
  const spawnChild = (name: string, script: string, env: NodeJS.ProcessEnv, ipc = false, args: string[] = []): ChildProcess => {
    // Each child leads a process group of its own (with its mediasoup workers), so that a Ctrl-C
    // on the terminal reaches only this process, which stops them in order (close()); otherwise
    // the workers would die under their agents ("SFU worker died") and the router before them.
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc' as const] : [])] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) opts.onOutput?.(name, line);
      });
    }
    return child;
  };

  const router = spawnChild('router', 'router/main.ts', {
    ...baseEnv,
    GEO_SFU_ROUTER_PORT: String(routerPort),
    // The /demo page needs grants and has no backend of its own; it speaks P2P, so a room no region
    // can take (e.g. every agent cordoned) connects its tabs directly. An explicit setting wins;
    // production mode keeps both defaults (off).
    GEO_SFU_DEMO_GRANTS: baseEnv.GEO_SFU_DEMO_GRANTS ?? String(!config.production),
    GEO_SFU_P2P_FALLBACK: baseEnv.GEO_SFU_P2P_FALLBACK ?? String(!config.production),
  });

  // Public URLs (client-facing delay proxies) and per-pair peer routes are known before any agent starts.
  const publicUrls = new Map<string, string>();
  const peerRoutes = new Map<string, Record<string, string>>();
  for (const [i, a] of plan.entries()) {
    const directUrl = `http://${config.agentHost}:${ports[i]}`;
    const rtt = wanProfile ? clientRtt(wanProfile, a.region) : undefined;
    if (rtt !== undefined) {
      const proxy = await startDelayProxy({ targetHost: config.agentHost, targetPort: ports[i]!, oneWayDelayMs: rtt / 2 });
      proxies.push(proxy);
      publicUrls.set(a.nodeId, proxy.url);
    } else {
      publicUrls.set(a.nodeId, directUrl);
    }
  }
  for (const a of plan) {
    const routes: Record<string, string> = {};
    for (const [j, b] of plan.entries()) {
      if (a === b) continue;
      const rtt = wanProfile ? interRegionRtt(wanProfile, a.region, b.region) ?? 0 : 0;
      // Without a profile (or within a region) peers are reached directly at their real address.
      if (rtt > 0) {
        const proxy = await startDelayProxy({ targetHost: config.agentHost, targetPort: ports[j]!, oneWayDelayMs: rtt / 2 });
        proxies.push(proxy);
        routes[b.nodeId] = proxy.url;
      } else {
        routes[b.nodeId] = `http://${config.agentHost}:${ports[j]}`;
      }
    }
    peerRoutes.set(a.nodeId, routes);
  }

  const regionOf = new Map(plan.map((a) => [a.nodeId, a.region]));
  const pipeRelays = opts.pipeRelays && wanProfile ? new PipeRelays(wanProfile, (nodeId) => regionOf.get(nodeId) ?? '') : null;
  const clientRelaysOf = wanProfile ? new ClientRelays(wanProfile, plan) : null;
  const clientRelays = clientRelaysOf?.active ? clientRelaysOf : null;
  const startAgent = (index: number): LaunchedAgent => {
    const a = plan[index]!;
    const clientRelay = clientRelays?.addressOf(a.nodeId);
    const relayed = pipeRelays !== null || clientRelay !== undefined;
    const script = relayed ? 'infra/embedded/relayed-agent.ts' : 'region-agent/main.ts';
    const args = [...(pipeRelays ? ['--pipe-relays'] : []), ...(clientRelay ? [`--client-relay=${clientRelay}`] : [])];
    const child = spawnChild(a.nodeId, script, {
      ...baseEnv,
      GEO_SFU_AGENT_ID: a.nodeId,
      GEO_SFU_AGENT_REGION: a.region,
      GEO_SFU_AGENT_PORT: String(ports[index]),
      GEO_SFU_AGENT_PUBLIC_URL: publicUrls.get(a.nodeId)!,
      GEO_SFU_ROUTER_URL: routerUrl,
      GEO_SFU_PEER_ROUTES: JSON.stringify(peerRoutes.get(a.nodeId)),
      GEO_SFU_SFU_WORKERS: '1',
    }, relayed, args);
    pipeRelays?.serve(child);
    if (clientRelay) clientRelays?.serve(child, a.nodeId);
    return { ...a, directUrl: `http://${config.agentHost}:${ports[index]}`, publicUrl: publicUrls.get(a.nodeId)!, process: child };
  };
  const agents = plan.map((_, i) => startAgent(i));

  // Agents first: each drains and deregisters while the router still answers; then the router.
  const close = async () => {
    process.off('exit', killChildren);
    await Promise.all([...children].filter((c) => c !== router).map((c) => stopChild(c)));
    await stopChild(router);
    await Promise.all(proxies.map((p) => p.close()));
    pipeRelays?.close();
    clientRelays?.close();
  };
  return {
    routerUrl,
    router,
    agents,
    credentials,
    generated,
    wanProfile,
    pipeRelays,
    clientRelays,
    restartAgent: async (nodeId) => {
      const index = plan.findIndex((a) => a.nodeId === nodeId);
      if (index < 0) throw new Error(`unknown agent ${nodeId}`);
      const running = agents[index]!;
      if (running.process.exitCode === null && running.process.signalCode === null) await stopChild(running.process);
      agents[index] = startAgent(index);
      return agents[index]!;
    },
    close,
  };
}

/** SIGTERM, then SIGKILL if the child has not exited within the grace time. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * A TCP port free right now, for a child to listen on shortly. Taken at random below the kernel's
 * ephemeral range (32768–60999 by default), where outgoing connections and `listen(0)` take their
 * ports, so that a port we probed free is not handed to someone else before the child binds it.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(host, port)) return port;
  }
  throw new Error('no free TCP port found in 20000–31999');
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
