/**
 * From the scale benchmark's per-node and per-room costs to what 100k, 1M and 10M concurrent
 * participants need: router cores, Redis CPU and memory, which resource saturates first, and the
 * size at which one Redis primary stops being enough. Pure arithmetic on the measured figures; the
 * assumptions are the constants below (docs/benchmarks.md states them with the table).
 */
export const ASSUMPTIONS = {
  /** GEO_SFU_MAX_PARTICIPANTS_PER_NODE's default: nodes = participants / this. */
  participantsPerNode: 100,
  participantsPerRoom: 10,
  /** Mean session length: joins/s = leaves/s = participants / this. */
  sessionSeconds: 1_800,
  /** GEO_SFU_HEARTBEAT_INTERVAL_MS's default: heartbeats per node per second. */
  heartbeatsPerSecond: 1,
  /** GEO_SFU_REGISTRY_REFRESH_MS's default (250 ms): registry reads per second, on every router replica. */
  refreshesPerSecond: 4,
  /** GEO_SFU_RECONCILE_INTERVAL_MS's default: the leader reads every room this often. */
  reconcileSeconds: 30,
  /** Each node restarts (a deploy, a crash) once a day: the leader's rehomer then reads every room. */
  nodeRestartsPerDay: 1,
  /** The rehomer looks at most this often (GEO_SFU_REHOME_INTERVAL_MS's 500 ms default). */
  rehomeScansPerSecondMax: 2,
  /** A router replica is one Node event loop: at most this share of a core before latency suffers (the guide's 70 %). */
  routerCoreBudget: 0.7,
  /** Redis runs commands on one thread. */
  redisCoreBudget: 1,
  /** Memory of one Redis primary's host. */
  redisMemoryBytes: 64 * 2 ** 30,
} as const;

export interface MeasuredSize {
  nodes: number;
  peerRttEntries: number;
  heartbeatBytes: number;
  routerMsPerHeartbeat: number;
  redisMsPerHeartbeat: number;
  refreshCpuMs: number;
  refreshRedisMs: number;
  redisBytesPerNode: number;
}

export interface Measured {
  /** peerRtt entries a heartbeat can carry: the router's body limit (64 KiB) or the schema's 1,000, whichever is fewer. */
  peerRttEntriesThatFit: number;
  /** Peers a heartbeat's answer lists at most, so the RTTs a heartbeat carries: regions × GEO_SFU_PROBE_PEERS_PER_REGION. */
  probePeerLimit: number;
  sizes: MeasuredSize[];
  allocate: { routerMs: number; redisMs: number };
  joinReport: { routerMs: number; redisMs: number };
  leaveReport: { routerMs: number; redisMs: number };
  /** Router CPU of the rebalancer's decisions per join or leave, ms. */
  rebalanceMsPerChange: number;
  /** Decisions per join or leave (each reads its room). */
  rebalanceDecisionsPerChange: number;
  roomScan: { cpuMsPerRoom: number; wallMsPerRoom: number; redisMsPerRoom: number };
  redisBytesPerRoom: number;
  redisBytesPerParticipant: number;
}

export interface ResourceUse {
  resource: string;
  /** Use over what is available (≥ 1: saturated). */
  ratio: number;
}

export interface ExtrapolatedRow {
  participants: number;
  nodes: number;
  rooms: number;
  joinsPerSecond: number;
  /** Heartbeats would not fit (each node's probed peers' RTTs are more than fit); the figures then assume every heartbeat carries at most what fits. */
  beyondPeerRttLimit: boolean;
  /** Replicas for heartbeats, calls and the leader's scans at 70 % of a core each (2 at least). */
  routerReplicas: number;
  /** All replicas, their registry refreshes included. */
  routerCores: number;
  /** Of which each replica's registry refresh, cores. */
  refreshCoresPerReplica: number;
  /** The leader's room scans (reconcile every 30 s, rehome after each node death), cores, and one scan's duration, s. */
  leaderScanCores: number;
  roomScanSeconds: number;
  redisCores: number;
  redisCoresBy: Record<'heartbeats' | 'registryRefresh' | 'allocateAndReports' | 'roomScans', number>;
  redisMemoryBytes: number;
  uses: ResourceUse[];
  /** Of the resources saturated at this size, the one that saturated at the fewest participants (none saturated: the most used). */
  saturatesFirst: ResourceUse;
}

