import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../infra/embedded/launcher.ts';

const run = promisify(execFile);

/** Debian's PostgreSQL binaries (the newest installed version). */
async function pgBin(tool: string): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql')).sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('no PostgreSQL under /usr/lib/postgresql');
  return path.join('/usr/lib/postgresql', versions[0], 'bin', tool);
}

/** initdb and pg_ctl refuse to run as root: as root, they run as the `postgres` user. */
async function asPostgres(tool: string, args: string[]): Promise<string> {
  const bin = await pgBin(tool);
  const { stdout } = process.getuid?.() === 0 ? await run('runuser', ['-u', 'postgres', '--', bin, ...args]) : await run(bin, args);
  return stdout;
}

/**
 * A PostgreSQL cluster of a test's own, in a temporary folder on a spare port (trust auth, socket in
 * the folder), so a test can stop and restart it: the machine's shared server is never touched.
 */
export class PrivatePostgres {
  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {}

  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-pg-'));
    if (process.getuid?.() === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      await chown(dir, Number(stdout), Number(gid));
    }
    await asPostgres('initdb', ['-D', path.join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
    const cluster = new PrivatePostgres(dir, await freePort());
    await cluster.resume();
    return cluster;
  }

  /** Starts the stopped server (same data, same port); resolves once it accepts connections. */
  async resume(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
    await asPostgres('pg_ctl', ['-D', path.join(this.dir, 'data'), '-l', path.join(this.dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
  }

  /** `immediate`: as a crash (no checkpoint, open connections cut); `fast`: a clean shutdown. */
  async stop(mode: 'immediate' | 'fast' = 'immediate'): Promise<void> {
    await asPostgres('pg_ctl', ['-D', path.join(this.dir, 'data'), '-m', mode, '-w', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
