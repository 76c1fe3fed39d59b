/**
 * WorkerPool: a fixed number of mediasoup workers (one per core by default),
 * each with a WebRtcServer, least-loaded selection, replacement of workers
 * that die, and load snapshots.
 *
 * Load accounting is done through mediasoup's observer API, so every router,
 * transport, producer and consumer created on a pooled worker is counted no
 * matter who created it. Routers whose `appData.roomId` is a string are
 * counted as belonging to that room; when a worker dies the pool reports the
 * room ids it hosted.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

import type { types as ms } from 'mediasoup';

import { TypedEmitter } from './typed-emitter.ts';
import { loadMediasoup } from './worker-binary.ts';

export type TransportProtocol = 'udp' | 'tcp';

export interface PortRange {
  min: number;
  max: number;
}

export interface WorkerPoolOptions {
  /** Number of workers (default: os.availableParallelism()). */
  numWorkers?: number;
  /** IP the WebRtcServers (and, by default, pipe transports) listen on (default 127.0.0.1). */
  listenIp?: string;
  /** Address announced in ICE candidates (public IP or hostname), if different from listenIp. */
  announcedAddress?: string;
  /**
   * Port range each WebRtcServer picks its port from. Default: port 0, an
   * ephemeral port chosen by the OS.
   */
  portRange?: PortRange;
  /** Protocols each WebRtcServer listens on (default ['udp', 'tcp']). */
  protocols?: TransportProtocol[];
  logLevel?: ms.WorkerLogLevel;
  logTags?: ms.WorkerLogTag[];
  dtlsCertificateFile?: string;
  dtlsPrivateKeyFile?: string;
  /** Replace a worker that dies (default true). */
  replaceDiedWorkers?: boolean;
  /** Attempts to start a replacement worker before giving up (default 3). */
  replaceAttempts?: number;
  /** Delay between replacement attempts in ms (default 500). */
  replaceRetryDelayMs?: number;
}

export type ResolvedWorkerPoolOptions = WorkerPoolOptions & {
  numWorkers: number;
  listenIp: string;
  protocols: TransportProtocol[];
};

export interface WorkerCounts {
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
}

export interface WorkerLoad extends WorkerCounts {
  index: number;
  pid: number;
  /** Fraction of one CPU core used since the previous sample (0..n). */
  cpu: number;
  /** Interval the cpu fraction covers, in ms. */
  intervalMs: number;
  /** CPU time (user + system) the worker has used since it started, ms (cumulative). */
  cpuTimeMs: number;
  /** Resident set size in bytes: current (/proc) when available, else peak (ru_maxrss). */
  memoryRssBytes?: number;
  memorySource?: 'proc' | 'maxrss';
  /** Rooms with at least one router on this worker. */
  rooms: number;
}

export interface PoolLoadSnapshot {
  /** Date.now() when the snapshot was taken. */
  at: number;
  workers: WorkerLoad[];
  totals: WorkerCounts & { cpu: number; cpuTimeMs: number; memoryRssBytes: number; rooms: number; workers: number };
}

export interface WorkerDiedEvent {
  index: number;
  pid: number;
  error: Error;
  /** Ids of the rooms that had a router on the worker (their routers are gone). */
  roomIds: string[];
}

export interface WorkerReplacedEvent {
  index: number;
  oldPid: number;
  worker: PoolWorker;
}

export type WorkerPoolEvents = {
  workerdied: [WorkerDiedEvent];
  workerreplaced: [WorkerReplacedEvent];
  workerreplacefailed: [{ index: number; error: Error }];
  close: [];
};

export type PoolWorkerEvents = {
  /** The worker process died (not emitted on close()). */
  died: [Error, string[]];
  close: [];
};

/** Room id stored in a router's appData by the room layer. */
export interface RoomRouterAppData extends ms.AppData {
  roomId?: string;
}

/** One pooled worker and its WebRtcServer. */
export class PoolWorker extends TypedEmitter<PoolWorkerEvents> {
  readonly index: number;
  readonly worker: ms.Worker;
  readonly webRtcServer: ms.WebRtcServer;
  readonly startedAt = Date.now();

  readonly #counts: WorkerCounts = { routers: 0, transports: 0, producers: 0, consumers: 0 };
  readonly #routers = new Set<ms.Router>();
  /** roomId -> number of routers of that room on this worker. */
  readonly #rooms = new Map<string, number>();
  /** Rooms whose routers were closed by the worker's death. */
  readonly #lostRooms = new Set<string>();
  #lastCpuSample: { at: number; cpuMs: number };
  #lastCpu = 0;
  #closed = false;