export interface Extrapolation {
  assumptions: typeof ASSUMPTIONS;
  /** Per-heartbeat costs (ms) and per-node refresh costs (ms per node per refresh) as fitted: a + b × peer entries. */
  fits: Record<string, { a: number; b: number }>;
  rows: ExtrapolatedRow[];
  /** Each resource and the participant count at which it saturates (null: not below 1,000,000,000), fewest first. */
  saturation: Array<{ resource: string; participants: number | null }>;
  /** The smallest participant count at which one Redis primary is not enough (CPU or memory), and why. */
  redisPrimaryLimit: { participants: number; resource: string; redisCoresBy: ExtrapolatedRow['redisCoresBy'] } | null;
  /** The smallest participant count at which a router replica's registry refresh alone takes its 70 % of a core. */
  routerRefreshLimit: number | null;
  /**
   * Where one Redis primary saturates on the participants' path alone (node costs made small: design
   * step 1 of docs/scaling.md): allocations, join/leave reports and rebalancing reads, with the
   * leader's room scans (`withScans`) and without them (step 2).
   */
  participantPathLimit: { withScans: number | null; withoutScans: number | null };
}

/** Least squares a + b × x. */
export function fitLine(points: ReadonlyArray<[number, number]>): { a: number; b: number } {
  const n = points.length;
  if (n === 1) return { a: points[0]![1], b: 0 };
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
  return { a: my - b * mx, b };
}

