/**
 * `node --import tsx bench/heap-diff.ts a.heapsnapshot b.heapsnapshot [c.heapsnapshot ...]`: what a
 * process's V8 heap holds more of from one snapshot to the next, by constructor (object nodes by
 * class name, others by node type: closures, strings, arrays...), sorted by the growth in bytes
 * from the first snapshot to the last, with the counts at every snapshot. A leak shows as a
 * constructor that grows at every step; the soak (bench/soak.ts --heap-snapshots) takes them at the
 * start, middle and end of its run. Self sizes only: what retains the growth is the next question
 * (open the last snapshot in Chrome DevTools, Comparison view, on the constructor named here).
 */
import { readFileSync } from 'node:fs';

export interface ConstructorCount {
  count: number;
  selfBytes: number;
}

interface HeapSnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: ArrayLike<number>;
  edges: ArrayLike<number>;
  strings: string[];
}

/** The integers of the JSON array that starts at `from` (just after its `[`). */
function readInts(buf: Buffer, from: number): number[] {
  const out: number[] = [];
  let n = 0;
  let inNumber = false;
  for (let i = from; ; i++) {
    const c = buf[i]!;
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      inNumber = true;
      continue;
    }
    if (inNumber) out.push(n);
    n = 0;
    inNumber = false;
    if (c === 93 /* ] */) return out;
  }
}

/**
 * The parts of a .heapsnapshot file this needs (its meta, nodes and strings), read without
 * parsing the whole file as one JSON text (an agent's snapshot can pass V8's longest string).
 */
export function readHeapSnapshot(path: string): HeapSnapshotFile {
  const buf = readFileSync(path);
  const find = (marker: string, from = 0) => {
    const at = buf.indexOf(marker, from);
    if (at < 0) throw new Error(`${path}: no ${marker} (not a V8 heap snapshot?)`);
    return at;
  };
  const nodesAt = find('"nodes":[');
  const head = buf.subarray(0, nodesAt).toString('utf8').trim().replace(/,$/, '');
  const { snapshot } = JSON.parse(`${head}}`) as Pick<HeapSnapshotFile, 'snapshot'>;
  const nodes = readInts(buf, nodesAt + '"nodes":['.length);
  const edges = readInts(buf, find('"edges":[', nodesAt) + '"edges":['.length);
  const stringsAt = find('"strings":[', nodesAt) + '"strings":'.length;
  const end = buf.lastIndexOf(']');
  const strings = JSON.parse(buf.subarray(stringsAt, end + 1).toString('utf8')) as string[];
  return { snapshot, nodes, edges, strings };
}

/** Counts and self sizes by constructor: `Name` for objects, `(type)` for the other node types. */
export function countByConstructor(snapshot: HeapSnapshotFile): Map<string, ConstructorCount> {
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const counts = new Map<string, ConstructorCount>();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!] ?? 'unknown';
    const key = type === 'object' ? (snapshot.strings[nodes[i + nameAt]!] ?? '?') : `(${type})`;
    let entry = counts.get(key);
    if (!entry) counts.set(key, (entry = { count: 0, selfBytes: 0 }));
    entry.count++;
    entry.selfBytes += nodes[i + sizeAt]!;
  }
  return counts;
}

export interface ConstructorGrowth {
  name: string;
  /** Per snapshot, in order. */
  counts: number[];
  selfBytes: number[];
}

/** Constructors whose self size grew from the first snapshot to the last, the most first. */
export function growth(series: readonly Map<string, ConstructorCount>[], top = 30): ConstructorGrowth[] {
  const names = new Set(series.flatMap((s) => [...s.keys()]));
  const rows = [...names].map((name) => ({
    name,
    counts: series.map((s) => s.get(name)?.count ?? 0),
    selfBytes: series.map((s) => s.get(name)?.selfBytes ?? 0),
  }));
  const delta = (r: ConstructorGrowth) => r.selfBytes.at(-1)! - r.selfBytes[0]!;
  return rows.filter((r) => delta(r) > 0).sort((a, b) => delta(b) - delta(a)).slice(0, top);
}

export interface GrownObject {
  /** Constructor (or `(type)`) of the object that grew. */
  name: string;
  /** Self size in the first and the last snapshot. */
  fromBytes: number;
  toBytes: number;
  /** Who holds it in the last snapshot, nearest first: `Owner.edge`. */
  retainers: string[];
}

