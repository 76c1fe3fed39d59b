import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

/**
 * The browser entry of the SDK (`geo-sfu/sdk`, sdk/index.ts) must run in a browser: every module
 * it loads at run time (type-only imports aside), through sdk/ and shared/, may import only the
 * browser-ready packages it is built on, never a Node built-in. (`geo-sfu/sdk/server` is Node-only.)
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BROWSER_PACKAGES = new Set(['mediasoup-client', 'socket.io-client', '@sinclair/typebox']);

/** Run-time import specifiers of a module (`import type` and `export type` left out). */
function runtimeImports(source: string): string[] {
  const specs: string[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) if (!m[2]) specs.push(m[3]!);
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) specs.push(m[1]!);
  for (const m of source.matchAll(/import\(\s*'([^']+)'\s*\)/g)) specs.push(m[1]!);
  return specs;
}

it('sdk/index.ts loads no Node built-in and only browser-ready packages, P2P fallback included', () => {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [resolve(ROOT, 'sdk/index.ts')];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
      else packages.add(`${spec} (from ${file.slice(ROOT.length)})`);
    }
  }
  const files = [...seen].map((f) => f.slice(ROOT.length)).sort();
  expect(files).toContain('sdk/p2p-mesh.ts');
  expect(files.filter((f) => !f.startsWith('sdk/') && !f.startsWith('shared/'))).toEqual([]);
  const foreign = [...packages].filter((p) => !BROWSER_PACKAGES.has(p.split(' ')[0]!));
  expect(foreign, `modules: ${files.join(', ')}`).toEqual([]);
});
