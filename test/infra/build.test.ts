/**
 * The production build: `npm run build` compiles the router, region agent, SFU, shared code, CLI
 * and SDK to JavaScript with source maps in dist/, importing only production dependencies; then,
 * in a copy of what the image's runtime stage holds (package.json, infra/docker, dist/, web/dist,
 * node_modules; no sources), the image's entry point (plain node on dist/, no TypeScript loader)
 * starts a router and an agent that registers with it, with the files found beside the code (the
 * dashboard's web/dist, package.json) resolved from dist/.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegionsResponse } from '../../shared/schemas/index.ts';
import { testConfig } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnAgent, spawnRouter } from '../utils/service-process.ts';
import { ROOT } from './helpers.ts';

const BUILT_FOLDERS = ['router', 'region-agent', 'sfu', 'shared', 'cli', 'sdk'];
const DIST = join(ROOT, 'dist');

/** Every file under `dir`, as paths relative to ROOT. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Module specifiers of a module's imports, re-exports and literal dynamic imports (comments skipped). */
function specifiers(js: string): string[] {
  return ts.preProcessFile(js, true, true).importedFiles.map((f) => f.fileName);
}

/** The package a bare specifier loads: `@scope/name` or `name`. */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

const SECRETS = testConfig('memory');
const env = {
  // In-memory stores, whatever the test environment says.
  REDIS_URL: '',
  DATABASE_URL: '',
  GEO_SFU_CLUSTER_SECRET: SECRETS.clusterSecret,
  GEO_SFU_TOKEN_SECRETS: SECRETS.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
  GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
};

describe('npm run build', () => {
  const services: ServiceProcess[] = [];
  /** What the image's runtime stage holds, copied from this checkout after the build. */
  let image = '';
  beforeAll(async () => {
    const started = performance.now();
    await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, timeout: 150_000 });
    console.log(`npm run build: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    // The runtime stage's files (test/infra/dockerfile.test.ts checks the Dockerfile copies exactly
    // these), no sources; node_modules linked rather than copied (the test above checks the built
    // code imports only production dependencies).
    image = mkdtempSync(join(tmpdir(), 'geo-sfu-image-'));
    for (const path of ['package.json', 'infra/docker', 'dist', 'web/dist']) cpSync(join(ROOT, path), join(image, path), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'));
  }, 160_000);
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    if (image !== '') rmSync(image, { recursive: true, force: true });
  });

  it('emits a module and its source map for every TypeScript module, whose imports all name JavaScript', () => {
    const sources = BUILT_FOLDERS.flatMap(filesUnder).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    expect(sources.length).toBeGreaterThan(100);
    const missing = sources.filter((f) => !existsSync(join(DIST, f.replace(/\.ts$/, '.js'))) || !existsSync(join(DIST, f.replace(/\.ts$/, '.js.map'))));
    expect(missing, 'sources without dist/<path>.js and .js.map').toEqual([]);
    const built = filesUnder('dist').filter((f) => f.endsWith('.js'));
    expect(built.map((f) => relative(DIST, join(ROOT, f)).replace(/\.js$/, '.ts')).sort(), 'dist/ holds exactly the compiled sources').toEqual([...sources].sort());
    const relativeImports = built.flatMap((f) => specifiers(readFileSync(join(ROOT, f), 'utf8')).filter((s) => s.startsWith('.')).map((s) => `${f}: ${s}`));
    expect(relativeImports.length).toBeGreaterThan(built.length);
    expect(relativeImports.filter((i) => !i.endsWith('.js')), 'relative imports not rewritten to .js').toEqual([]);
    // What the built code loads from node_modules is a production dependency: the image installs
    // only those (npm ci --omit=dev).
    const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const packages = new Set(built.flatMap((f) => specifiers(readFileSync(join(ROOT, f), 'utf8')).filter((s) => !s.startsWith('.') && !s.startsWith('node:')).map(packageOf)));
    expect(packages).toContain('fastify');
    expect(packages).toContain('mediasoup');
    expect([...packages].filter((p) => dependencies[p] === undefined), 'imported by dist/ but not a production dependency').toEqual([]);
    // A map points at its source, so stack traces (node --enable-source-maps) name the .ts lines.
    const map = JSON.parse(readFileSync(join(DIST, 'router', 'main.js.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.map((s) => join(DIST, 'router', s))).toEqual([join(ROOT, 'router', 'main.ts')]);
  });

  it("in the image's file layout (no sources), its entry point runs the built router and agent as plain node processes: the agent registers, the dashboard is served", async () => {
    expect(existsSync(join(image, 'router')) || existsSync(join(image, 'shared'))).toBe(false);
    const started = performance.now();
    const router = await spawnRouter(env, 0, { code: 'built', root: image });
    services.push(router);
    const agent = await spawnAgent({ ...env, GEO_SFU_AGENT_ID: 'eu-west-built', GEO_SFU_AGENT_REGION: 'eu-west', GEO_SFU_ROUTER_URL: router.url }, { code: 'built', root: image, port: 0 });
    services.push(agent);
    console.log(`built router and agent listening ${((performance.now() - started) / 1000).toFixed(1)} s after spawn`);
    expect(router.port).toBeGreaterThan(0);
    expect(agent.port).toBeGreaterThan(0);

    // What runs is node on dist/ in the copy, no loader (Node 20 cannot run a .ts module without one).
    for (const [service, script] of [[router, 'dist/router/main.js'], [agent, 'dist/region-agent/main.js']] as const) {
      const argv = readFileSync(`/proc/${service.child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      expect(argv.slice(1)).toEqual(['--enable-source-maps', script]);
      expect(argv[0]).toMatch(/node$/);
      expect(readlinkSync(`/proc/${service.child.pid}/cwd`)).toBe(realpathSync(image));
    }

    // The agent registers and is alive in the router's view.
    let regions: RegionsResponse | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const res = await request(`${router.url}/regions`);
      regions = (await res.body.json()) as RegionsResponse;
      if (regions.regions.some((r) => r.nodes.some((n) => n.nodeId === 'eu-west-built' && n.state === 'alive'))) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const euWest = regions?.regions.find((r) => r.id === 'eu-west');
    expect(euWest?.nodes.map((n) => [n.nodeId, n.state])).toEqual([['eu-west-built', 'alive']]);
    expect(euWest?.healthy).toBe(true);
    const ready = await request(`${agent.url}/readyz`);
    expect(ready.statusCode).toBe(200);
    await ready.body.dump();

    // The agent's version is package.json's, found from dist/ through the package root.
    const status = await request(`${agent.url}/status`);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(((await status.body.json()) as { version: string }).version).toBe(version);

    // The dashboard (web/dist at the package root, the copy's) and one of its assets.
    const page = await request(`${router.url}/`);
    const html = await page.body.text();
    expect(page.statusCode, html).toBe(200);
    expect(html).toContain('<title>geo-sfu dashboard</title>');
    const asset = /\/assets\/([A-Za-z0-9._-]+\.js)/.exec(html)?.[0];
    expect(asset).toBeDefined();
    const script = await request(`${router.url}${asset}`);
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    await script.body.dump();

    // SIGTERM: the agent drains and deregisters, the router closes; both exit 0.
    const exits = [router, agent].map((s) => new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code))));
    await agent.stop();
    await router.stop();
    expect(await Promise.all(exits)).toEqual([0, 0]);
  }, 60_000);
});