/**
 * Objects present in the first and the last snapshot (V8 keeps node ids across snapshots of one
 * process) whose own size grew the most: a Map's or an array's backing store that keeps growing
 * is a leak's container, and its retainers name the field that holds it.
 */
export function grownObjects(first: HeapSnapshotFile, last: HeapSnapshotFile, top = 10, depth = 5): GrownObject[] {
  const view = (snap: HeapSnapshotFile) => {
    const f = snap.snapshot.meta.node_fields;
    return { width: f.length, type: f.indexOf('type'), name: f.indexOf('name'), id: f.indexOf('id'), size: f.indexOf('self_size'), edges: f.indexOf('edge_count') };
  };
  const a = view(first);
  const before = new Map<number, number>();
  for (let i = 0; i < first.nodes.length; i += a.width) before.set(first.nodes[i + a.id]!, first.nodes[i + a.size]!);
  const b = view(last);
  const types = last.snapshot.meta.node_types[0];
  const label = (node: number) => {
    const type = types[last.nodes[node + b.type]!];
    return type === 'object' ? last.strings[last.nodes[node + b.name]!]! : `(${type})`;
  };
  const candidates: Array<{ node: number; from: number; to: number }> = [];
  for (let i = 0; i < last.nodes.length; i += b.width) {
    const from = before.get(last.nodes[i + b.id]!);
    const to = last.nodes[i + b.size]!;
    if (from !== undefined && to > from) candidates.push({ node: i, from, to });
  }
  candidates.sort((x, y) => y.to - y.from - (x.to - x.from));
  const chosen = candidates.slice(0, top);
  // Retainers: one pass over the edges, remembering for each node one non-weak owner.
  const ef = last.snapshot.meta.edge_fields;
  const eWidth = ef.length;
  const eType = ef.indexOf('type');
  const eName = ef.indexOf('name_or_index');
  const eTo = ef.indexOf('to_node');
  const edgeTypes = last.snapshot.meta.edge_types[0];
  const owner = new Map<number, { from: number; edge: string }>();
  let e = 0;
  for (let i = 0; i < last.nodes.length; i += b.width) {
    const count = last.nodes[i + b.edges]!;
    for (let k = 0; k < count; k++, e += eWidth) {
      const type = edgeTypes[last.edges[e + eType]!];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = last.edges[e + eTo]!;
      if (owner.has(to)) continue;
      const raw = last.edges[e + eName]!;
      owner.set(to, { from: i, edge: type === 'element' || type === 'hidden' ? `[${raw}]` : String(last.strings[raw]) });
    }
  }
  return chosen.map(({ node, from, to }) => {
    const retainers: string[] = [];
    for (let at = node, d = 0; d < depth; d++) {
      const o = owner.get(at);
      if (!o) break;
      retainers.push(`${label(o.from)}.${o.edge}`);
      at = o.from;
    }
    return { name: label(node), fromBytes: from, toBytes: to, retainers };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  if (files.length < 2) {
    process.stderr.write('usage: bench/heap-diff.ts first.heapsnapshot later.heapsnapshot [...]\n');
    process.exit(2);
  }
  const snapshots = files.map((f) => readHeapSnapshot(f));
  const series = snapshots.map((snap) => countByConstructor(snap));
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  const total = (s: Map<string, ConstructorCount>) => [...s.values()].reduce((a, c) => a + c.selfBytes, 0);
  process.stdout.write(`heap (self sizes): ${series.map((s) => kib(total(s))).join(' → ')}\n`);
  for (const r of growth(series)) {
    process.stdout.write(`${`+${kib(r.selfBytes.at(-1)! - r.selfBytes[0]!)}`.padStart(12)}  ${r.name.slice(0, 60).padEnd(60)}  count ${r.counts.join(' → ')}\n`);
  }
  process.stdout.write('objects that grew most (first → last snapshot), with who holds them:\n');
  for (const g of grownObjects(snapshots[0]!, snapshots.at(-1)!)) {
    process.stdout.write(`${`+${kib(g.toBytes - g.fromBytes)}`.padStart(12)}  ${g.name} (${kib(g.fromBytes)} → ${kib(g.toBytes)})  held by ${g.retainers.join(' ← ')}\n`);
  }
}
