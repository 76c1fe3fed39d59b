import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { NodeRegistry } from '../../router/registry/node-registry.ts';
import { RedisNodeRegistry } from '../../router/state/redis-node-registry.ts';
import { RedisRoomStore } from '../../router/state/redis-room-store.ts';
import type { ParticipantRecord } from '../../router/state/types.ts';
import { configWith } from '../../shared/config/index.ts';
import type { AllocateSfuResponse } from '../../shared/schemas/index.ts';
import { stopChild } from '../../infra/embedded/launcher.ts';
import { spawnRouter, type ServiceProcess } from '../../test/utils/service-process.ts';
import type { LoadResult } from '../load.ts';
import { startTsWorker } from '../ts-worker-host.ts';
import type { AllocateLatencyJob } from './allocate-worker.ts';
import { clientProfiles, regionRtt, SCALE_REGIONS, type ScaleRegion } from './catalog.ts';
import { ASSUMPTIONS, extrapolate, type Measured } from './model.ts';
import { ScaleNodes } from './nodes.ts';
import { seededRandom } from '../placement/prng.ts';
import { placementCosts } from './placement-cost.ts';
import { type FillRoom, startPrivateRedis, writeRooms, type PrivateRedis } from './redis.ts';
import { scaleMarkdown, scalePlot } from './report.ts';
import type { ScaleResult, SizeResult } from './types.ts';

/**
 * Issue #21's control plane at scale: every per-node and per-room cost of the router and of Redis,
 * measured at several numbers of nodes, for a fit and an extrapolation to 100k / 1M / 10M
 * participants (bench/scale/model.ts). Two router processes run one after the other on a Redis of
 * the benchmark's own (bench/scale/redis.ts):
 * - a quiet router (its background cadences slowed to minutes, rebalancing off), where each kind of
 *   call runs alone so its CPU, the router's and Redis's, is its own: heartbeats at each size,
 *   allocations into small and large rooms, join and leave reports; and the registry refresh and a
 *   full room scan (what the rehomer does after a node dies and the reconciler every 30 s) run
 *   in this process with the router's own classes;
 * - a steady router with the default cadences, on the rooms and participants the benchmark wrote
 *   (bench/scale/redis.ts writeRooms), with all nodes heartbeating every second, one dying and one
 *   registering every few seconds: its CPU and Redis's, /allocate p50/p99 into rooms of 10 and of
 *   100 across the 10 regions, and at the largest size 1 % of the participants joining and 1 %
 *   leaving per minute (the rebalancer's work, from its decision-time metric).
 */
export interface ScaleOptions {
  quick: boolean;
  /** Node counts measured; default 100, 300, 1,000 (100, 300 with quick). */
  sizes?: number[];
  /** How many of the catalog's regions (default all 10). */
  regions?: number;
  rooms?: number;
  participants?: number;
  /** Length of each measured window, ms. */
  windowMs?: number;
  /** Calls per isolated phase (allocations, join reports, leave reports). */
  isolatedCalls?: number;
  /** Where to write scale.md and scale-cpu.svg; default bench/results/. Null: write nothing. */
  outDir?: string | null;
}


const QUIET_PREFIX = 'scale-quiet:';
const STEADY_PREFIX = 'scale:';
const CLUSTER_SECRET = 'scale-bench-cluster-secret-0123456789abcdef';

/**
 * A process's CPU time, seconds: the time its threads have run (/proc/<pid>/task/<tid>/schedstat,
 * nanoseconds; /proc/<pid>/stat's utime + stime count in 10 ms ticks, too coarse for a phase of
 * short calls). A thread that has exited no longer counts: Node's threads live as long as the process.
 */
function processCpuSeconds(pid: number): number {
  return schedstat(pid).runS;
}

