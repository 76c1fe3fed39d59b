import { ConfigError } from '../errors.ts';
import { type RegionInfo, DEFAULT_REGIONS, catalogProblems } from '../regions.ts';
import { CONFIG_SPEC, type ConfigKey, type RawConfig, type Spec } from './spec.ts';

export interface TokenKey {
  kid: string;
  secret: string;
}

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
  /** Regions the server is in (for rooms with a region policy); never sent to clients. */
  regions?: string[];
}

/** The validated configuration; string-encoded settings are parsed into their real shape. */
export type GeoSfuConfig = Omit<RawConfig, 'regions' | 'tokenSecrets' | 'grantSecrets' | 'iceServers' | 'trustProxy' | 'turnUrls' | 'turnAnyRegions' | 'appWebhookUrls' | 'appWebhookSecrets'> & {
  regions: readonly RegionInfo[];
  /** Join-token keys; the first signs. Empty when none were configured (the launcher fills it). */
  tokenKeys: readonly TokenKey[];
  /** Grant keys shared with the application's backend. */
  grantKeys: readonly TokenKey[];
  iceServers: readonly IceServer[];
  /** TURN URLs by region id (`*`: the others). */
  turnUrls: Readonly<Record<string, readonly string[]>>;
  /** Regions the `*` TURN servers are in (GEO_SFU_TURN_ANY_REGIONS). */
  turnAnyRegions: readonly string[];
  trustProxy: boolean | number | string[];
  /** Application webhook receivers (GEO_SFU_APP_WEBHOOK_URLS). */
  appWebhookUrls: readonly string[];
  /** Application webhook keys; the first signs. */
  appWebhookKeys: readonly TokenKey[];
};

export const MIN_SECRET_LENGTH = 32;

function parseValue(spec: Spec, raw: string, problems: string[]): unknown {
  const name = spec.env;
  switch (spec.kind) {
    case 'int':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) {
        problems.push(`${name}: "${raw}" is not a number`);
        return spec.default;
      }
      if (spec.kind === 'int' && !Number.isInteger(n)) problems.push(`${name}: "${raw}" must be a whole number`);
      if (n < spec.min || n > spec.max) problems.push(`${name}: ${n} is outside [${spec.min}, ${spec.max}]`);
      return n;
    }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      problems.push(`${name}: "${raw}" is not a boolean (true/false)`);
      return spec.default;
    case 'enum':
      if (!spec.values.includes(raw)) problems.push(`${name}: "${raw}" is not one of ${spec.values.join(', ')}`);
      return raw;
    case 'string':
      if (spec.pattern && !spec.pattern.test(raw)) problems.push(`${name}: "${raw}" does not match ${spec.pattern}`);
      return raw;
  }
}

function parseRegions(raw: string, problems: string[]): RegionInfo[] {
  if (raw === '') return [...DEFAULT_REGIONS];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) throw new Error('not an array');
    const regions = parsed as RegionInfo[];
    for (const p of catalogProblems(regions)) problems.push(`GEO_SFU_REGIONS: ${p}`);
    return regions;
  } catch (err) {
    problems.push(`GEO_SFU_REGIONS: not a JSON array of regions (${(err as Error).message})`);
    return [...DEFAULT_REGIONS];
  }
}

export function parseTokenKeys(raw: string, problems: string[], name = 'GEO_SFU_TOKEN_SECRETS'): TokenKey[] {
  if (raw === '') return [];
  const keys: TokenKey[] = [];
  for (const [i, part] of raw.split(',').entries()) {
    const colon = part.indexOf(':');
    const kid = part.slice(0, colon).trim();
    const secret = part.slice(colon + 1).trim();
    if (colon <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid)) problems.push(`${name}: entry ${i + 1} must be "kid:secret" with a kid of [A-Za-z0-9._-]`);
    else if (secret.length < MIN_SECRET_LENGTH) problems.push(`${name}: the secret of "${kid}" is shorter than ${MIN_SECRET_LENGTH} characters`);
    else keys.push({ kid, secret });
  }
  return keys;
}