  constructor(index: number, worker: ms.Worker, webRtcServer: ms.WebRtcServer) {
    super();
    this.index = index;
    this.worker = worker;
    this.webRtcServer = webRtcServer;
    this.#lastCpuSample = { at: performance.now(), cpuMs: 0 };

    worker.observer.on('newrouter', (router) => this.#trackRouter(router));
    worker.on('died', (error) => {
      const roomIds = [...new Set([...this.#rooms.keys(), ...this.#lostRooms])].sort();
      this.#rooms.clear();
      this.#lostRooms.clear();
      this.#closed = true;
      this.safeEmit('died', error, roomIds);
      this.safeEmit('close');
    });
  }

  get pid(): number {
    return this.worker.pid;
  }

  get closed(): boolean {
    return this.#closed || this.worker.closed;
  }

  get died(): boolean {
    return this.worker.died;
  }

  /** Live counts from mediasoup observer events. */
  get counts(): Readonly<WorkerCounts> {
    return { ...this.#counts };
  }

  /** Ids of rooms with at least one router on this worker. */
  get roomIds(): string[] {
    return [...this.#rooms.keys()];
  }

  /** CPU fraction measured by the last getLoad(). */
  get lastCpu(): number {
    return this.#lastCpu;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.worker.close();
    this.#rooms.clear();
    this.safeEmit('close');
  }

  async getLoad(): Promise<WorkerLoad> {
    const usage = await this.worker.getResourceUsage();
    const now = performance.now();
    const cpuMs = usage.ru_utime + usage.ru_stime;
    const intervalMs = Math.max(1, now - this.#lastCpuSample.at);
    const cpu = Math.max(0, (cpuMs - this.#lastCpuSample.cpuMs) / intervalMs);
    this.#lastCpuSample = { at: now, cpuMs };
    this.#lastCpu = cpu;

    let memoryRssBytes: number | undefined;
    let memorySource: WorkerLoad['memorySource'];
    const rss = await readProcRss(this.pid);
    if (rss !== undefined) {
      memoryRssBytes = rss;
      memorySource = 'proc';
    } else if (usage.ru_maxrss > 0) {
      memoryRssBytes = usage.ru_maxrss * 1024; // kilobytes on Linux
      memorySource = 'maxrss';
    }

    return {
      index: this.index,
      pid: this.pid,
      cpu,
      intervalMs,
      cpuTimeMs: cpuMs,
      ...(memoryRssBytes !== undefined ? { memoryRssBytes, memorySource } : {}),
      ...this.#counts,
      rooms: this.#rooms.size,
    };
  }

  /** Whether a live router was created on this worker. */
  hasRouter(router: ms.Router): boolean {
    return this.#routers.has(router);
  }

  #trackRouter(router: ms.Router): void {
    this.#counts.routers++;
    this.#routers.add(router);
    const roomId = (router.appData as RoomRouterAppData).roomId;
    if (typeof roomId === 'string') this.#rooms.set(roomId, (this.#rooms.get(roomId) ?? 0) + 1);

    router.observer.on('newtransport', (transport) => this.#trackTransport(transport));
    router.observer.once('close', () => {
      this.#counts.routers--;
      this.#routers.delete(router);
      if (typeof roomId !== 'string') return;
      if (this.worker.died) this.#lostRooms.add(roomId);
      const n = (this.#rooms.get(roomId) ?? 1) - 1;
      if (n > 0) this.#rooms.set(roomId, n);
      else this.#rooms.delete(roomId);
    });
  }

  #trackTransport(transport: ms.Transport): void {
    this.#counts.transports++;
    transport.observer.on('newproducer', (producer) => {
      this.#counts.producers++;
      producer.observer.once('close', () => this.#counts.producers--);
    });
    transport.observer.on('newconsumer', (consumer) => {
      this.#counts.consumers++;
      consumer.observer.once('close', () => this.#counts.consumers--);
    });
    transport.observer.once('close', () => this.#counts.transports--);
  }
}

async function readProcRss(pid: number): Promise<number | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Compares workers by load: streams (consumers + producers), then transports, routers, cpu. */
export function compareWorkerLoad(a: PoolWorker, b: PoolWorker): number {
  const ca = a.counts;
  const cb = b.counts;
  return (
    ca.consumers + ca.producers - (cb.consumers + cb.producers) ||
    ca.transports - cb.transports ||
    ca.routers - cb.routers ||
    a.lastCpu - b.lastCpu ||
    a.index - b.index
  );
}

export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  readonly options: Readonly<ResolvedWorkerPoolOptions>;
  /** Slot index -> live worker (a slot is empty while its worker is being replaced). */
  readonly #slots: (PoolWorker | undefined)[];
  #closed = false;

  private constructor(options: WorkerPoolOptions) {
    super();
    const numWorkers = options.numWorkers ?? availableParallelism();
    if (!Number.isInteger(numWorkers) || numWorkers < 1) {
      throw new TypeError(`numWorkers must be a positive integer (got ${numWorkers})`);
    }
    if (options.portRange && !(options.portRange.min > 0 && options.portRange.max >= options.portRange.min)) {
      throw new TypeError('portRange must satisfy 0 < min <= max');
    }
    this.options = {
      ...options,
      numWorkers,
      listenIp: options.listenIp ?? '127.0.0.1',
      protocols: options.protocols ?? ['udp', 'tcp'],
    };
    this.#slots = new Array<PoolWorker | undefined>(numWorkers).fill(undefined);
  }

  /** Starts the pool's workers; rejects (closing any started worker) if one fails to start. */
  static async create(options: WorkerPoolOptions = {}): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    try {
      await Promise.all(pool.#slots.map(async (_slot, index) => pool.#install(index, await pool.#spawn(index))));
    } catch (error) {
      pool.close();
      throw error;
    }
    return pool;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Live workers, in slot order. */
  get workers(): PoolWorker[] {
    return this.#slots.filter((w): w is PoolWorker => w !== undefined && !w.closed);
  }

  get size(): number {
    return this.#slots.length;
  }

  /** The worker in a slot, if it is live. */
  getWorker(index: number): PoolWorker | undefined {
    const worker = this.#slots[index];
    return worker && !worker.closed ? worker : undefined;
  }

  /** The pooled worker that owns a mediasoup router, if any. */
  workerOf(router: ms.Router): PoolWorker | undefined {
    return this.workers.find((w) => w.hasRouter(router));
  }

  /**
   * The least-loaded live worker (see compareWorkerLoad), skipping `exclude`
   * when another worker is available.
   */
  leastLoaded(options: { exclude?: Iterable<PoolWorker> } = {}): PoolWorker {
    const live = this.workers;
    if (live.length === 0) {
      throw new Error(this.#closed ? 'WorkerPool is closed' : 'WorkerPool has no live worker');
    }
    const excluded = new Set(options.exclude ?? []);
    const candidates = live.filter((w) => !excluded.has(w));
    return [...(candidates.length > 0 ? candidates : live)].sort(compareWorkerLoad)[0] as PoolWorker;
  }

  /** Per-worker load (cpu over the interval since the previous call) and totals. */
  async getLoad(): Promise<PoolLoadSnapshot> {
    const workers = (
      await Promise.all(this.workers.map((w) => w.getLoad().catch(() => undefined)))
    ).filter((l): l is WorkerLoad => l !== undefined);
    const totals = {
      routers: 0,
      transports: 0,
      producers: 0,
      consumers: 0,
      cpu: 0,
      cpuTimeMs: 0,
      memoryRssBytes: 0,
      rooms: 0,
      workers: 0,
    };
    for (const load of workers) {
      totals.routers += load.routers;
      totals.transports += load.transports;
      totals.producers += load.producers;
      totals.consumers += load.consumers;
      totals.cpu += load.cpu;
      totals.cpuTimeMs += load.cpuTimeMs;
      totals.memoryRssBytes += load.memoryRssBytes ?? 0;
      totals.rooms += load.rooms;
      totals.workers++;
    }
    return { at: Date.now(), workers, totals };
  }

  /** Closes every worker (and so every router on them). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const worker of this.#slots) worker?.close();
    this.#slots.fill(undefined);
    this.safeEmit('close');
  }

  async #spawn(index: number): Promise<PoolWorker> {
    const mediasoup = await loadMediasoup();
    const o = this.options;
    const worker = await mediasoup.createWorker({
      logLevel: o.logLevel ?? 'warn',
      ...(o.logTags ? { logTags: o.logTags } : {}),
      ...(o.dtlsCertificateFile ? { dtlsCertificateFile: o.dtlsCertificateFile } : {}),
      ...(o.dtlsPrivateKeyFile ? { dtlsPrivateKeyFile: o.dtlsPrivateKeyFile } : {}),
      appData: { poolIndex: index },
    });
    try {
      const webRtcServer = await worker.createWebRtcServer({
        listenInfos: o.protocols.map((protocol) => ({
          protocol,
          ip: o.listenIp,
          ...(o.announcedAddress ? { announcedAddress: o.announcedAddress } : {}),
          ...(o.portRange ? { portRange: { min: o.portRange.min, max: o.portRange.max } } : { port: 0 }),
        })),
        appData: { poolIndex: index },
      });
      return new PoolWorker(index, worker, webRtcServer);
    } catch (error) {
      worker.close();
      throw error;
    }
  }

  #install(index: number, worker: PoolWorker): void {
    if (this.#closed) {
      worker.close();
      return;
    }
    this.#slots[index] = worker;
    worker.once('died', (error, roomIds) => {
      if (this.#slots[index] === worker) this.#slots[index] = undefined;
      if (this.#closed) return;
      this.safeEmit('workerdied', { index, pid: worker.pid, error, roomIds });
      if (this.options.replaceDiedWorkers ?? true) void this.#replace(index, worker.pid);
    });
  }

  async #replace(index: number, oldPid: number): Promise<void> {
    const attempts = Math.max(1, this.options.replaceAttempts ?? 3);
    let lastError: Error = new Error('not attempted');
    for (let attempt = 1; attempt <= attempts && !this.#closed; attempt++) {
      try {
        const worker = await this.#spawn(index);
        if (this.#closed) {
          worker.close();
          return;
        }
        this.#install(index, worker);
        this.safeEmit('workerreplaced', { index, oldPid, worker });
        return;
      } catch (error) {
        lastError = error instanceof Error ? error : new Error(String(error));
        if (attempt < attempts) await delay(this.options.replaceRetryDelayMs ?? 500);
      }
    }
    if (!this.#closed) this.safeEmit('workerreplacefailed', { index, error: lastError });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
