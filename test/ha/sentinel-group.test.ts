import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { freePort, stopChild } from '../../infra/embedded/launcher.ts';
import { serves } from '../utils/sentinel-group.ts';

/**
 * The Sentinel group's servers take spare ports on a shared machine: one that lost its port to
 * another process between freePort() and its bind must be told apart from that process, whose
 * Redis answers on the port just the same (else a test "kills the primary" and nothing happens).
 * The machine's shared Redis on 6379 plays the other process here.
 */
it('a redis-server serves its port only if the Redis answering there is its own process', async () => {
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const loser = spawn('redis-server', ['--port', '6379', ...args], { stdio: 'ignore' });
  expect(await serves(6379, loser)).toBe(false);
  const port = await freePort();
  const own = spawn('redis-server', ['--port', String(port), ...args], { stdio: 'ignore' });
  try {
    expect(await serves(port, own)).toBe(true);
  } finally {
    await stopChild(own, 2_000);
  }
});
