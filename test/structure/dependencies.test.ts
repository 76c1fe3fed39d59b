/**
 * The dependency rules of the layout (README "Layout", docs/architecture.md), read off the import
 * statements of every source file, type-only imports included:
 * - shared/ imports nothing of ours; sfu/ knows no router and no agent;
 * - router/ and region-agent/ never import each other; region-agent/ reaches mediasoup only
 *   through sfu/;
 * - router/placement/ is pure: no stores, network, clock or other router module;
 * - sdk/ and cli/ use only shared/ (and the public HTTP/socket APIs);
 * - no import cycle anywhere outside test/.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FOLDERS = ['shared', 'router', 'region-agent', 'sfu', 'sdk', 'cli', 'web/src', 'bench', 'infra'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist' || name === 'results') return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs|js)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s(?:[^'"]*?\sfrom\s)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** file (relative to the root) → what it imports: our files (relative) and packages (bare names). */
function importGraph(): Map<string, { ours: string[]; packages: string[] }> {
  const graph = new Map<string, { ours: string[]; packages: string[] }>();
  for (const folder of FOLDERS) {
    for (const file of sourceFiles(join(ROOT, folder))) {
      const text = readFileSync(file, 'utf8');
      const ours: string[] = [];
      const packages: string[] = [];
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.')) ours.push(relative(ROOT, resolve(dirname(file), spec)));
        else packages.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
      graph.set(relative(ROOT, file), { ours, packages });
    }
  }
  return graph;
}

const graph = importGraph();
const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);
const violations = (from: string, forbidden: (target: string) => boolean) =>
  [...graph].filter(([file]) => under(file, from)).flatMap(([file, { ours }]) => ours.filter(forbidden).map((target) => `${file} → ${target}`));

describe('dependency rules', () => {
  it('reads a graph of the whole tree', () => {
    // A parser that found nothing would make every rule below hold trivially.
    expect(graph.size).toBeGreaterThan(150);
    expect(graph.get('router/main.ts')?.ours.length).toBeGreaterThan(0);
  });

  it('shared/ imports nothing of ours outside shared/', () => {
    expect(violations('shared', (t) => !under(t, 'shared'))).toEqual([]);
  });

  it('sfu/ knows no router and no agent', () => {
    expect(violations('sfu', (t) => !under(t, 'sfu') && !under(t, 'shared'))).toEqual([]);
  });

  it('router/ and region-agent/ never import each other', () => {
    expect(violations('router', (t) => under(t, 'region-agent'))).toEqual([]);
    expect(violations('region-agent', (t) => under(t, 'router'))).toEqual([]);
  });

  it('region-agent/ reaches mediasoup only through sfu/', () => {
    const direct = [...graph].filter(([file, { packages }]) => under(file, 'region-agent') && packages.includes('mediasoup')).map(([file]) => file);
    expect(direct).toEqual([]);
  });

  it('router/placement/ is pure: only itself and shared/, no I/O or clock packages', () => {
    expect(violations('router/placement', (t) => !under(t, 'router/placement') && !under(t, 'shared'))).toEqual([]);
    const io = [...graph]
      .filter(([file]) => under(file, 'router/placement'))
      .flatMap(([file, { packages }]) => packages.filter((p) => /^(node:)?(fs|net|http|https|dgram|child_process|timers)$|^(ioredis|pg|undici|fastify)$/.test(p)).map((p) => `${file} → ${p}`));
    expect(io).toEqual([]);
  });

  it('sdk/ and cli/ use only shared/', () => {
    expect(violations('sdk', (t) => !under(t, 'sdk') && !under(t, 'shared'))).toEqual([]);
    expect(violations('cli', (t) => !under(t, 'cli') && !under(t, 'shared'))).toEqual([]);
  });

  it('has no import cycle', () => {
    // Tarjan's strongly connected components over our files; any component of two or more is a cycle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    let next = 0;
    const visit = (v: string): void => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v)?.ours ?? []) {
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1) cycles.push(component.sort());
      }
    };
    for (const v of graph.keys()) if (!index.has(v)) visit(v);
    expect(cycles).toEqual([]);
  });
});
