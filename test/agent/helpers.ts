import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { type Agent, type AgentDeps, buildAgent } from '../../region-agent/app.ts';
import { type GeoSfuConfig, configWith } from '../../shared/config/index.ts';

export const CLUSTER_SECRET = randomBytes(24).toString('hex');
export const ADMIN_TOKEN = randomBytes(24).toString('hex');

/** Agent settings for tests: fast heartbeats and probes, silent logs. */
export function agentConfig(routerUrl: string, overrides: Partial<GeoSfuConfig> = {}): GeoSfuConfig {
  return configWith({
    logLevel: 'silent',
    clusterSecret: CLUSTER_SECRET,
    adminToken: ADMIN_TOKEN,
    agentRegion: 'us-west',
    agentHost: '127.0.0.1',
    agentPort: 0,
    routerUrl,
    heartbeatIntervalMs: 100,
    probeIntervalMs: 100,
    probeTimeoutMs: 500,
    // Tests connect many times from one address; the limiter has a test of its own.
    signalingConnectionsPerMinute: 0,
    ...overrides,
  });
}

/** Starts agents for a test and closes them all afterwards. */
export class Agents {
  readonly #started: Agent[] = [];

  async start(config: GeoSfuConfig, deps: Omit<AgentDeps, 'config'> = {}): Promise<Agent & { url: string }> {
    const agent = await buildAgent({ config, ...deps });
    this.#started.push(agent);
    const url = await agent.controller.start();
    return { ...agent, url };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#started.splice(0).map((a) => a.controller.close()));
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 5_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ statusCode: number; body: unknown; headers: Record<string, unknown> }> {
  const res = await request(url, { headers });
  const text = await res.body.text();
  return { statusCode: res.statusCode, body: text === '' ? null : JSON.parse(text), headers: res.headers };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ statusCode: number; body: unknown }> {
  const res = await request(url, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { statusCode: res.statusCode, body: text === '' ? null : JSON.parse(text) };
}

/** A port nothing listens on right now (the launcher's, outside the ephemeral range). */
export { freePort } from '../../infra/embedded/launcher.ts';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
