import { execFileSync, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const INFRA = join(ROOT, 'infra');

export function readText(relPath: string): string {
  return readFileSync(join(ROOT, relPath), 'utf8');
}

/** Every YAML document of a file (multi-document files give several), as plain JS. */
export function readYamlDocs(relPath: string): unknown[] {
  return parseYamlDocs(readText(relPath), relPath);
}

export function parseYamlDocs(text: string, what: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${what}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export function readYaml(relPath: string): unknown {
  const docs = readYamlDocs(relPath);
  if (docs.length !== 1) throw new Error(`${relPath}: expected one YAML document, found ${docs.length}`);
  return docs[0];
}

/** The path of `cmd` on PATH, or null. */
export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The path of a tool the setup installs; fails the test with what to run when it is missing. */
export function requireTool(cmd: string, how: string): string {
  const path = which(cmd);
  if (path === null) throw new Error(`${cmd} is not installed: ${how}`);
  return path;
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A loopback port free for both TCP and UDP (TURN listens on both). */
export async function freeTcpUdpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address() as { port: number };
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const sock = createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free TCP+UDP loopback port found');
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walks any JSON-like value, calling `visit` on every object (depth first). */
export function walk(value: unknown, visit: (obj: Record<string, unknown>, path: string) => void, path = '$'): void {
  if (Array.isArray(value)) value.forEach((v, i) => walk(v, visit, `${path}[${i}]`));
  else if (isRecord(value)) {
    visit(value, path);
    for (const [k, v] of Object.entries(value)) walk(v, visit, `${path}.${k}`);
  }
}

/** An inclusive port range. */
export type PortRange = [number, number];

export const overlaps = (a: PortRange, b: PortRange): boolean => a[0] <= b[1] && b[0] <= a[1];

/**
 * UDP ports one agent's SFU takes from GEO_SFU_RTC_MIN_PORT..MAX_PORT at worst: each mediasoup
 * worker's WebRtcServer one (sfu/worker-pool.ts; it takes one TCP port from the same range too),
 * and each pipe to another region one (sfu/region-pipe.ts: one per room and remote node; a node
 * hosts at most one room per participant; counted with a room on one node per region). Pipes
 * between the workers of one node listen on ephemeral ports, not on the range.
 */
export function rtcUdpPortsNeeded(o: { workers: number; maxParticipantsPerNode: number; regions: number }): number {
  return o.workers + o.maxParticipantsPerNode * (o.regions - 1);
}
