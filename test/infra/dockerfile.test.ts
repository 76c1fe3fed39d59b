/**
 * infra/Dockerfile, offline (no Docker engine here): the runtime stage's apt-get line installs
 * exactly what the built mediasoup worker links (`ldd` of the binary `npm run setup` built, each
 * library mapped to its Debian package with `dpkg -S`), and the stages, user, worker path, health
 * check, entry point and settings are what the deployment files expect.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { KNOWN_ENV, SAMPLE_SECRETS, getRoutes } from './code-index.ts';
import { INFRA, ROOT, readText } from './helpers.ts';

interface Instruction { op: string; args: string; stage: string }

/** Instructions with their stage name; line continuations joined, comments dropped. */
function parseDockerfile(text: string): { instructions: Instruction[]; args: Record<string, string> } {
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const instructions: Instruction[] = [];
  const args: Record<string, string> = {};
  let stage = '';
  for (const line of logical) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`cannot parse: ${line}`);
    const [op, rest] = [m[1], m[2]];
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(rest)?.[1] ?? '';
    if (op === 'ARG' && stage === '') {
      const [k, v = ''] = rest.split('=');
      if (k) args[k] = v;
    }
    instructions.push({ op, args: rest.replace(/\s+/g, ' '), stage });
  }
  return { instructions, args };
}

const DOCKERFILE = readText('infra/Dockerfile');
const { instructions, args: globalArgs } = parseDockerfile(DOCKERFILE);
const inStage = (stage: string, op: string) => instructions.filter((i) => i.stage === stage && i.op === op);
const from = (stage: string) => inStage(stage, 'FROM')[0]?.args.replace(/\$\{(\w+)\}/g, (_, k: string) => globalArgs[k] ?? '') ?? '';

/** Packages named by `apt-get install` in a stage (flags and shell operators dropped). */
function aptPackages(stage: string): string[] {
  const pkgs: string[] = [];
  for (const run of inStage(stage, 'RUN')) {
    for (const cmd of run.args.split(/&&|;|\|\|/)) {
      const m = /apt-get\s+install\s+(.*)$/.exec(cmd.trim());
      if (m?.[1]) pkgs.push(...m[1].split(/\s+/).filter((t) => t !== '' && !t.startsWith('-')));
    }
  }
  return pkgs;
}

/** ENV instructions of a stage as a map (both `K=V K2=V2` and `K V`). */
function envOf(stage: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of inStage(stage, 'ENV')) {
    if (!e.args.includes('=')) {
      const [k, ...v] = e.args.split(' ');
      if (k) env[k] = v.join(' ');
      continue;
    }
    for (const m of e.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) if (m[1] && m[2] !== undefined) env[m[1]] = m[2].replace(/^"|"$/g, '');
  }
  return env;
}

/** Built workers: ${GEO_SFU_CACHE_DIR:-~/.cache/geo-sfu}/mediasoup-worker/<key>/mediasoup-worker. */
function builtWorkers(): string[] {
  const cache = join(process.env.GEO_SFU_CACHE_DIR || join(homedir(), '.cache', 'geo-sfu'), 'mediasoup-worker');
  if (!existsSync(cache)) return [];
  return readdirSync(cache).map((k) => join(cache, k, 'mediasoup-worker')).filter((p) => existsSync(p));
}

