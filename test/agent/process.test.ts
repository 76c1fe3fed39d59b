import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeRouter, startFakeRouter } from './fake-router.ts';
import { CLUSTER_SECRET, waitFor } from './helpers.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const children = new Set<ChildProcess>();
let router: FakeRouter | null = null;
afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  await router?.close();
  router = null;
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `node --import tsx region-agent/main.ts` with exactly these GEO_SFU_* settings. */
function runAgent(settings: Record<string, string>): Run {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GEO_SFU_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'region-agent/main.ts'], { cwd: repoRoot, env: { ...env, ...settings }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

describe('region-agent/main.ts', () => {
  it('registers, and on SIGTERM drains, deregisters and exits 0 within the deadline', async () => {
    router = await startFakeRouter({ secret: CLUSTER_SECRET });
    const drainDeadlineMs = 5_000;
    const run = runAgent({
      GEO_SFU_CLUSTER_SECRET: CLUSTER_SECRET,
      GEO_SFU_AGENT_REGION: 'eu-west',
      GEO_SFU_AGENT_ID: 'eu-proc-1',
      GEO_SFU_ROUTER_URL: router.url,
      GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
      GEO_SFU_DRAIN_DEADLINE_MS: String(drainDeadlineMs),
    });
    const registration = await waitFor('registration of the child', () => router!.registrations[0], 15_000);
    expect(registration).toMatchObject({ nodeId: 'eu-proc-1', region: 'eu-west' });
    await waitFor('a heartbeat from the child', () => router!.heartbeats.length > 0);
    expect(run.stdout()).toContain(`listening on ${registration.controlUrl}`);

    const signalledAt = performance.now();
    run.child.kill('SIGTERM');
    const exit = await run.exited;
    const tookMs = exit.at - signalledAt;
    console.log(`child agent: SIGTERM → exit ${exit.code} in ${tookMs.toFixed(0)} ms`);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(drainDeadlineMs);
    expect(router.deregistrations.map((d) => d.nodeId)).toEqual(['eu-proc-1']);
    expect(router.heartbeats.at(-1)?.draining).toBe(true);
    expect(run.stderr()).toBe('');
  });

  const valid = { GEO_SFU_CLUSTER_SECRET: CLUSTER_SECRET, GEO_SFU_AGENT_REGION: 'us-west' };
  it.each<{ problem: string; settings: Record<string, string>; variable: string }>([
    { problem: 'no region', settings: { GEO_SFU_CLUSTER_SECRET: CLUSTER_SECRET }, variable: 'GEO_SFU_AGENT_REGION' },
    { problem: 'no cluster secret', settings: { GEO_SFU_AGENT_REGION: 'us-west' }, variable: 'GEO_SFU_CLUSTER_SECRET' },
    { problem: 'a region not in the catalog', settings: { ...valid, GEO_SFU_AGENT_REGION: 'mars' }, variable: 'GEO_SFU_AGENT_REGION' },
    { problem: 'a non-numeric interval', settings: { ...valid, GEO_SFU_HEARTBEAT_INTERVAL_MS: 'soon' }, variable: 'GEO_SFU_HEARTBEAT_INTERVAL_MS' },
    { problem: 'a peer route that is not http', settings: { ...valid, GEO_SFU_PEER_ROUTES: '{"east-1": "ftp://x"}' }, variable: 'GEO_SFU_PEER_ROUTES' },
  ])('bad configuration ($problem): exits 1 naming $variable', async ({ settings, variable }) => {
    const run = runAgent(settings);
    const exit = await run.exited;
    expect(exit.code).toBe(1);
    expect(run.stderr()).toMatch(/^invalid geo-sfu configuration:/);
    expect(run.stderr()).toContain(variable);
    expect(run.stdout()).toBe('');
  });
});
