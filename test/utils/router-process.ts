import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, stopChild } from '../../infra/embedded/launcher.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A router running as its own process (router/main.ts), as deployed. */
export interface RouterProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Its stderr and log lines, for a failing test's message. */
  output: string[];
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts `router/main.ts` with `env` (on top of this process's environment) on `port` (default: a
 * free one) and resolves once it logs that it listens. Rejects with its output if it exits first.
 */
export async function spawnRouter(env: Record<string, string>, port?: number): Promise<RouterProcess> {
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'router/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, GEO_SFU_LOG_LEVEL: 'info', ...env, GEO_SFU_ROUTER_HOST: '127.0.0.1', GEO_SFU_ROUTER_PORT: String(listenPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The router must not outlive the test process.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        if (output.length < 200) output.push(line);
        if (line.includes('"router listening"')) resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`router exited (${code ?? signal}) before listening:\n${output.join('\n')}`)));
  });
  return { url: `http://127.0.0.1:${listenPort}`, port: listenPort, child, output, stop: () => stopChild(child) };
}
