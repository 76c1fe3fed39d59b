import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ClientLine {
  type: string;
  t: number;
  [key: string]: unknown;
}

/** A wrtc + mediasoup-client participant in its own process (see wrtc-client.ts). */
export interface MediaClient {
  lines: ClientLine[];
  /** Latest `stats` line. */
  stats(): { framesDecoded: number; packets: { audio: number; video: number }; consumers: number; firstFrameMs: number | null } | undefined;
  events(event: string): unknown[];
  send(cmd: 'pause' | 'resume' | 'leave' | 'exit'): void;
  waitFor<T>(what: string, probe: (c: MediaClient) => T | undefined | null | false, timeoutMs?: number): Promise<T>;
  /** Kills the process (SIGKILL) if it is still running; resolves when it is gone. */
  stop(): Promise<void>;
  stderr(): string;
  process: ChildProcess;
}

export function startMediaClient(signalingUrl: string, joinToken: string, opts: { publish?: boolean } = {}): MediaClient {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/signaling/wrtc-client.ts'], {
    cwd: ROOT,
    env: { ...process.env, SIGNALING_URL: signalingUrl, JOIN_TOKEN: joinToken, PUBLISH: opts.publish === false ? '0' : '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: ClientLine[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as ClientLine);
    } catch {
      stderr += `${line}\n`;
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client: MediaClient = {
    lines,
    process: child,
    stats: () => lines.filter((l) => l.type === 'stats').at(-1) as ReturnType<MediaClient['stats']>,
    events: (event) => lines.filter((l) => l.type === 'event' && l.event === event).map((l) => l.msg),
    send: (cmd) => child.stdin!.write(`${JSON.stringify({ cmd })}\n`),
    stderr: () => stderr,
    waitFor: async (what, probe, timeoutMs = 15_000) => {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const v = probe(client);
        if (v !== undefined && v !== null && v !== false) return v;
        const error = lines.find((l) => l.type === 'error');
        if (error) throw new Error(`client error while waiting for ${what}: ${String(error.message)}`);
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`client exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}; stderr: ${stderr.slice(-2_000)}`);
        if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last lines: ${JSON.stringify(lines.slice(-3))}; stderr: ${stderr.slice(-2_000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  return client;
}
