import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const suiteDir = `${root}node_modules/mediasoup/node/lib/test`;

/**
 * mediasoup's own test suite, shipped in its npm package, against the worker this project builds
 * offline and patches: what upstream asserts of its worker must hold of ours.
 */
it("mediasoup's own Node test suite passes against the project's worker", async () => {
  const suites = readdirSync(suiteDir).filter((f) => /^test-.*\.js$/.test(f));
  const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const child = spawn('bash', ['infra/mediasoup/upstream-tests.sh'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('close', (code) => resolve({ code, text }));
  });
  const suitesLine = /Test Suites:\s+(.*)/.exec(output.text)?.[1] ?? '';
  const testsLine = /Tests:\s+(.*)/.exec(output.text)?.[1] ?? '';
  console.log(`mediasoup upstream suite: suites ${suitesLine}; tests ${testsLine}`);
  if (output.code !== 0) console.log(output.text.slice(-4_000));
  expect(output.code).toBe(0);
  expect(suitesLine).toBe(`${suites.length} passed, ${suites.length} total`);
  const [, passed, total] = /^(\d+) passed, (\d+) total$/.exec(testsLine) ?? [];
  expect(Number(total)).toBeGreaterThan(0);
  expect(passed).toBe(total);
}, 600_000);
