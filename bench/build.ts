/**
 * The production build against tsx: how long the router and a region agent take from spawn to
 * listening (their "listening" log line), and their resident memory (the Node process's VmRSS;
 * the agent's mediasoup worker is a process of its own and not counted) at that moment, started
 * from dist/ by the image's entry point (plain node on JavaScript, source maps on) and from the
 * sources through tsx as in development. `npm run build` runs first, so dist/ is the current
 * code; one unmeasured start of each warms the disk cache and tsx's transform cache. Then
 * `rounds` starts of each, the two alternating (which goes first alternates too) so that load on
 * the machine falls on both alike; the figures are medians. In-memory stores, one SFU worker.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { median } from '../shared/rtt.ts';
import { testConfig } from '../test/utils/router-harness.ts';
import { type ServiceCode, type ServiceProcess, spawnAgent, spawnRouter } from '../test/utils/service-process.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MiB = 1024 * 1024;

export interface StartFigures {
  /** Spawn → listening, ms, one per start. */
  startMs: number[];
  /** Resident memory when listening, MiB, one per start. */
  rssMiB: number[];
  medianStartMs: number;
  medianRssMiB: number;
}

export interface BuildResult {
  rounds: number;
  buildS: number;
  router: Record<ServiceCode, StartFigures>;
  agent: Record<ServiceCode, StartFigures>;
}

function rssMiB(pid: number | undefined): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return (Number(kb) * 1024) / MiB;
}

async function measure(start: () => Promise<ServiceProcess>): Promise<{ ms: number; rss: number }> {
  const t0 = performance.now();
  const service = await start();
  const ms = performance.now() - t0;
  const rss = rssMiB(service.child.pid);
  await service.stop();
  return { ms, rss };
}

export async function benchBuild(opts: { quick: boolean }): Promise<BuildResult> {
  const rounds = opts.quick ? 2 : 5;
  const t0 = performance.now();
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT });
  const buildS = (performance.now() - t0) / 1000;

  const secrets = testConfig('memory');
  const env = {
    REDIS_URL: '',
    DATABASE_URL: '',
    GEO_SFU_LOG_LEVEL: 'info',
    GEO_SFU_CLUSTER_SECRET: secrets.clusterSecret,
    GEO_SFU_TOKEN_SECRETS: secrets.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
  };
  // The agents register with this router (the one being measured comes and goes).
  const home = await spawnRouter(env, 0, { code: 'built' });
  const starts: Record<'router' | 'agent', (code: ServiceCode) => Promise<ServiceProcess>> = {
    router: (code) => spawnRouter(env, 0, { code }),
    agent: (code) => spawnAgent({ ...env, GEO_SFU_AGENT_REGION: 'us-west', GEO_SFU_ROUTER_URL: home.url }, { code, port: 0 }),
  };
  const raw = {
    router: { source: { startMs: [] as number[], rssMiB: [] as number[] }, built: { startMs: [] as number[], rssMiB: [] as number[] } },
    agent: { source: { startMs: [] as number[], rssMiB: [] as number[] }, built: { startMs: [] as number[], rssMiB: [] as number[] } },
  };
  try {
    for (const service of ['router', 'agent'] as const) {
      for (const code of ['source', 'built'] as const) await measure(() => starts[service](code));
      for (let round = 0; round < rounds; round++) {
        const order: ServiceCode[] = round % 2 === 0 ? ['source', 'built'] : ['built', 'source'];
        for (const code of order) {
          const { ms, rss } = await measure(() => starts[service](code));
          raw[service][code].startMs.push(ms);
          raw[service][code].rssMiB.push(rss);
        }
      }
    }
  } finally {
    await home.stop();
  }
  const figures = (r: { startMs: number[]; rssMiB: number[] }): StartFigures => ({ ...r, medianStartMs: median([...r.startMs].sort((a, b) => a - b)), medianRssMiB: median([...r.rssMiB].sort((a, b) => a - b)) });
  return {
    rounds,
    buildS,
    router: { source: figures(raw.router.source), built: figures(raw.router.built) },
    agent: { source: figures(raw.agent.source), built: figures(raw.agent.built) },
  };
}