/** The Debian package owning a library path (dpkg records /lib or /usr/lib, so try both and the real path). */
function debianPackageOf(lib: string): string {
  const candidates = [lib, realpathSync(lib), lib.startsWith('/usr/') ? lib.slice(4) : `/usr${lib}`];
  for (const c of candidates) {
    try {
      const out = execFileSync('dpkg', ['-S', c], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const pkg = out.split('\n')[0]?.split(':')[0]?.trim();
      if (pkg) return pkg;
    } catch {
      // not this spelling of the path
    }
  }
  throw new Error(`dpkg -S found no package for ${lib}`);
}

/** A version as [major, minor, patch]; missing or x parts are null (wildcards). */
function versionParts(v: string): [number | null, number | null, number | null] {
  const parts = v.replace(/^v/, '').split('.').map((p) => (p === '' || p === 'x' || p === 'X' || p === '*' ? null : Number(p)));
  return [parts[0] ?? null, parts[1] ?? null, parts[2] ?? null];
}
const cmp = (a: number[], b: number[]) => (a[0] ?? 0) - (b[0] ?? 0) || (a[1] ?? 0) - (b[1] ?? 0) || (a[2] ?? 0) - (b[2] ?? 0);

/**
 * Whether a Node version satisfies an `engines.node` range, for the forms the lockfile holds:
 * `||` alternatives of space-separated comparators (>=, >, <=, <, ^, ~, bare or x-partial versions, *).
 */
function satisfiesEngine(version: string, range: string): boolean {
  const v = versionParts(version).map((n) => n ?? 0);
  return range.split('||').some((alternative) => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<|\^|~)\s+/g, '$1').split(/\s+/).filter(Boolean);
    return comparators.every((c) => {
      const m = /^(>=|<=|>|<|\^|~|=)?(.*)$/.exec(c);
      const op = m?.[1] ?? '';
      const parts = versionParts(m?.[2] ?? '');
      if (parts[0] === null) return true;
      const lo = parts.map((n) => n ?? 0);
      if (op === '>=') return cmp(v, lo) >= 0;
      if (op === '<=') return cmp(v, lo) <= 0;
      if (op === '>') return cmp(v, lo) > 0;
      if (op === '<') return cmp(v, lo) < 0;
      if (op === '^' || op === '~' || op === '' || op === '=') {
        if (cmp(v, lo) < 0) return false;
        // ^: same major (for major ≥ 1); ~ or a partial version: same up to the last part given.
        const fixed = op === '^' ? 1 : op === '~' ? Math.min(2, parts[1] === null ? 1 : 2) : parts.findIndex((p) => p === null) === -1 ? 3 : parts.findIndex((p) => p === null);
        return v.slice(0, fixed).every((n, i) => n === lo[i]);
      }
      throw new Error(`cannot read engines range ${range}`);
    });
  });
}

