import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, stopChild } from '../../infra/embedded/launcher.ts';
import type { ServiceProcess } from './service-process.ts';

/**
 * A Redis group behind Sentinel started on spare ports (tests and the failover benchmark): one
 * primary, one replica and three sentinels with down-after-milliseconds 1000. Never the machine's
 * shared Redis: these servers are killed and restarted at will.
 */
export const SENTINEL_GROUP = 'geo-sfu-test';

export interface SentinelGroup {
  sentinelPorts: number[];
  /** The two data nodes' ports (which is primary changes with each failover). */
  dataNodePorts: number[];
  /** `host:port,...` for GEO_SFU_REDIS_SENTINELS. */
  sentinels: string;
  /** The port the sentinels name as primary now. */
  primaryPort(): Promise<number>;
  /** The data node's process on `port` (to SIGKILL or SIGSTOP it). */
  dataNode(port: number): ChildProcess;
  /** The sentinel's process on `port` (to SIGSTOP it). */
  sentinel(port: number): ChildProcess;
  /** Starts a data node again on `port` (killed earlier) as a replica of the current primary; resolves once its link is up. */
  restartAsReplica(port: number): Promise<void>;
  /** Resolves once every sentinel names `port` as primary and knows the other data node as its replica. */
  settled(primaryPort: number): Promise<void>;
  close(): Promise<void>;
}

export async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One command on a fresh connection (servers come and go here). */
export async function ask(port: number, ...command: [string, ...Array<string | number>]): Promise<unknown> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined); // the failure reaches the caller through the command
  try {
    await redis.connect();
    return await redis.call(...command);
  } finally {
    redis.disconnect();
  }
}

/**
 * Whether the server answering on `port` is `child` (INFO's process_id): false once `child` has
 * exited, as it does when another process took the port between freePort() and its bind (another
 * test's Redis on this shared machine would otherwise answer in its place, and be "killed" in vain).
 */