function parseIceServers(raw: string, regionIds: ReadonlySet<string>, problems: string[]): IceServer[] {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) throw new Error('not an array');
    for (const [i, s] of parsed.entries()) {
      const urls = (s as IceServer | null)?.urls;
      const ok = typeof urls === 'string' || (Array.isArray(urls) && urls.every((u) => typeof u === 'string'));
      if (!ok) problems.push(`GEO_SFU_ICE_SERVERS: [${i}].urls must be a string or an array of strings`);
      const regions = (s as IceServer | null)?.regions;
      if (regions !== undefined && !(Array.isArray(regions) && regions.every((r) => typeof r === 'string' && regionIds.has(r)))) {
        problems.push(`GEO_SFU_ICE_SERVERS: [${i}].regions must be an array of catalog regions`);
      }
    }
    return parsed as IceServer[];
  } catch (err) {
    problems.push(`GEO_SFU_ICE_SERVERS: not a JSON array (${(err as Error).message})`);
    return [];
  }
}

function parseTurnUrls(raw: string, regionIds: ReadonlySet<string>, problems: string[]): Record<string, string[]> {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    for (const [region, urls] of Object.entries(parsed)) {
      if (region !== '*' && !regionIds.has(region)) problems.push(`GEO_SFU_TURN_URLS: "${region}" is not a catalog region (or "*")`);
      if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string' && /^turns?:/.test(u))) problems.push(`GEO_SFU_TURN_URLS.${region}: must be an array of turn:/turns: URLs`);
    }
    return parsed as Record<string, string[]>;
  } catch (err) {
    problems.push(`GEO_SFU_TURN_URLS: not a JSON object (${(err as Error).message})`);
    return {};
  }
}

function parseWebhookUrls(raw: string, problems: string[]): string[] {
  const urls = raw.split(',').map((u) => u.trim()).filter(Boolean);
  for (const url of urls) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) problems.push(`GEO_SFU_APP_WEBHOOK_URLS: "${url}" is not an http(s) URL`);
  }
  return urls;
}