/** Its threads' time on a CPU and time runnable but waiting for one (a busy machine), seconds. */
function schedstat(pid: number): { runS: number; waitS: number } {
  let run = 0;
  let wait = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [onCpu, waiting] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      run += Number(onCpu);
      wait += Number(waiting);
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return { runS: run / 1e9, waitS: wait / 1e9 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The `n`-th node's id and region: regions in turn, so every size spreads evenly over them. */
function nodeSpec(n: number, regions: readonly ScaleRegion[]): { nodeId: string; region: string } {
  const region = regions[n % regions.length]!.id;
  return { nodeId: `${region}-${Math.floor(n / regions.length)}`, region };
}

/** CPU of the router and of Redis over `run`, ms. */
async function measure<T>(router: ServiceProcess, redis: PrivateRedis, run: () => Promise<T>): Promise<{ result: T; routerMs: number; redisMs: number; seconds: number }> {
  const pid = router.child.pid!;
  const r0 = processCpuSeconds(pid);
  const d0 = await redis.cpuSeconds();
  const t0 = performance.now();
  const result = await run();
  const seconds = (performance.now() - t0) / 1000;
  const routerMs = (processCpuSeconds(pid) - r0) * 1000;
  const redisMs = ((await redis.cpuSeconds()) - d0) * 1000;
  return { result, routerMs, redisMs, seconds };
}

/**
 * CPU per call of `count` calls of `call(i)` (8 at a time), in `chunks` measured one after the
 * other: the median chunk's, so background work that lands in one chunk (the quiet router still
 * refreshes its registry once a minute, GEO_SFU_REGISTRY_REFRESH_MS's maximum) does not count.
 */
async function perCallCpu(router: ServiceProcess, redis: PrivateRedis, count: number, chunks: number, call: (i: number) => Promise<void>): Promise<{ routerMs: number; redisMs: number }> {
  const per: Array<{ routerMs: number; redisMs: number }> = [];
  const size = Math.ceil(count / chunks);
  for (let from = 0; from < count; from += size) {
    const n = Math.min(size, count - from);
    const m = await measure(router, redis, () => inParallel(n, 8, (i) => call(from + i)));
    per.push({ routerMs: m.routerMs / n, redisMs: m.redisMs / n });
  }
  const median = (values: number[]) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
  return { routerMs: median(per.map((p) => p.routerMs)), redisMs: median(per.map((p) => p.redisMs)) };
}

/** `count` calls of `call(i)`, `concurrency` at a time. */
async function inParallel(count: number, concurrency: number, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await call(next++);
  }));
}

function routerEnv(redis: PrivateRedis, prefix: string, regions: readonly ScaleRegion[], journalDir: string, extra: Record<string, string>): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    GEO_SFU_REDIS_PREFIX: prefix,
    GEO_SFU_REGIONS: JSON.stringify(regions),
    GEO_SFU_CLUSTER_SECRET: CLUSTER_SECRET,
    GEO_SFU_TOKEN_SECRETS: `k1:${'t'.repeat(40)}`,
    GEO_SFU_API_KEY: 'scale-bench-api-key-0123456789abcdef',
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    // The benchmark sends join and leave reports for many participants from a few node ids.
    GEO_SFU_NODE_CALLS_PER_MINUTE: '0',
    GEO_SFU_MAX_ROOM_PARTICIPANTS: '0',
    GEO_SFU_MAX_PARTICIPANTS_PER_NODE: '100000',
    // A registry read of a thousand nodes' heartbeats takes longer than the 500 ms default.
    GEO_SFU_REDIS_TIMEOUT_MS: '10000',
    GEO_SFU_JOURNAL_DIR: journalDir,
    ...extra,
  };
}

/** Every background cadence of the router slowed to minutes: the calls a phase sends are then the only work. */
const QUIET_CADENCES: Record<string, string> = {
  GEO_SFU_HEARTBEAT_INTERVAL_MS: '60000',
  GEO_SFU_REGISTRY_REFRESH_MS: '60000',
  GEO_SFU_SUSPECT_AFTER_MS: '120000',
  GEO_SFU_DEAD_AFTER_MS: '300000',
  GEO_SFU_REHOME_INTERVAL_MS: '60000',
  GEO_SFU_RECONCILE_INTERVAL_MS: '3600000',
  GEO_SFU_REDIS_IDENTITY_CHECK_MS: '60000',
  GEO_SFU_ALLOCATION_TTL_MS: '600000',
  GEO_SFU_EXPIRY_SWEEP_INTERVAL_MS: '60000',
  GEO_SFU_SCALING_INTERVAL_MS: '60000',
  GEO_SFU_ALERT_INTERVAL_MS: '60000',
  GEO_SFU_LEADER_LEASE_MS: '60000',
  GEO_SFU_JOURNAL_REPLAY_INTERVAL_MS: '60000',
  GEO_SFU_P2P_CHECK_INTERVAL_MS: '60000',
  GEO_SFU_P2P_LEASE_MS: '180000',
  GEO_SFU_REBALANCE: 'false',
};

