import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { GeoSfuConfig } from '../shared/config/index.ts';
import { ConfigError } from '../shared/errors.ts';
import { PACKAGE_VERSION } from '../shared/package-root.ts';
import { ID_PATTERN } from '../shared/schemas/index.ts';

/**
 * The agent's view of the configuration: the settings that need more than loadConfig's per-value
 * checks (required for an agent, JSON-encoded, derived), resolved once at build time so a bad
 * value stops the agent before it listens, with the variable named.
 */
export interface AgentSettings {
  nodeId: string;
  region: string;
  /** Empty: derived from the listen address once listening. */
  publicUrl: string;
  /** Base URL to reach a peer through instead of the one it registered, by peer node id. */
  peerRoutes: ReadonlyMap<string, string>;
  cpuCores: number;
  memoryBytes: number;
  version: string;
  /** Timeout of the agent's control-plane calls (GEO_SFU_AGENT_CALL_TIMEOUT_MS, or its default from the heartbeat interval). */
  callTimeoutMs: number;
}

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
};

function parsePeerRoutes(raw: string, problems: string[]): Map<string, string> {
  const routes = new Map<string, string>();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw === '' ? '{}' : raw);
  } catch (err) {
    problems.push(`GEO_SFU_PEER_ROUTES: not JSON (${(err as Error).message})`);
    return routes;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push('GEO_SFU_PEER_ROUTES: must be a JSON object { "<nodeId>": "<baseUrl>" }');
    return routes;
  }
  for (const [nodeId, url] of Object.entries(parsed)) {
    if (typeof url !== 'string' || !isHttpUrl(url)) problems.push(`GEO_SFU_PEER_ROUTES: the route of "${nodeId}" is not an http(s) URL`);
    else routes.set(nodeId, url.replace(/\/+$/, ''));
  }
  return routes;
}

/** Throws ConfigError naming every variable an agent cannot run with. */
export function resolveAgentSettings(config: GeoSfuConfig): AgentSettings {
  const problems: string[] = [];
  if (config.clusterSecret === '') problems.push('GEO_SFU_CLUSTER_SECRET is required for a region agent (the router verifies its signed requests with it)');
  // That it is in the region catalog is loadConfig's check (shared/config/load.ts).
  if (config.agentRegion === '') problems.push('GEO_SFU_AGENT_REGION is required for a region agent');
  if (config.agentId !== '' && !new RegExp(ID_PATTERN).test(config.agentId)) problems.push(`GEO_SFU_AGENT_ID: "${config.agentId}" must match ${ID_PATTERN}`);
  if (config.agentPublicUrl !== '' && !isHttpUrl(config.agentPublicUrl)) problems.push(`GEO_SFU_AGENT_PUBLIC_URL: "${config.agentPublicUrl}" is not an http(s) URL`);
  const peerRoutes = parsePeerRoutes(config.peerRoutes, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    nodeId: config.agentId !== '' ? config.agentId : `${config.agentRegion}-${randomBytes(4).toString('hex')}`,
    region: config.agentRegion,
    publicUrl: config.agentPublicUrl.replace(/\/+$/, ''),
    peerRoutes,
    cpuCores: config.agentCpuCores > 0 ? config.agentCpuCores : availableParallelism(),
    memoryBytes: config.agentMemoryMb * 1024 * 1024,
    version: PACKAGE_VERSION,
    // Long enough for a busy router; short enough that a stuck call costs a couple of heartbeats.
    callTimeoutMs: config.agentCallTimeoutMs > 0 ? config.agentCallTimeoutMs : Math.max(1_000, 2 * config.heartbeatIntervalMs),
  };
}
