import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, stopChild } from '../../infra/embedded/launcher.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A router or agent running as its own process, as deployed. */
export interface ServiceProcess {
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
export async function spawnRouter(env: Record<string, string>, port?: number): Promise<ServiceProcess> {
  const listenPort = port ?? (await freePort());
  const scheme = env.GEO_SFU_TLS_CERT_FILE ? 'https' : 'http';
  const child = await spawnService('router/main.ts', { ...env, GEO_SFU_ROUTER_HOST: '127.0.0.1', GEO_SFU_ROUTER_PORT: String(listenPort) }, '"router listening"');
  return { url: `${scheme}://127.0.0.1:${listenPort}`, port: listenPort, ...child };
}

/** A region agent as its own process (region-agent/main.ts, with its SFU), on a free port. */
export async function spawnAgent(env: Record<string, string>): Promise<ServiceProcess> {
  const listenPort = await freePort();
  const scheme = env.GEO_SFU_TLS_CERT_FILE ? 'https' : 'http';
  const child = await spawnService('region-agent/main.ts', { GEO_SFU_SFU_WORKERS: '1', ...env, GEO_SFU_AGENT_HOST: '127.0.0.1', GEO_SFU_AGENT_PORT: String(listenPort) }, 'listening on');
  return { url: `${scheme}://127.0.0.1:${listenPort}`, port: listenPort, ...child };
}

async function spawnService(script: string, env: Record<string, string>, readyLine: string): Promise<Omit<ServiceProcess, 'url' | 'port'>> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, GEO_SFU_LOG_LEVEL: 'info', ...env },
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
        if (line.includes(readyLine)) resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`${script} exited (${code ?? signal}) before listening:\n${output.join('\n')}`)));
  });
  return { child, output, stop: () => stopChild(child) };
}