export async function serves(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (child.exitCode === null && child.signalCode === null) {
    const info = await ask(port, 'INFO', 'server').catch(() => null);
    if (info !== null && String(info).includes(`process_id:${child.pid}\r\n`)) return true;
    if (Date.now() > deadline) throw new Error(`redis-server pid ${child.pid} not serving :${port} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function linkUp(port: number): Promise<void> {
  await until(`replica :${port} in sync`, async () => (String(await ask(port, 'INFO', 'replication')).includes('master_link_status:up') ? true : null));
}

export async function startSentinelGroup(): Promise<SentinelGroup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-sentinel-'));
  const children: ChildProcess[] = [];
  const dataNodes = new Map<number, ChildProcess>();
  const sentinelProcesses = new Map<number, ChildProcess>();
  const redisServer = (args: string[]): ChildProcess => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    child.once('exit', () => process.off('exit', kill));
    children.push(child);
    return child;
  };
  /** A server on a spare port (`fixedPort`: that one), its own: a port taken meanwhile is given up for another. */
  const startOwned = async (argsFor: (port: number) => Promise<string[]>, fixedPort?: number): Promise<{ port: number; child: ChildProcess }> => {
    for (let attempt = 1; ; attempt++) {
      const port = fixedPort ?? (await freePort());
      const child = redisServer(await argsFor(port));
      if (await serves(port, child)) return { port, child };
      if (fixedPort !== undefined || attempt === 5) throw new Error(`redis-server could not take :${port} (taken by another process)`);
    }
  };
  const startDataNode = async (replicaOf?: number, fixedPort?: number): Promise<number> => {
    const { port, child } = await startOwned(async (p) => {
      const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
      return replicaOf === undefined ? args : [...args, '--replicaof', '127.0.0.1', String(replicaOf)];
    }, fixedPort);
    dataNodes.set(port, child);
    return port;
  };
  const close = async () => {
    await Promise.all(
      children.map((c) => {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGCONT'); // a test may have paused it
        return stopChild(c, 2_000);
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const firstPrimary = await startDataNode();
    const replicaPort = await startDataNode(firstPrimary);
    await linkUp(replicaPort);
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const conf = path.join(dir, `sentinel-${i}.conf`);
      const { port, child } = await startOwned(async (port) => {
        await writeFile(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${SENTINEL_GROUP} 127.0.0.1 ${firstPrimary} 2`,
            `sentinel down-after-milliseconds ${SENTINEL_GROUP} 1000`,
            `sentinel failover-timeout ${SENTINEL_GROUP} 5000`,
            `sentinel parallel-syncs ${SENTINEL_GROUP} 1`,
            '',
          ].join('\n'),
        );
        return [conf, '--sentinel'];
      });
      sentinelProcesses.set(port, child);
      sentinelPorts.push(port);
    }
    const primaryPort = async () => Number(((await ask(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_GROUP)) as [string, string])[1]);
    // Every sentinel names the primary, knows its replica (up) and the two other sentinels: else
    // there is no quorum to fail over, or nothing to promote.
    const settled = async (primary: number) => {
      for (const port of sentinelPorts) {
        await until(`sentinel ${port} settled on :${primary}`, async () => {
          const [, master] = (await ask(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_GROUP)) as [string, string];
          const replicas = (await ask(port, 'SENTINEL', 'REPLICAS', SENTINEL_GROUP)) as string[][];
          const sentinels = (await ask(port, 'SENTINEL', 'SENTINELS', SENTINEL_GROUP)) as unknown[];
          const replicaUp = replicas.some((fields) => {
            const flags = fields[fields.indexOf('flags') + 1] ?? '';
            return !flags.includes('down') && !flags.includes('disconnected');
          });
          return Number(master) === primary && replicaUp && sentinels.length === 2 ? true : null;
        }, 30_000);
      }
    };
    await settled(firstPrimary);
    return {
      sentinelPorts,
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
      dataNodePorts: [firstPrimary, replicaPort],
      primaryPort,
      dataNode: (port) => dataNodes.get(port)!,
      sentinel: (port) => sentinelProcesses.get(port)!,
      restartAsReplica: async (port) => {
        await startDataNode(await primaryPort(), port);
        await linkUp(port);
      },
      settled,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** An /allocate call of a failover run: when it was answered, by which router (0 or 1), and how. */
export interface FailoverCall {
  atMs: number;
  router: number;
  status: number | 'connection error';
  code: string;
  retryAfter: boolean;
}

/**
 * The calls answered after a kill of the primary: how long until both routers allocate again (per
 * router, the kill to its first success after its last refusal; the later of the two), and the
 * refusals, counted by status and code.
 */
export function failoverRecovery(calls: FailoverCall[], killedAt: number): { after: FailoverCall[]; recoveryMs: number; refused: FailoverCall[]; refusals: Record<string, number> } {
  const after = calls.filter((c) => c.atMs > killedAt);
  const recoveryMs = Math.max(
    ...[0, 1].map((router) => {
      const mine = after.filter((c) => c.router === router);
      const lastRefusal = mine.findLastIndex((c) => c.status !== 200);
      return lastRefusal < 0 ? 0 : mine[lastRefusal + 1]!.atMs - killedAt;
    }),
  );
  const refused = after.filter((c) => c.status !== 200);
  const refusals: Record<string, number> = {};
  for (const c of refused) {
    const key = `${c.status} ${c.code}`.trim();
    refusals[key] = (refusals[key] ?? 0) + 1;
  }
  return { after, recoveryMs, refused, refusals };
}

/** The routers' reconcile actions, summed, from their /metrics. */
export async function reconcileActions(routers: ServiceProcess[]): Promise<Record<string, number>> {
  const actions: Record<string, number> = {};
  for (const router of routers) {
    const text = await fetch(`${router.url}/metrics`).then((r) => r.text());
    for (const [, action, value] of text.matchAll(/^geo_sfu_reconcile_actions_total\{action="(\w+)"\} (\d+)/gm)) actions[action!] = (actions[action!] ?? 0) + Number(value);
  }
  return actions;
}