/** A metric's value (summed over its label sets) from the router's /metrics. */
async function metric(router: ServiceProcess, name: string): Promise<number> {
  const text = await fetch(`${router.url}/metrics`).then((r) => r.text());
  let sum = 0;
  for (const [, value] of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)$`, 'gm'))) sum += Number(value);
  return sum;
}

export async function benchScale(opts: ScaleOptions): Promise<ScaleResult> {
  const sizes = opts.sizes ?? (opts.quick ? [100, 300] : [100, 300, 1_000]);
  const regions = SCALE_REGIONS.slice(0, opts.regions ?? SCALE_REGIONS.length);
  const roomCount = opts.rooms ?? (opts.quick ? 10_000 : 100_000);
  const participantCount = opts.participants ?? (opts.quick ? 100_000 : 1_000_000);
  const windowMs = opts.windowMs ?? (opts.quick ? 2_000 : 10_000);
  const isolatedCalls = opts.isolatedCalls ?? (opts.quick ? 200 : 2_000);
  /** The steady router's nodes heartbeat this long before its window (and its first allocations, unmeasured, last as long). */
  const settleMs = opts.quick ? 500 : 2_000;
  const notes: string[] = [];
  const rtt = regionRtt(regions);
  const profiles = clientProfiles(regions);
  const redis = await startPrivateRedis();
  const journalDir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-scale-journal-'));
  const routers: ServiceProcess[] = [];
  const closers: Array<() => Promise<void>> = [];
  const startedAt = performance.now();
  const log = (line: string) => process.stdout.write(`  scale (${((performance.now() - startedAt) / 1000).toFixed(0)} s): ${line}\n`);
  try {
    // ---- Quiet router: each kind of call alone.
    const quiet = await spawnRouter(routerEnv(redis, QUIET_PREFIX, regions, journalDir, QUIET_CADENCES));
    routers.push(quiet);
    const quietNodes = new ScaleNodes(quiet.url, CLUSTER_SECRET, rtt);
    closers.push(() => quietNodes.close());
    await quietNodes.start();
    const config = configWith({ regions: [...regions], redisTimeoutMs: 10_000 });
    const quietStore = await RedisNodeRegistry.open({ url: redis.url, keyPrefix: QUIET_PREFIX, timeoutMs: 10_000 });
    const quietRooms = await RedisRoomStore.open({ url: redis.url, keyPrefix: QUIET_PREFIX, timeoutMs: 10_000, roomIdleTtlMs: 300_000 });
    closers.push(() => quietStore.close(), () => quietRooms.close());
    const quietRegistry = new NodeRegistry({ config, store: quietStore, rooms: quietRooms, now: Date.now });
    const quietSizes: Array<Omit<SizeResult, 'steady' | 'allocate'>> = [];
    const pool = new Pool(quiet.url, { connections: 16, pipelining: 1 });
    closers.push(() => pool.close());
    const allocate = async (origin: Pool, roomId: string, participantId: string, profile: Record<string, number>): Promise<AllocateSfuResponse> => {
      const res = await origin.request({ method: 'POST', path: '/allocate', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ roomId, participantId, latencies: profile }) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`/allocate ${roomId}/${participantId}: ${res.statusCode} ${text.slice(0, 200)}`);
      return JSON.parse(text) as AllocateSfuResponse;
    };
    let perCall: ScaleResult['perCall'] | null = null;
    for (const size of sizes) {
      const from = quietNodes.size;
      await inParallel(size - from, 32, (i) => quietNodes.register({ ...nodeSpec(from + i, regions), participants: ASSUMPTIONS.participantsPerNode }));
      // Each node's first heartbeat learns its peers (all registered now); the measured ones carry their RTTs.
      const ids = quietNodes.beatingIds();
      await inParallel(ids.length, 8, async (i) => void (await quietNodes.heartbeatOnce(ids[i]!)));
      const sample = await quietNodes.heartbeatOnce(ids[0]!);
      const peerRttEntries = quietNodes.peerRttEntries(ids[0]!);
      const beats = Math.max(size, opts.quick ? 100 : 500);
      const hb = await perCallCpu(quiet, redis, beats, 5, async (i) => {
        const { status } = await quietNodes.heartbeatOnce(ids[i % ids.length]!);
        if (status !== 200) throw new Error(`heartbeat answered ${status}`);
      });
      // Registry refresh with the router's own classes, in this process (nothing else runs here now).
      // Between two reads of a router refreshing every GEO_SFU_REGISTRY_REFRESH_MS, the nodes that
      // beat meanwhile (each every GEO_SFU_HEARTBEAT_INTERVAL_MS) changed, and a read fetches those
      // (every 16th read, all: RedisNodeRegistry.list): 16 reads after a first, their mean.
      await quietRegistry.refresh();
      const changedPerRead = Math.ceil((size * config.registryRefreshMs) / config.heartbeatIntervalMs);
      let beating = 0;
      const refreshes: Array<{ cpuMs: number; wallMs: number; redisMs: number }> = [];
      for (let i = 0; i < 16; i++) {
        await inParallel(changedPerRead, 32, async () => {
          const { status } = await quietNodes.heartbeatOnce(ids[beating++ % ids.length]!);
          if (status !== 200) throw new Error(`heartbeat answered ${status}`);
        });
        const c0 = process.cpuUsage();
        const m = await measure(quiet, redis, () => quietRegistry.refresh());
        const cpu = process.cpuUsage(c0);
        refreshes.push({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs: m.seconds * 1000, redisMs: m.redisMs });
      }
      const mean = (pick: (r: (typeof refreshes)[number]) => number) => refreshes.reduce((sum, r) => sum + pick(r), 0) / refreshes.length;
      const nodesBytes = Number(await redis.client.call('MEMORY', 'USAGE', `${QUIET_PREFIX}nodes`, 'SAMPLES', '0'));
      const beatsBytes = Number(await redis.client.call('MEMORY', 'USAGE', `${QUIET_PREFIX}node-heartbeats`, 'SAMPLES', '0'));
      quietSizes.push({
        nodes: size,
        peerRttEntries,
        heartbeatBytes: quietNodes.heartbeatBodyBytes(ids[0]!),
        answerBytes: Buffer.byteLength(sample.text),
        routerMsPerHeartbeat: hb.routerMs,
        redisMsPerHeartbeat: hb.redisMs,
        refreshCpuMs: mean((r) => r.cpuMs),
        refreshWallMs: mean((r) => r.wallMs),
        refreshRedisMs: mean((r) => r.redisMs),
        redisBytesPerNode: (nodesBytes + beatsBytes) / size,
      });
      const q = quietSizes.at(-1)!;
      log(`quiet router, ${size} nodes: heartbeat ${q.heartbeatBytes} B (${peerRttEntries} peerRtt entries), answer ${q.answerBytes} B; router ${q.routerMsPerHeartbeat.toFixed(3)} ms, Redis ${q.redisMsPerHeartbeat.toFixed(3)} ms CPU per heartbeat; registry refresh ${q.refreshWallMs.toFixed(1)} ms (${q.refreshCpuMs.toFixed(1)} ms CPU here, ${q.refreshRedisMs.toFixed(1)} ms Redis)`);
      // The calls, at the smallest size (the registry's minute refresh is cheapest there).
      perCall ??= await callCosts();
    }

    /** Allocations into small rooms (each new room filled to 10), then into large ones (filled to 100), then each one's join report, then its leave report: each phase alone. */
    async function callCosts(): Promise<ScaleResult['perCall']> {
      const allocated: AllocateSfuResponse[] = [];
      // Rooms of one region's clients and a neighbour's, as most rooms are.
      const roomProfile = (room: number, i: number) => profiles[(room + (i % 2)) % profiles.length]!;
      const report = (a: AllocateSfuResponse, event: 'joined' | 'left') =>
        quietNodes.participantEvent({ nodeId: a.node.id, roomId: a.roomId, participantId: a.participantId, allocationId: a.allocationId, event, ...(event === 'left' ? { reason: 'left' as const } : {}) });
      // Warm-up, not measured: the router's first calls of each kind compile its paths (JIT).
      await inParallel(opts.quick ? 100 : 200, 8, async (i) => {
        const a = await allocate(pool, `warm-${Math.floor(i / 20)}`, `p${i}`, roomProfile(i, i));
        await report(a, 'joined');
        await report(a, 'left');
      });
      const small = await perCallCpu(quiet, redis, isolatedCalls, 5, async (i) => {
        const room = Math.floor(i / 10);
        allocated.push(await allocate(pool, `iso-small-${room}`, `p${i}`, roomProfile(room, i)));
      });
      const large = await perCallCpu(quiet, redis, isolatedCalls, 5, async (i) => {
        const room = Math.floor(i / 100);
        allocated.push(await allocate(pool, `iso-large-${room}`, `p${i}`, roomProfile(room, i)));
      });
      const joinReport = await perCallCpu(quiet, redis, allocated.length, 5, async (i) => {
        const { status, text } = await report(allocated[i]!, 'joined');
        if (status !== 200) throw new Error(`joined report answered ${status} ${text.slice(0, 200)}`);
      });
      const leaveReport = await perCallCpu(quiet, redis, allocated.length, 5, async (i) => {
        const { status, text } = await report(allocated[i]!, 'left');
        if (status !== 204) throw new Error(`left report answered ${status} ${text.slice(0, 200)}`);
      });
      const costs = {
        allocateSmallRoom: { ...small, meanRoomSize: 5.5 },
        allocateLargeRoom: { ...large, meanRoomSize: Math.min(100, isolatedCalls) / 2 + 0.5 },
        joinReport,
        leaveReport,
      };
      log(`quiet router, ${sizes[0]} nodes, CPU per call (router / Redis, ms; median of 5 chunks): allocate into rooms of 1–10 ${small.routerMs.toFixed(3)} / ${small.redisMs.toFixed(3)}, into rooms of 1–100 ${large.routerMs.toFixed(3)} / ${large.redisMs.toFixed(3)}, join report ${joinReport.routerMs.toFixed(3)} / ${joinReport.redisMs.toFixed(3)}, leave report ${leaveReport.routerMs.toFixed(3)} / ${leaveReport.redisMs.toFixed(3)}`);
      return costs;
    }
    const peerRttEntriesThatFit = quietNodes.peerRttCapacity(quietNodes.beatingIds()[0]!);
    // What the router answers a heartbeat with every peer's RTT, as an agent sends it at the largest size.
    const untrimmed = await quietNodes.heartbeatWithAllPeers(quietNodes.beatingIds()[0]!);
    log(`a heartbeat with all ${untrimmed.entries} peers' RTTs (${untrimmed.bytes} B, no quality): answered ${untrimmed.status}`);
    await quietNodes.close();
    await stopChild(quiet.child, 1_000);
    routers.splice(routers.indexOf(quiet), 1);

    // ---- The rooms and participants, written straight into Redis with the store's layout.
    const rand = seededRandom(21);
    const largeRooms = Math.max(1, Math.floor(roomCount / 100));
    const inLarge = Math.min(participantCount, largeRooms * 100);
    const perSmallRoom = (participantCount - inLarge) / Math.max(1, roomCount - largeRooms);
    // Filled participants sit on the first half of each region's nodes at the smallest size: those never die.
    const coreNodes = Array.from({ length: Math.max(regions.length, Math.floor(sizes[0]! / 2)) }, (_, n) => nodeSpec(n, regions));
    const coreOf = (region: number, k: number) => coreNodes[(region + regions.length * (k % Math.floor(coreNodes.length / regions.length))) % coreNodes.length]!;
    const memory0 = await redis.usedMemory();
    const fillStarted = performance.now();
    const filled: Array<{ roomId: string; participants: ParticipantRecord[] }> = [];
    let version = 1;
    let written = 0;
    const nowMs = Date.now();
    for (let r = 0; r < roomCount; r += 1_000) {
      const batch: FillRoom[] = [];
      for (let room = r; room < Math.min(roomCount, r + 1_000); room++) {
        const isLarge = room < largeRooms;
        const target = isLarge ? 100 : Math.round((room - largeRooms + 1) * perSmallRoom) - Math.round((room - largeRooms) * perSmallRoom);
        const home = Math.floor(rand() * regions.length);
        const neighbour = (home + 1 + Math.floor(rand() * 2)) % regions.length;
        const participants: ParticipantRecord[] = Array.from({ length: target }, (_, i) => {
          const region = i % 3 === 2 ? neighbour : home;
          const node = coreOf(region, room);
          return {
            status: 'joined' as const,
            participantId: `p${i}`,
            allocationId: randomUUID(),
            region: node.region,
            nodeId: node.nodeId,
            rttMs: profiles[region]!,
            allocatedAtMs: nowMs,
            expiresAtMs: nowMs + 30_000,
          };
        });
        written += participants.length;
        batch.push({ roomId: `room-${room}`, homeRegion: participants[0]?.region ?? regions[home]!.id, homeNodeId: participants[0]?.nodeId ?? coreOf(home, room).nodeId, participants });
        filled.push({ roomId: `room-${room}`, participants });
      }
      version = await writeRooms(redis.client, STEADY_PREFIX, batch, version);
    }
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    const memory1 = await redis.usedMemory();
    // Per participant: the participants hashes of sampled rooms of the usual size; per room, the rest of the growth.
    let sampledBytes = 0;
    let sampledParticipants = 0;
    for (let room = largeRooms; room < Math.min(roomCount, largeRooms + 200); room++) {
      sampledBytes += Number(await redis.client.call('MEMORY', 'USAGE', `${STEADY_PREFIX}room:room-${room}:participants`, 'SAMPLES', '0'));
      sampledParticipants += filled[room]!.participants.length;
    }
    const redisBytesPerParticipant = sampledBytes / Math.max(1, sampledParticipants);
    const redisBytesPerRoom = (memory1 - memory0 - redisBytesPerParticipant * written) / roomCount;
    const fillHow = `pipelined HSET/SADD/HINCRBY with RedisRoomStore's key layout and record encoding (bench/scale/redis.ts writeRooms), ${largeRooms} rooms of 100 and the rest of ~${perSmallRoom.toFixed(1)}, all joined`;
    log(`wrote ${roomCount} rooms, ${written} participants in ${fillSeconds.toFixed(1)} s (${fillHow}); Redis used_memory +${((memory1 - memory0) / 2 ** 20).toFixed(0)} MiB: ${redisBytesPerParticipant.toFixed(0)} B per participant, ${redisBytesPerRoom.toFixed(0)} B per room besides`);

    // A full room scan (the rehomer's after a node died, the reconciler's every 30 s), with the router's store.
    const steadyRooms = await RedisRoomStore.open({ url: redis.url, keyPrefix: STEADY_PREFIX, timeoutMs: 10_000, roomIdleTtlMs: 300_000 });
    const steadyStore = await RedisNodeRegistry.open({ url: redis.url, keyPrefix: STEADY_PREFIX, timeoutMs: 10_000 });
    closers.push(() => steadyRooms.close(), () => steadyStore.close());
    const scanCpu0 = process.cpuUsage();
    const scanRedis0 = await redis.cpuSeconds();
    const listStarted = performance.now();
    const roomIds = await steadyRooms.listRoomIds();
    const listMs = performance.now() - listStarted;
    const scanned = Math.min(roomIds.length, opts.quick ? 1_000 : 5_000);
    for (const roomId of roomIds.slice(0, scanned)) await steadyRooms.getRoom(roomId);
    const scanWallMs = performance.now() - listStarted;
    const scanCpu = process.cpuUsage(scanCpu0);
    const scanRedisMs = ((await redis.cpuSeconds()) - scanRedis0) * 1000;
    // The listing is per room too: charged pro rata to the rooms read.
    const listShare = scanned / roomIds.length;
    const roomScan = {
      rooms: roomIds.length,
      listMs,
      cpuMsPerRoom: (scanCpu.user + scanCpu.system) / 1000 / scanned,
      wallMsPerRoom: (scanWallMs - listMs * (1 - listShare)) / scanned,
      redisMsPerRoom: scanRedisMs / scanned,
    };
    log(`room scan: listRoomIds of ${roomIds.length} rooms ${listMs.toFixed(0)} ms, then getRoom × ${scanned}: ${roomScan.wallMsPerRoom.toFixed(3)} ms per room (${roomScan.cpuMsPerRoom.toFixed(3)} ms CPU here, ${roomScan.redisMsPerRoom.toFixed(3)} ms Redis)`);

    // The placement decision alone, by number of regions and room size.
    const placement = placementCosts(regions, [...new Set([Math.min(4, regions.length), regions.length])], [10, 100], sizes.at(-1)!, opts.quick ? 300 : 2_000);
    log(`placement decision (min-delay, ${sizes.at(-1)} nodes): ${placement.map((c) => `${c.regions} regions, room of ${c.roomSize}: ${c.medianUs.toFixed(0)} µs (p99 ${c.p99Us.toFixed(0)})`).join('; ')}`);

    // ---- Steady router: default cadences, all nodes heartbeating.
    const steady = await spawnRouter(routerEnv(redis, STEADY_PREFIX, regions, journalDir, { GEO_SFU_RECONCILE_INTERVAL_MS: '3600000' }));
    routers.push(steady);
    notes.push('The steady router runs the default cadences except the reconciler (GEO_SFU_RECONCILE_INTERVAL_MS one hour instead of 30 s): its pass reads every room, costed apart as the room scan; the model adds it back at the default 30 s.');
    const nodes = new ScaleNodes(steady.url, CLUSTER_SECRET, rtt);
    closers.push(() => nodes.close());
    await nodes.start();
    const steadyRegistry = new NodeRegistry({ config, store: steadyStore, rooms: steadyRooms, now: Date.now });
    const steadyPool = new Pool(steady.url, { connections: 16, pipelining: 1 });
    closers.push(() => steadyPool.close());
    const results: SizeResult[] = [];
    let nextNode = 0;
    let died = 0;
    const core = new Set(coreNodes.map((c) => c.nodeId));
    let churnResult: ScaleResult['churn'] | null = null;
    for (const [s, size] of sizes.entries()) {
      nodes.stopBeating();
      const from = nextNode;
      const added = size - nodes.beatingIds().length;
      nextNode += added;
      await inParallel(added, 32, (i) => nodes.register({ ...nodeSpec(from + i, regions), participants: ASSUMPTIONS.participantsPerNode }));
      nodes.beat(1_000);
      await sleep(settleMs);
      // The router's first allocations compile its paths (JIT): not measured.
      if (s === 0) await runWorker({ origin: steady.url, ratePerSecond: 20, durationMs: settleMs, roomIds: filled.slice(largeRooms, largeRooms + 100).map((r) => r.roomId), profiles, participantPrefix: 'warm-' });
      // Churn: every 3 s a node outside the core dies (stops heartbeating) and a new one registers.
      let diedHere = 0;
      let registeredHere = 0;
      const churnRand = seededRandom(size);
      const churn = setInterval(() => {
        const mortal = nodes.beatingIds().filter((id) => !core.has(id));
        const victim = mortal[Math.floor(churnRand() * mortal.length)];
        if (victim) {
          nodes.silence(victim);
          diedHere++;
        }
        const spec = nodeSpec(nextNode++, regions);
        void nodes.register({ ...spec, participants: ASSUMPTIONS.participantsPerNode }).then(() => registeredHere++, () => undefined);
      }, 3_000);
      const before = { ...nodes.counts };
      const offered = nodes.beatingIds().length;
      const ownCpu0 = process.cpuUsage();
      const wait0 = schedstat(steady.child.pid!).waitS;
      const window = await measure(steady, redis, () => sleep(windowMs));
      const routerWaitCores = (schedstat(steady.child.pid!).waitS - wait0) / window.seconds;
      const ownCpu = process.cpuUsage(ownCpu0);
      const loadAverage = os.loadavg()[0]!;
      const answered = nodes.counts.answered - before.answered;
      const refreshWall: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await steadyRegistry.refresh();
        refreshWall.push(performance.now() - t);
      }
      refreshWall.sort((a, b) => a - b);
      // /allocate latency, rooms of ~10 then rooms of 100, newcomers from all regions.
      const allocateRuns: SizeResult['allocate'] = [];
      for (const roomSize of [10, 100] as const) {
        const roomIdsOfSize = roomSize === 100 ? filled.slice(0, largeRooms).map((r) => r.roomId) : filled.slice(largeRooms, largeRooms + 2_000).map((r) => r.roomId);
        const rate = opts.quick ? 40 : 50;
        const job: AllocateLatencyJob = { origin: steady.url, ratePerSecond: rate, durationMs: opts.quick ? 1_000 : 3_000, roomIds: roomIdsOfSize, profiles, participantPrefix: `lat-${size}-${roomSize}-` };
        const r = await runWorker(job);
        allocateRuns.push({ roomSize, ratePerSecond: rate, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors, failures: r.failures });
      }
      clearInterval(churn);
      died += diedHere;
      const q = quietSizes[s]!;
      results.push({
        ...q,
        steady: {
          routerCores: window.routerMs / 1000 / window.seconds,
          redisCores: window.redisMs / 1000 / window.seconds,
          heartbeatsPerSecond: answered / window.seconds,
          offeredPerSecond: offered,
          benchCores: (ownCpu.user + ownCpu.system) / 1e6 / window.seconds,
          routerWaitCores,
          loadAverage,
          skipped: nodes.counts.skipped - before.skipped,
          failed: nodes.counts.failed - before.failed,
          refreshWallMs: refreshWall[1]!,
          nodesDied: diedHere,
          nodesRegistered: registeredHere,
        },
        allocate: allocateRuns,
      });
      const st = results.at(-1)!.steady;
      log(`steady router, ${size} nodes: router ${st.routerCores.toFixed(2)} cores, Redis ${st.redisCores.toFixed(2)} cores (the router waited ${st.routerWaitCores.toFixed(2)} s/s for a CPU; this process ${st.benchCores.toFixed(2)} cores, load average ${st.loadAverage.toFixed(1)}), ${st.heartbeatsPerSecond.toFixed(0)} heartbeats/s answered (${st.skipped} skipped behind an unanswered one, ${st.failed} failed), registry refresh ${st.refreshWallMs.toFixed(0)} ms; /allocate ${allocateRuns.map((a) => `rooms of ${a.roomSize}: p50 ${a.p50Ms.toFixed(1)} ms, p99 ${a.p99Ms.toFixed(1)} ms (${a.errors} failed${a.errors > 0 ? `: ${JSON.stringify(a.failures)}` : ''})`).join('; ')}`);

      // The churn at the smallest size: past it this machine's router no longer keeps its nodes alive.
      if (s === 0) churnResult = await churnPhase(size);
    }

    /** 1 % of the participants joining and 1 % leaving per minute, on the steady router. */
    async function churnPhase(size: number): Promise<ScaleResult['churn']> {
      const perSecond = participantCount / 100 / 60;
      const seconds = (opts.windowMs ?? (opts.quick ? 2_000 : 15_000)) / 1000;
      const total = Math.max(1, Math.round(perSecond * seconds));
      const decisions0 = await metric(steady, 'geo_sfu_rebalance_decision_seconds_count');
      const decisionSeconds0 = await metric(steady, 'geo_sfu_rebalance_decision_seconds_sum');
      const churnRand = seededRandom(1_000_003);
      // Leaves: joined participants of the filled rooms (each once); joins: newcomers into filled rooms.
      const leaving = Array.from({ length: total }, () => {
        const room = filled[Math.floor(churnRand() * filled.length)]!;
        return { roomId: room.roomId, p: room.participants.splice(Math.floor(churnRand() * room.participants.length), 1)[0] };
      }).filter((l): l is { roomId: string; p: ParticipantRecord } => l.p !== undefined);
      let joins = 0;
      let leaves = 0;
      let failures = 0;
      let firstFailure = '';
      const fail = (why: string) => {
        failures++;
        firstFailure ||= why;
      };
      const started = Date.now();
      const pending = new Set<Promise<void>>();
      const track = (call: Promise<void>) => {
        pending.add(call);
        void call.finally(() => pending.delete(call));
      };
      const phase = await measure(steady, redis, async () => {
        for (let i = 0; i < total; i++) {
          const due = started + (i * 1000) / perSecond;
          if (due > Date.now()) await sleep(due - Date.now());
          track((async () => {
            const room = filled[Math.floor(churnRand() * filled.length)]!;
            try {
              const a = await allocate(steadyPool, room.roomId, `churn-${i}`, profiles[i % profiles.length]!);
              const { status, text } = await nodes.participantEvent({ nodeId: a.node.id, roomId: a.roomId, participantId: a.participantId, allocationId: a.allocationId, event: 'joined' });
              if (status === 200) joins++;
              else fail(`joined report answered ${status} ${text.slice(0, 200)}`);
            } catch (err) {
              fail(String(err).slice(0, 300));
            }
          })());
          const leave = leaving[i];
          if (leave) {
            track((async () => {
              const { status, text } = await nodes.participantEvent({ nodeId: leave.p.nodeId, roomId: leave.roomId, participantId: leave.p.participantId, allocationId: leave.p.allocationId, event: 'left', reason: 'left' }).catch((err: unknown) => ({ status: 0, text: String(err) }));
              if (status === 204) leaves++;
              else fail(`left report answered ${status} ${text.slice(0, 200)}`);
            })());
          }
        }
        await Promise.all(pending);
        // The rebalancer runs a debounce (GEO_SFU_REBALANCE_DEBOUNCE_MS, 2 s) after a room's last change.
        await sleep(2_300);
      });
      const decisions = (await metric(steady, 'geo_sfu_rebalance_decision_seconds_count')) - decisions0;
      const decisionSeconds = (await metric(steady, 'geo_sfu_rebalance_decision_seconds_sum')) - decisionSeconds0;
      const last = results.at(-1)!.steady;
      const routerCores = phase.routerMs / 1000 / phase.seconds;
      const redisCores = phase.redisMs / 1000 / phase.seconds;
      const result = {
        nodes: size,
        seconds: phase.seconds,
        joinsPerSecond: perSecond,
        leavesPerSecond: perSecond,
        joins,
        leaves,
        failures,
        firstFailure,
        routerCores,
        redisCores,
        rebalanceDecisions: decisions,
        rebalanceDecisionMs: decisions > 0 ? (decisionSeconds * 1000) / decisions : 0,
        rebalanceCores: decisionSeconds / phase.seconds,
      };
      log(`churn at 1 %/min of ${participantCount} participants (${perSecond.toFixed(1)} joins/s and leaves/s) for ${phase.seconds.toFixed(1)} s on ${result.nodes} nodes: ${joins} joins, ${leaves} leaves, ${failures} failed${firstFailure ? ` (first: ${firstFailure})` : ''}; router ${routerCores.toFixed(2)} cores (${last.routerCores.toFixed(2)} before), Redis ${redisCores.toFixed(2)} cores (${last.redisCores.toFixed(2)} before); ${decisions} rebalancing decisions, ${result.rebalanceDecisionMs.toFixed(3)} ms each`);
      return result;
    }

    const measured: Measured = {
      peerRttEntriesThatFit,
      probePeerLimit: regions.length * config.probePeersPerRegion,
      sizes: results.map((r) => ({
        nodes: r.nodes,
        peerRttEntries: r.peerRttEntries,
        heartbeatBytes: r.heartbeatBytes,
        routerMsPerHeartbeat: r.routerMsPerHeartbeat,
        redisMsPerHeartbeat: r.redisMsPerHeartbeat,
        refreshCpuMs: r.refreshCpuMs,
        refreshRedisMs: r.refreshRedisMs,
        redisBytesPerNode: r.redisBytesPerNode,
      })),
      allocate: perCall!.allocateSmallRoom,
      joinReport: perCall!.joinReport,
      leaveReport: perCall!.leaveReport,
      rebalanceMsPerChange: churnResult!.rebalanceDecisions > 0 ? (churnResult!.rebalanceDecisionMs * churnResult!.rebalanceDecisions) / Math.max(1, churnResult!.joins + churnResult!.leaves) : 0,
      rebalanceDecisionsPerChange: churnResult!.rebalanceDecisions / Math.max(1, churnResult!.joins + churnResult!.leaves),
      roomScan,
      redisBytesPerRoom,
      redisBytesPerParticipant,
    };
    notes.push(`Nodes died ${died} times over the steady windows (one every 3 s outside the ${core.size} nodes holding the written participants) and as many registered.`);
    const result: ScaleResult = {
      regions: regions.length,
      rooms: roomCount,
      participants: written,
      largeRooms,
      fill: { seconds: fillSeconds, how: fillHow },
      redisBytesPerRoom,
      redisBytesPerParticipant,
      sizes: results,
      perCall: perCall!,
      placement,
      roomScan,
      churn: churnResult!,
      untrimmedHeartbeat: untrimmed,
      peerRttEntriesThatFit,
      measured,
      extrapolation: extrapolate(measured),
      notes,
      files: null,
    };
    const outDir = opts.outDir === undefined ? fileURLToPath(new URL('../results/', import.meta.url)) : opts.outDir;
    if (outDir !== null) {
      result.files = { md: path.join(outDir, 'scale.md'), svg: path.join(outDir, 'scale-cpu.svg') };
      writeFileSync(result.files.svg, scalePlot(result));
      writeFileSync(result.files.md, scaleMarkdown(result));
    }
    return result;
  } finally {
    log('closing');
    for (const close of closers.reverse()) await close().catch(() => undefined);
    // Their graceful shutdown is not measured: SIGKILL after a second.
    await Promise.all(routers.map((r) => stopChild(r.child, 1_000)));
    await redis.close();
    await rm(journalDir, { recursive: true, force: true });
  }
}

function runWorker(job: AllocateLatencyJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(new URL('./allocate-worker.ts', import.meta.url), job);
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}