function parseTrustProxy(raw: string): boolean | number | string[] {
  if (raw === 'true') return true;
  if (raw === 'false' || raw === '') return false;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const KNOWN_ENV = new Set(Object.values(CONFIG_SPEC).map((s) => s.env));

/**
 * Reads and validates the whole configuration from `env`. Throws ConfigError listing every
 * problem (bad values and unknown GEO_SFU_* names, which are almost always typos).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GeoSfuConfig {
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_SPEC) as [ConfigKey, Spec][]) {
    const value = env[spec.env];
    raw[key] = value === undefined || (value === '' && spec.kind !== 'string') ? spec.default : parseValue(spec, value, problems);
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('GEO_SFU_') && !KNOWN_ENV.has(name)) problems.push(`${name}: unknown setting (see docs/configuration.md)`);
  }
  const r = raw as RawConfig;
  if (r.clusterSecret !== '' && r.clusterSecret.length < MIN_SECRET_LENGTH) problems.push(`GEO_SFU_CLUSTER_SECRET: shorter than ${MIN_SECRET_LENGTH} characters`);
  if (r.deadAfterMs <= r.suspectAfterMs) problems.push('GEO_SFU_DEAD_AFTER_MS must be greater than GEO_SFU_SUSPECT_AFTER_MS');
  if (r.redisUrl !== '' && r.redisSentinels !== '') problems.push('REDIS_URL and GEO_SFU_REDIS_SENTINELS are both set: one Redis server, or a Sentinel-monitored group, not both');
  if (r.rtcMinPort > r.rtcMaxPort) problems.push('GEO_SFU_RTC_MIN_PORT must not be above GEO_SFU_RTC_MAX_PORT');
  if (r.pipeFecShare > 0 && r.pipeReorderMaxMs === 0) problems.push('GEO_SFU_PIPE_REORDER_MAX_MS must be > 0 when GEO_SFU_PIPE_FEC_SHARE is (rebuilt packets are delivered in order behind their gap)');
  // The relay renews P2P leases every check interval: a lease must outlive a missed renewal or two.
  if (r.p2pLeaseMs < 3 * r.p2pCheckIntervalMs) problems.push('GEO_SFU_P2P_LEASE_MS must be at least 3 × GEO_SFU_P2P_CHECK_INTERVAL_MS');
  if (r.leaderRenewMs > 0 && 2 * r.leaderRenewMs > r.leaderLeaseMs) problems.push('GEO_SFU_LEADER_RENEW_MS must be at most half of GEO_SFU_LEADER_LEASE_MS');
  if (r.agentRegion !== '' && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(r.agentRegion)) problems.push('GEO_SFU_AGENT_REGION: not a valid region id');
  const regions = parseRegions(r.regions, problems);
  const config: GeoSfuConfig = {
    ...r,
    regions,
    tokenKeys: parseTokenKeys(r.tokenSecrets, problems),
    grantKeys: parseTokenKeys(r.grantSecrets, problems, 'GEO_SFU_GRANT_SECRETS'),
    iceServers: parseIceServers(r.iceServers, new Set(regions.map((x) => x.id)), problems),
    trustProxy: parseTrustProxy(r.trustProxy),
    turnUrls: parseTurnUrls(r.turnUrls, new Set(regions.map((x) => x.id)), problems),
    turnAnyRegions: r.turnAnyRegions === '' ? [] : r.turnAnyRegions.split(','),
    appWebhookUrls: parseWebhookUrls(r.appWebhookUrls, problems),
    appWebhookKeys: parseTokenKeys(r.appWebhookSecrets, problems, 'GEO_SFU_APP_WEBHOOK_SECRETS'),
    // Production never serves anonymous allocations.
    requireAuth: r.requireAuth || r.production,
  };
  if (config.appWebhookUrls.length > 0 && config.appWebhookKeys.length === 0) problems.push('GEO_SFU_APP_WEBHOOK_URLS needs GEO_SFU_APP_WEBHOOK_SECRETS');
  if (config.appWebhookRetryMaxMs < config.appWebhookRetryMs) problems.push('GEO_SFU_APP_WEBHOOK_RETRY_MAX_MS must not be below GEO_SFU_APP_WEBHOOK_RETRY_MS');
  if (Object.keys(config.turnUrls).length > 0 && config.turnSecret === '') problems.push('GEO_SFU_TURN_URLS needs GEO_SFU_TURN_SECRET');
  for (const region of config.turnAnyRegions) if (!regions.some((x) => x.id === region)) problems.push(`GEO_SFU_TURN_ANY_REGIONS: "${region}" is not a catalog region`);
  if (config.agentRegion !== '' && !config.regions.some((x) => x.id === config.agentRegion)) {
    problems.push(`GEO_SFU_AGENT_REGION: "${config.agentRegion}" is not in the region catalog (${config.regions.map((x) => x.id).join(', ')})`);
  }
  if ((config.tlsCertFile === '') !== (config.tlsKeyFile === '')) problems.push('GEO_SFU_TLS_CERT_FILE and GEO_SFU_TLS_KEY_FILE go together');
  if (config.demoGrants && config.grantKeys.length === 0) problems.push('GEO_SFU_DEMO_GRANTS needs a key to sign with: set GEO_SFU_GRANT_SECRETS');
  if (config.production) {
    if (config.clusterSecret === '') problems.push('GEO_SFU_CLUSTER_SECRET is required in production mode');
    if (config.tokenKeys.length === 0) problems.push('GEO_SFU_TOKEN_SECRETS is required in production mode');
    if (config.adminToken.length < MIN_SECRET_LENGTH && config.adminTokenHash === '') problems.push(`GEO_SFU_ADMIN_TOKEN (≥ ${MIN_SECRET_LENGTH} chars) or GEO_SFU_ADMIN_TOKEN_HASH is required in production mode`);
    // Anyone may mint a demo grant: in production that would be an open door past GEO_SFU_REQUIRE_AUTH.
    if (config.demoGrants) problems.push('GEO_SFU_DEMO_GRANTS must be off in production mode (it hands grants to anyone)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Defaults with typed overrides, for tests and tools: `configWith({ marginMs: 20 })` (overrides are trusted, not re-validated). */
export function configWith(overrides: Partial<GeoSfuConfig> = {}): GeoSfuConfig {
  return { ...loadConfig({}), ...overrides };
}
