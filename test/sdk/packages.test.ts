/**
 * The SDK as packages applications install (npm workspaces in sdk/packages/): `@geo-sfu/client`
 * and `@geo-sfu/server`, compiled to ESM with .d.ts by `npm run build:packages`. Each imports from
 * plain Node (no TypeScript loader), the client bundles with Vite, and neither carries a server
 * dependency (mediasoup, fastify, pg...).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../shared/signaling.ts';
import { verifyGrant } from '../../shared/tokens.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGES = { client: join(ROOT, 'sdk/packages/client'), server: join(ROOT, 'sdk/packages/server') };
// Under node_modules so that Vite resolves the packages the way an application of this repository would.
const VITE_APP = join(ROOT, 'node_modules/.cache/geo-sfu-sdk-vite-app');

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

/** Bare specifiers the compiled JavaScript of a package imports. */
function importedPackages(dir: string): Set<string> {
  const found = new Set<string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.js')) {
        const code = readFileSync(p, 'utf8').replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '');
        for (const m of code.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
          const spec = m[1] ?? m[2]!;
          if (!spec.startsWith('.')) found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  walk(join(dir, 'dist'));
  return found;
}

/** Runs an ES module with plain node from the repository root (the workspace links in node_modules/@geo-sfu). */
function nodeEval(code: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
}

beforeAll(() => {
  execFileSync('npm', ['run', '--silent', 'build:packages'], { cwd: ROOT, stdio: 'inherit' });
}, 180_000);

afterAll(() => rmSync(VITE_APP, { recursive: true, force: true }));

describe('@geo-sfu/client and @geo-sfu/server', () => {
  it('are workspaces linked into node_modules, compiled to ESM with declarations', () => {
    expect(readJson(join(ROOT, 'package.json')).workspaces).toEqual(['sdk/packages/*']);
    for (const [name, dir] of Object.entries(PACKAGES)) {
      const pkg = readJson(join(dir, 'package.json'));
      expect(pkg.name).toBe(`@geo-sfu/${name}`);
      expect(pkg.type).toBe('module');
      const entry = (pkg.exports as Record<string, { types: string; default: string }>)['.']!;
      expect(existsSync(join(dir, entry.default)), entry.default).toBe(true);
      expect(existsSync(join(dir, entry.types)), entry.types).toBe(true);
      expect(existsSync(join(ROOT, 'node_modules/@geo-sfu', name, 'package.json'))).toBe(true);
    }
  });

  it('import only what they declare: the client mediasoup-client, socket.io-client and typebox; the server Node built-ins', () => {
    const client = readJson(join(PACKAGES.client, 'package.json'));
    expect(Object.keys(client.dependencies as object).sort()).toEqual(['@sinclair/typebox', 'mediasoup-client', 'socket.io-client']);
    expect([...importedPackages(PACKAGES.client)].sort()).toEqual(['@sinclair/typebox', 'mediasoup-client', 'socket.io-client']);
    const server = readJson(join(PACKAGES.server, 'package.json'));
    expect(server.dependencies).toBeUndefined();
    expect([...importedPackages(PACKAGES.server)].every((s) => s.startsWith('node:'))).toBe(true);
  });

  it('the server package imports from plain Node, and its grants are the ones the router verifies', () => {
    const key = { kid: 'app-1', secret: 's'.repeat(40) };
    const out = nodeEval(`
      import { createGrant } from '@geo-sfu/server';
      console.log(createGrant({ key: ${JSON.stringify(key)}, issuer: 'app', audience: 'geo-sfu', roomId: 'r1', participantId: 'alice', ttlSeconds: 60, nowMs: ${Date.now()} }));
    `).trim();
    const claims = verifyGrant([key], out, Date.now(), { audience: 'geo-sfu', issuer: 'app', room: 'r1', sub: 'alice' });
    expect(claims.sub).toBe('alice');
  });

  it('the client package imports from plain Node', () => {
    const out = nodeEval(`
      const sdk = await import('@geo-sfu/client');
      console.log(JSON.stringify({ keys: Object.keys(sdk).sort(), protocol: sdk.PROTOCOL_VERSION, client: typeof sdk.GeoSfuClient }));
    `);
    const { keys, protocol, client } = JSON.parse(out) as { keys: string[]; protocol: unknown; client: string };
    expect(client).toBe('function');
    expect(protocol).toBe(PROTOCOL_VERSION);
    for (const name of ['GeoSfuClient', 'GeoSfuRoom', 'RouterApi', 'GeoSfuClientError', 'SignalingError', 'probeRegionsView', 'installWebRtc']) expect(keys).toContain(name);
  });

  it('the client package bundles with Vite for the browser, without server code', async () => {
    rmSync(VITE_APP, { recursive: true, force: true });
    mkdirSync(VITE_APP, { recursive: true });
    writeFileSync(join(VITE_APP, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>\n');
    writeFileSync(join(VITE_APP, 'main.js'), "import { GeoSfuClient } from '@geo-sfu/client';\nwindow.client = new GeoSfuClient({ routerUrl: location.origin });\n");
    await build({ root: VITE_APP, logLevel: 'silent', configFile: false, build: { outDir: join(VITE_APP, 'dist'), emptyOutDir: true, minify: false } });
    const assets = join(VITE_APP, 'dist/assets');
    const js = readdirSync(assets).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(assets, f), 'utf8')).join('\n');
    expect(js).toContain('GeoSfuClient');
    expect(js).not.toMatch(/from ['"](mediasoup|fastify|pg|ioredis)['"]/);
    expect(js).not.toMatch(/node:crypto|node:child_process/);
  }, 120_000);
});
