import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, stopChild } from '../../infra/embedded/launcher.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Which code a service runs: `source`, the TypeScript through tsx's loader (development, `npm
 * start`); `built`, the JavaScript `npm run build` wrote to dist/, started by the image's entry
 * point (infra/docker/entrypoint.sh: plain node, no loader), as deployed.
 */
export type ServiceCode = 'source' | 'built';

export interface ServiceOptions {
  code?: ServiceCode;
  /** The folder the service runs from (default: this checkout), e.g. a copy of what the image holds. */
  root?: string;
}

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
 * Starts the router with `env` (on top of this process's environment) on `port` (default: a free
 * one; 0: the kernel picks) and resolves once it logs that it listens, with the URL it logged.
 * Rejects with its output if it exits first.
 */
export async function spawnRouter(env: Record<string, string>, port?: number, options: ServiceOptions = {}): Promise<ServiceProcess> {
  const listenPort = port ?? (await freePort());
  return spawnService('router', options, { ...env, GEO_SFU_ROUTER_HOST: '127.0.0.1', GEO_SFU_ROUTER_PORT: String(listenPort) }, /"url":"(https?:\/\/[^"]+)","msg":"router listening"/);
}

/** A region agent as its own process (with its SFU) on `port` (default: a free one; 0: the kernel picks). */
export async function spawnAgent(env: Record<string, string>, options: ServiceOptions & { port?: number } = {}): Promise<ServiceProcess> {
  const listenPort = options.port ?? (await freePort());
  return spawnService('agent', options, { GEO_SFU_SFU_WORKERS: '1', ...env, GEO_SFU_AGENT_HOST: '127.0.0.1', GEO_SFU_AGENT_PORT: String(listenPort) }, /listening on (https?:\/\/[^\s"]+)/);
}

const COMMANDS: Record<'router' | 'agent', Record<ServiceCode, string[]>> = {
  router: { source: [process.execPath, '--import', 'tsx', 'router/main.ts'], built: ['sh', 'infra/docker/entrypoint.sh', 'router'] },
  agent: { source: [process.execPath, '--import', 'tsx', 'region-agent/main.ts'], built: ['sh', 'infra/docker/entrypoint.sh', 'agent'] },
};

async function spawnService(service: 'router' | 'agent', options: ServiceOptions, env: Record<string, string>, readyLine: RegExp): Promise<ServiceProcess> {
  const [command, ...args] = COMMANDS[service][options.code ?? 'source'] as [string, ...string[]];
  const child = spawn(command, args, {
    cwd: options.root ?? ROOT,
    env: { ...process.env, GEO_SFU_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The service must not outlive the test process.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  const output: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const reader = () => {
      let partial = '';
      return (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines.filter(Boolean)) {
          if (output.length < 200) output.push(line);
          const ready = readyLine.exec(line)?.[1];
          if (ready !== undefined) resolve(ready);
        }
      };
    };
    child.stdout.on('data', reader());
    child.stderr.on('data', reader());
    child.once('exit', (code, signal) => reject(new Error(`${args.join(' ')} exited (${code ?? signal}) before listening:\n${output.join('\n')}`)));
  });
  return { url, port: Number(new URL(url).port), child, output, stop: () => stopChild(child) };
}
