import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonLine, prettyLine } from '../../infra/embedded/log-lines.ts';
import type { RegionsResponse } from '../../shared/schemas/index.ts';

/**
 * `npm start` as a newcomer meets it: a clean start and stop (Ctrl-C) logs nothing alarming and
 * exits 0, a start that fails (its port taken) exits non-zero, and the log lines are JSON when
 * not on a terminal and readable when on one.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Started {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

/** `npm start`'s command (package.json) in a process group of its own, as a terminal runs it. */
function start(routerPort: number): Started {
  const lines: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/embedded/main.ts'], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, GEO_SFU_ROUTER_PORT: String(routerPort), GEO_SFU_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** A router port with the four agent ports after it free too (npm start uses routerPort + 1…4). */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let free = true;
    for (let i = 0; i < 5 && free; i++) free = await canListen(base + i);
    if (free) return base;
  }
  throw new Error('no 5 consecutive free ports');
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number, lines: string[]): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${lines.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('npm start', () => {
  it('starts, and stops on Ctrl-C with exit 0 and no warning or error line', async () => {
    const port = await freeRange();
    const run = start(port);
    try {
      const regions = await until(
        'four registered nodes',
        async () => {
          const body = (await (await fetch(`http://127.0.0.1:${port}/regions`)).json()) as RegionsResponse;
          return body.regions.flatMap((r) => r.nodes).filter((n) => n.state === 'alive').length === 4 ? body : null;
        },
        60_000,
        run.lines,
      );
      expect(regions.regions).toHaveLength(4);
      // Ctrl-C: the terminal signals the whole foreground process group.
      process.kill(-run.child.pid!, 'SIGINT');
      expect(await run.exited).toBe(0);
    } finally {
      if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
    }
    const logs = run.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { proc: string; level?: number; msg?: string });
    const alarming = logs.filter((l) => (l.level ?? 0) >= 40 || /failed|died|error/i.test(l.msg ?? ''));
    console.log(`npm start → Ctrl-C: ${run.lines.length} lines, ${logs.length} log lines, ${alarming.length} warnings or errors`);
    expect(alarming, alarming.map((l) => JSON.stringify(l)).join('\n')).toEqual([]);
    // Every log line is JSON off a terminal, tagged with its process; the banner is the only text.
    expect(new Set(logs.map((l) => l.proc))).toEqual(new Set(['router', 'us-west-1', 'us-east-1', 'eu-west-1', 'apac-1']));
    expect(run.lines.some((l) => l.startsWith('geo-sfu embedded default'))).toBe(true);
    // The agents left the cluster in order: each drained and deregistered while the router answered.
    expect(logs.filter((l) => l.msg === 'deregistered from the router').map((l) => l.proc).sort()).toEqual(['apac-1', 'eu-west-1', 'us-east-1', 'us-west-1']);
  }, 120_000);

  it('exits non-zero when the router cannot start (its port is taken)', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const run = start(port);
    try {
      const code = await Promise.race([run.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 90_000))]);
      expect(code, run.lines.slice(-20).join('\n')).toBe(1);
      expect(run.lines.join('\n')).toMatch(/EADDRINUSE/);
      expect(run.lines).toContain('geo-sfu: the router exited (1); stopping');
    } finally {
      if (run.child.exitCode === null) process.kill(-run.child.pid!, 'SIGKILL');
      taken.close();
    }
  }, 120_000);
});

describe('log lines of the embedded default', () => {
  const pino = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), pid: 1, hostname: 'h', nodeId: 'us-west-1', attempt: 2, msg: 'registration failed; retrying' });

  it('off a terminal: one JSON object per line, the process named', () => {
    expect(JSON.parse(jsonLine('us-west-1', pino))).toMatchObject({ proc: 'us-west-1', level: 40, msg: 'registration failed; retrying', attempt: 2 });
    expect(JSON.parse(jsonLine('router', 'Error: boom'))).toEqual({ proc: 'router', msg: 'Error: boom' });
    expect(JSON.parse(jsonLine('router', '{not json'))).toEqual({ proc: 'router', msg: '{not json' });
  });

  it('on a terminal: time, level, process, message, then the other fields', () => {
    expect(prettyLine('us-west-1', pino, false)).toBe('03:04:05.678 WARN  us-west-1: registration failed; retrying nodeId=us-west-1 attempt=2');
    expect(prettyLine('us-west-1', pino, true)).toContain('\x1b[33mWARN \x1b[0m');
    expect(prettyLine('router', 'plain text', true)).toBe('router: plain text');
  });
});