describe('infra/Dockerfile', () => {
  it("the runtime stage installs exactly the Debian packages of every library the built worker links (ldd → dpkg -S)", () => {
    const workers = builtWorkers();
    if (workers.length === 0) {
      throw new Error(
        'no built mediasoup worker under ${GEO_SFU_CACHE_DIR:-~/.cache/geo-sfu}/mediasoup-worker/*/mediasoup-worker: ' +
          "run 'npm run setup' (infra/mediasoup/build-worker.sh builds it) before this test",
      );
    }
    const runtime = new Set(aptPackages('runtime'));
    for (const worker of workers) {
      const ldd = execFileSync('ldd', [worker], { encoding: 'utf8' });
      expect(ldd, `${worker} has unresolved libraries`).not.toMatch(/not found/);
      const libs = [...ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1] ?? '');
      expect(libs.length).toBeGreaterThan(5);
      const needed = new Set(libs.map(debianPackageOf));
      for (const pkg of ['libsrtp2-1', 'libusrsctp2', 'libabsl20220623', 'libuv1', 'libssl3']) expect(needed, `the worker links ${pkg}`).toContain(pkg);
      for (const pkg of needed) expect(runtime.has(pkg), `${worker} needs ${pkg}, missing from the runtime apt-get line`).toBe(true);
      // And nothing the worker does not need (the runtime stays slim).
      for (const pkg of runtime) expect(needed.has(pkg), `runtime installs ${pkg}, which the worker does not link`).toBe(true);
    }
  });

  it('has the deps, worker and runtime stages: npm ci without the worker download, worker from build-worker.sh or prebuilt, slim runtime', () => {
    expect(from('deps')).toMatch(/^node:24-bookworm AS deps$/);
    expect(inStage('deps', 'RUN').some((r) => /MEDIASOUP_WORKER_BIN=skip npm ci\b/.test(r.args))).toBe(true);
    expect(inStage('worker', 'ARG').map((a) => a.args)).toContain('GEO_SFU_WORKER_SOURCE=offline');
    expect(inStage('worker', 'RUN').some((r) => /GEO_SFU_WORKER_SOURCE="\$\{GEO_SFU_WORKER_SOURCE\}" bash infra\/mediasoup\/build-worker\.sh/.test(r.args))).toBe(true);
    expect(from('runtime')).toBe('node:24-bookworm-slim AS runtime');
    expect(aptPackages('runtime').some((p) => /-dev$|^(gcc|g\+\+|make|python3.*|pkg-config)$/.test(p))).toBe(false);
    // The worker stage installs the build-dependencies build-worker.sh declares (when that script is here).
    const script = join(INFRA, 'mediasoup', 'build-worker.sh');
    if (existsSync(script)) {
      const declared = /DEBIAN_PACKAGES=\(([^)]*)\)/.exec(readText('infra/mediasoup/build-worker.sh'))?.[1]?.split(/\s+/).filter(Boolean) ?? [];
      expect(declared.length).toBeGreaterThan(0);
      for (const p of declared) expect(aptPackages('worker'), `worker stage lacks ${p}`).toContain(p);
    }
  });

  it('runtime: non-root user, MEDIASOUP_WORKER_BIN is the copied worker, health check on a served route, settings load', () => {
    const user = inStage('runtime', 'USER')[0]?.args;
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    const env = envOf('runtime');
    const copy = inStage('runtime', 'COPY').find((c) => c.args.startsWith('--from=worker '));
    expect(copy?.args).toBe(`--from=worker /out/mediasoup-worker ${env.MEDIASOUP_WORKER_BIN}`);
    const health = inStage('runtime', 'HEALTHCHECK')[0]?.args ?? '';
    const path = /"(\/[a-z]+)"\]$/.exec(health)?.[1];
    expect(path).toBe('/healthz');
    expect(getRoutes('router').has(path ?? '')).toBe(true);
    expect(getRoutes('region-agent').has(path ?? '')).toBe(true);
    for (const key of Object.keys(env).filter((k) => k.startsWith('GEO_SFU_'))) expect(KNOWN_ENV.has(key), key).toBe(true);
    const geoEnv = Object.fromEntries(Object.entries(env).filter(([k]) => KNOWN_ENV.has(k)));
    expect(loadConfig({ ...geoEnv, ...SAMPLE_SECRETS }).production).toBe(true);
    for (const m of DOCKERFILE.matchAll(/\bGEO_SFU_[A-Z0-9_]+\b/g)) expect(KNOWN_ENV.has(m[0]), m[0]).toBe(true);
  });

  it('the build stage compiles dist/ and web/dist from the filtered context; the runtime gets those, package.json and infra/docker, no sources', () => {
    for (const c of instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))) {
      const sources = c.args.split(' ').slice(0, -1);
      for (const s of sources) expect(existsSync(join(ROOT, s)), `COPY ${s}`).toBe(true);
    }
    expect(inStage('build', 'COPY').map((c) => c.args)).toContain('. .');
    const buildRuns = inStage('build', 'RUN').map((r) => r.args).join(' && ');
    expect(buildRuns).toMatch(/npm run build:web\b/);
    expect(buildRuns).toMatch(/npm run build(?!:)/);
    expect(inStage('runtime', 'COPY').map((c) => c.args).sort()).toEqual(
      ['--from=build /app/dist ./dist', '--from=build /app/web/dist ./web/dist', `--from=deps /app/node_modules ./node_modules`, 'infra/docker ./infra/docker', 'package.json ./', expect.stringMatching(/^--from=worker /)].sort(),
    );
    const ignored = readText('infra/Dockerfile.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    for (const out of ['.git', '**/node_modules', 'test', 'bench', 'dist', 'web/dist']) expect(ignored).toContain(out);
    for (const kept of ['router', 'region-agent', 'shared', 'sfu', 'cli', 'sdk', 'web', 'infra/docker', 'infra/mediasoup', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored.some((p) => p === kept || kept.startsWith(`${p}/`)), `${kept} must reach the build`).toBe(false);
    }
  });

  it("the entry point runs node on the JavaScript `npm run build` emits for router/main.ts and region-agent/main.ts, never tsx", () => {
    const build = JSON.parse(readText('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string; rewriteRelativeImportExtensions?: boolean }; include: string[] };
    expect(build.compilerOptions.rewriteRelativeImportExtensions).toBe(true);
    const emitted = (source: string) => {
      expect(build.include.some((dir) => source.startsWith(`${dir}/`)), `${source} is built`).toBe(true);
      return join(build.compilerOptions.outDir, relative(build.compilerOptions.rootDir, source)).replace(/\.ts$/, '.js');
    };
    const entry = readText('infra/docker/entrypoint.sh');
    const commands = Object.fromEntries([...entry.matchAll(/^\s*([a-z| *-]+)\) exec (.*?)\s*;;$/gm)].map((m) => [m[1]?.trim(), m[2]]));
    expect(commands).toEqual({
      router: `node --enable-source-maps ${emitted('router/main.ts')} "$@"`,
      'agent | region-agent': `node --enable-source-maps ${emitted('region-agent/main.ts')} "$@"`,
      '*': '"$cmd" "$@"',
    });
    expect(existsSync(join(ROOT, 'router/main.ts')) && existsSync(join(ROOT, 'region-agent/main.ts'))).toBe(true);
    const entryCode = entry.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
    for (const text of [entryCode, ...inStage('runtime', 'ENTRYPOINT').map((i) => i.args), ...inStage('runtime', 'CMD').map((i) => i.args), ...inStage('runtime', 'HEALTHCHECK').map((i) => i.args)]) {
      expect(text).not.toMatch(/\btsx\b|--import|--loader|\.ts\b/);
    }
    expect(execFileSync('sh', ['-n', join(INFRA, 'docker', 'entrypoint.sh')], { encoding: 'utf8' })).toBe('');
    // The runtime's node_modules come from `npm ci --omit=dev`: tsx is not even there.
    const lock = JSON.parse(readText('package-lock.json')) as { packages: Record<string, { dev?: boolean }> };
    expect(lock.packages['node_modules/tsx']?.dev, 'tsx must be a devDependency').toBe(true);
  });

  it("images run Node 24 LTS, which every production dependency admits; package.json's engines still admit the Node 20 of development", () => {
    for (const arg of ['NODE_IMAGE', 'NODE_SLIM_IMAGE']) {
      const m = /^node:(\d+)-bookworm(-slim)?$/.exec(globalArgs[arg] ?? '');
      expect(m, `${arg}=${globalArgs[arg]}`).not.toBeNull();
      expect(Number(m?.[1]), `${arg}: an LTS line (even major) still supported`).toBe(24);
    }
    // The first release of each line that was LTS, and the one these machines run.
    const imageNode = '24.11.0';
    const devNode = '20.19.0';
    const pkg = JSON.parse(readText('package.json')) as { engines: { node: string } };
    expect(satisfiesEngine(devNode, pkg.engines.node), pkg.engines.node).toBe(true);
    expect(satisfiesEngine(imageNode, pkg.engines.node), pkg.engines.node).toBe(true);
    const lock = JSON.parse(readText('package-lock.json')) as { packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } | string[] }> };
    const production = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true);
    expect(production.length).toBeGreaterThan(50);
    const refuse = (node: string) =>
      production.flatMap(([path, p]) => {
        const range = Array.isArray(p.engines) ? undefined : p.engines?.node;
        return range !== undefined && !satisfiesEngine(node, range) ? [`${path.replace(/^.*node_modules\//, '')}@${p.version ?? '?'} (node ${range})`] : [];
      });
    expect(refuse(imageNode), `production dependencies refusing Node ${imageNode}`).toEqual([]);
    // Not a failure: npm ci on the Node 20 of development prints EBADENGINE for these.
    console.log(`production dependencies whose engines refuse Node ${devNode}: ${refuse(devNode).join(', ') || 'none'}`);
  });

  it('the engines reader is not vacuous', () => {
    expect(satisfiesEngine('20.19.0', '>=22')).toBe(false);
    expect(satisfiesEngine('24.11.0', '>=22')).toBe(true);
    expect(satisfiesEngine('21.0.0', '20 || >=22')).toBe(false);
    expect(satisfiesEngine('20.3.0', '^18.17.0 || >=20.5.0')).toBe(false);
    expect(satisfiesEngine('24.11.0', '^12.20 || >= 14.13')).toBe(true);
    expect(satisfiesEngine('15.0.0', '>=16 || 14 >=14.17')).toBe(false);
    expect(satisfiesEngine('14.18.0', '>=16 || 14 >=14.17')).toBe(true);
    expect(satisfiesEngine('11.0.0', '10.* || >= 12.*')).toBe(false);
  });
});