export function extrapolate(m: Measured, participantCounts: readonly number[] = [100_000, 1_000_000, 10_000_000]): Extrapolation {
  const A = ASSUMPTIONS;
  const at = (pick: (s: MeasuredSize) => number) => fitLine(m.sizes.map((s) => [s.peerRttEntries, pick(s)]));
  // A cost can only be positive: a fit of noisy points is floored at the smallest measured value.
  const floor = (pick: (s: MeasuredSize) => number) => Math.min(...m.sizes.map(pick).filter((v) => v > 0), Number.POSITIVE_INFINITY);
  const fits = {
    routerMsPerHeartbeat: at((s) => s.routerMsPerHeartbeat),
    redisMsPerHeartbeat: at((s) => s.redisMsPerHeartbeat),
    refreshCpuMsPerNode: at((s) => s.refreshCpuMs / s.nodes),
    refreshRedisMsPerNode: at((s) => s.refreshRedisMs / s.nodes),
    redisBytesPerNode: at((s) => s.redisBytesPerNode),
  };
  const evalFit = (name: keyof typeof fits, entries: number, pick: (s: MeasuredSize) => number) => {
    const v = fits[name].a + fits[name].b * entries;
    const min = floor(pick);
    return Number.isFinite(min) ? Math.max(v, min) : Math.max(v, 0);
  };
  const model = (participants: number): Omit<ExtrapolatedRow, 'saturatesFirst'> => {
    const nodes = Math.ceil(participants / A.participantsPerNode);
    const rooms = participants / A.participantsPerRoom;
    const joinsPerSecond = participants / A.sessionSeconds;
    const probed = Math.min(nodes - 1, m.probePeerLimit);
    const entries = Math.min(probed, m.peerRttEntriesThatFit);
    const hbRouterMs = evalFit('routerMsPerHeartbeat', entries, (s) => s.routerMsPerHeartbeat);
    const hbRedisMs = evalFit('redisMsPerHeartbeat', entries, (s) => s.redisMsPerHeartbeat);
    const refreshCpuMs = nodes * evalFit('refreshCpuMsPerNode', entries, (s) => s.refreshCpuMs / s.nodes);
    const refreshRedisMs = nodes * evalFit('refreshRedisMsPerNode', entries, (s) => s.refreshRedisMs / s.nodes);
    const heartbeatCores = (nodes * A.heartbeatsPerSecond * hbRouterMs) / 1000;
    const changesPerSecond = 2 * joinsPerSecond;
    const callCores = (joinsPerSecond * (m.allocate.routerMs + m.joinReport.routerMs) + joinsPerSecond * m.leaveReport.routerMs + changesPerSecond * m.rebalanceMsPerChange) / 1000;
    const rehomeScansPerSecond = Math.min(A.rehomeScansPerSecondMax, (nodes * A.nodeRestartsPerDay) / 86_400);
    const roomReadsPerSecond = rooms / A.reconcileSeconds + rehomeScansPerSecond * rooms;
    const leaderScanCores = (roomReadsPerSecond * m.roomScan.cpuMsPerRoom) / 1000;
    const refreshCoresPerReplica = (A.refreshesPerSecond * refreshCpuMs) / 1000;
    const shared = heartbeatCores + callCores;
    // Replicas share heartbeats and calls (the leader also scans rooms); each also refreshes the
    // registry, which no number of replicas divides: its share of one event loop is a use of its own.
    const routerReplicas = Math.max(2, Math.ceil((shared + leaderScanCores) / A.routerCoreBudget));
    const routerCores = shared + leaderScanCores + routerReplicas * refreshCoresPerReplica;
    const redisCoresBy = {
      heartbeats: (nodes * A.heartbeatsPerSecond * hbRedisMs) / 1000,
      registryRefresh: (routerReplicas * A.refreshesPerSecond * refreshRedisMs) / 1000,
      allocateAndReports: (joinsPerSecond * (m.allocate.redisMs + m.joinReport.redisMs + m.leaveReport.redisMs) + changesPerSecond * m.rebalanceDecisionsPerChange * m.roomScan.redisMsPerRoom) / 1000,
      roomScans: (roomReadsPerSecond * m.roomScan.redisMsPerRoom) / 1000,
    };
    const redisCores = Object.values(redisCoresBy).reduce((a, b) => a + b, 0);
    const redisMemoryBytes = rooms * m.redisBytesPerRoom + participants * m.redisBytesPerParticipant + nodes * evalFit('redisBytesPerNode', entries, (s) => s.redisBytesPerNode);
    const roomScanSeconds = (rooms * m.roomScan.wallMsPerRoom) / 1000;
    const uses: ResourceUse[] = [
      { resource: `heartbeat size: each node probes at most ${m.probePeerLimit} peers, and ${m.peerRttEntriesThatFit} peers' RTTs fit a heartbeat`, ratio: probed / m.peerRttEntriesThatFit },
      { resource: "a router replica's event loop: registry refresh", ratio: refreshCoresPerReplica / A.routerCoreBudget },
      { resource: "the leader's event loop: room scans", ratio: leaderScanCores / A.routerCoreBudget },
      { resource: "the leader's reconcile pass: one room scan vs its 30 s period", ratio: roomScanSeconds / A.reconcileSeconds },
      { resource: 'Redis CPU (one command thread)', ratio: redisCores / A.redisCoreBudget },
      { resource: 'Redis memory (64 GiB host)', ratio: redisMemoryBytes / A.redisMemoryBytes },
    ];
    return {
      participants,
      nodes,
      rooms,
      joinsPerSecond,
      beyondPeerRttLimit: probed > m.peerRttEntriesThatFit,
      routerReplicas,
      routerCores,
      refreshCoresPerReplica,
      leaderScanCores,
      roomScanSeconds,
      redisCores,
      redisCoresBy,
      redisMemoryBytes,
      uses,
    };
  };
  const saturatedAt = new Map<string, number>();
  let redisPrimaryLimit: Extrapolation['redisPrimaryLimit'] = null;
  let routerRefreshLimit: number | null = null;
  const participantPathLimit: Extrapolation['participantPathLimit'] = { withScans: null, withoutScans: null };
  for (let p = 1_000; p <= 1e9; p = Math.ceil(p * 1.01)) {
    const row = model(p);
    if (saturatedAt.size === row.uses.length && redisPrimaryLimit !== null && routerRefreshLimit !== null && participantPathLimit.withoutScans !== null) break;
    for (const use of row.uses) if (use.ratio >= 1 && !saturatedAt.has(use.resource)) saturatedAt.set(use.resource, p);
    if (routerRefreshLimit === null && row.refreshCoresPerReplica >= A.routerCoreBudget) routerRefreshLimit = p;
    const calls = row.redisCoresBy.allocateAndReports;
    if (participantPathLimit.withScans === null && calls + row.redisCoresBy.roomScans >= A.redisCoreBudget) participantPathLimit.withScans = p;
    if (participantPathLimit.withoutScans === null && calls >= A.redisCoreBudget) participantPathLimit.withoutScans = p;
    if (redisPrimaryLimit !== null) continue;
    if (row.redisCores >= A.redisCoreBudget) {
      redisPrimaryLimit = { participants: p, resource: 'Redis CPU', redisCoresBy: row.redisCoresBy };
    } else if (row.redisMemoryBytes >= A.redisMemoryBytes) {
      redisPrimaryLimit = { participants: p, resource: 'Redis memory', redisCoresBy: row.redisCoresBy };
    }
  }
  const saturation = model(1_000).uses
    .map((u) => ({ resource: u.resource, participants: saturatedAt.get(u.resource) ?? null }))
    .sort((a, b) => (a.participants ?? Number.POSITIVE_INFINITY) - (b.participants ?? Number.POSITIVE_INFINITY));
  const rows = participantCounts.map((p): ExtrapolatedRow => {
    const row = model(p);
    const saturated = row.uses.filter((u) => u.ratio >= 1).sort((a, b) => saturatedAt.get(a.resource)! - saturatedAt.get(b.resource)!);
    return { ...row, saturatesFirst: saturated[0] ?? row.uses.reduce((a, b) => (b.ratio > a.ratio ? b : a)) };
  });
  return { assumptions: A, fits, rows, saturation, redisPrimaryLimit, routerRefreshLimit, participantPathLimit };
}
