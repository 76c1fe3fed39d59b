import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { UNCAUGHT_EXCEPTION_EXIT_CODE } from '../../shared/process-safety.ts';

/**
 * The process-level handlers the router (router/main.ts) and the agents (region-agent/run.ts)
 * install, in a real child process (test/security/fixtures/unexpected-errors-process.ts): an
 * unhandled rejection is logged and counted and the process keeps running; an uncaught exception
 * is logged and counted, the process closes, and exits non-zero; a close that hangs is cut off.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function run(env: Record<string, string>): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/security/fixtures/unexpected-errors-process.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const lines = out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { msg: line };
      }
    });
  return { code, lines, ms: performance.now() - started };
}

const messages = (lines: Array<Record<string, unknown>>) => lines.map((l) => String(l.msg));

it('an unhandled rejection is logged and counted and the process serves on; an uncaught exception is logged, counted, closes and exits non-zero', async () => {
  const { code, lines } = await run({});
  const msgs = messages(lines);
  console.log(`exit code ${code}; log: ${msgs.join(' | ')}`);
  expect(code).toBe(UNCAUGHT_EXCEPTION_EXIT_CODE);
  const rejection = lines.find((l) => String(l.msg).includes('unhandled promise rejection'));
  expect(rejection?.level).toBe(50);
  expect(JSON.stringify(rejection?.err)).toContain('rejected with nobody awaiting');
  const fatal = lines.find((l) => String(l.msg).includes('uncaught exception'));
  expect(fatal?.level).toBe(60);
  expect(JSON.stringify(fatal?.err)).toContain('thrown from a timer');
  // In this order: the rejection, serving on, the exception, the close.
  const order = ['unhandled promise rejection', 'still serving after the rejection', 'uncaught exception', 'server closed'].map((m) => msgs.findIndex((x) => x.includes(m)));
  expect(order.every((i) => i >= 0)).toBe(true);
  expect([...order].sort((a, b) => a - b)).toEqual(order);
  expect(lines.filter((l) => l.msg === 'counted').map((l) => l.kind)).toEqual(['unhandled_rejection', 'uncaught_exception']);
}, 30_000);

it('a close that never finishes is cut off at the drain timeout, still with a non-zero exit', async () => {
  const { code, lines, ms } = await run({ CLOSE: 'hang', DRAIN_TIMEOUT_MS: '500' });
  const msgs = messages(lines);
  console.log(`exit code ${code} after ${ms.toFixed(0)} ms; log: ${msgs.join(' | ')}`);
  expect(code).toBe(UNCAUGHT_EXCEPTION_EXIT_CODE);
  expect(msgs.some((m) => m.includes('close started'))).toBe(true);
  expect(msgs.some((m) => m.includes('not closed within 500 ms; exiting'))).toBe(true);
  expect(msgs.some((m) => m.includes('server closed'))).toBe(false);
}, 30_000);