describe('infra/docker/healthcheck.mjs', () => {
  let server: Server;
  let port = 0;
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.statusCode = req.url === '/healthz' ? 200 : 503;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const check = (env: Record<string, string>, path?: string) =>
    new Promise<number>((resolve) => {
      const argv = [join(INFRA, 'docker', 'healthcheck.mjs'), ...(path ? [path] : [])];
      execFile(process.execPath, argv, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 }, (err) => {
        resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : -1);
      });
    });

  it('speaks HTTPS when GEO_SFU_TLS_CERT_FILE is set (the process then serves nothing else), whatever name the certificate has', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'geo-sfu-healthcheck-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=sfu.example.net', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], { stdio: 'ignore' });
      const tlsServer = createHttpsServer({ cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) }, (req, res) => {
        res.statusCode = req.url === '/healthz' ? 200 : 503;
        res.end();
      });
      await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
      const tlsPort = String((tlsServer.address() as { port: number }).port);
      try {
        const tlsEnv = { GEO_SFU_TLS_CERT_FILE: join(dir, 'tls.crt'), GEO_SFU_TLS_KEY_FILE: join(dir, 'tls.key') };
        expect(await check({ ...tlsEnv, GEO_SFU_ROUTER_HOST: '0.0.0.0', GEO_SFU_ROUTER_PORT: tlsPort })).toBe(0);
        expect(await check({ ...tlsEnv, GEO_SFU_AGENT_REGION: 'apac', GEO_SFU_AGENT_HOST: '0.0.0.0', GEO_SFU_AGENT_PORT: tlsPort })).toBe(0);
        expect(await check({ ...tlsEnv, GEO_SFU_ROUTER_PORT: tlsPort }, '/readyz')).toBe(1);
        // Plain HTTP to a TLS listener is not an answer.
        expect(await check({ GEO_SFU_ROUTER_PORT: tlsPort })).toBe(1);
      } finally {
        await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("probes the router's port, or the agent's when GEO_SFU_AGENT_REGION is set; 0.0.0.0 means loopback", async () => {
    expect(await check({ GEO_SFU_ROUTER_HOST: '0.0.0.0', GEO_SFU_ROUTER_PORT: String(port) })).toBe(0);
    expect(await check({ GEO_SFU_AGENT_REGION: 'apac', GEO_SFU_AGENT_HOST: '0.0.0.0', GEO_SFU_AGENT_PORT: String(port), GEO_SFU_ROUTER_PORT: '1' })).toBe(0);
    expect(await check({ GEO_SFU_AGENT_REGION: 'apac', GEO_SFU_AGENT_PORT: '1', GEO_SFU_ROUTER_PORT: String(port) })).toBe(1);
    expect(await check({ GEO_SFU_ROUTER_PORT: String(port) }, '/readyz')).toBe(1);
    expect(seen).toEqual(['/healthz', '/healthz', '/readyz']);
  });
});
