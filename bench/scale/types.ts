/** What the scale benchmark (bench/scale/index.ts) measured: its result, as the report reads it. */
import type { Extrapolation, Measured } from './model.ts';
import type { PlacementCost } from './placement-cost.ts';

export interface SizeResult {
  nodes: number;
  /** peerRtt entries a heartbeat carried (the peers the router listed to it, at most what fits). */
  peerRttEntries: number;
  heartbeatBytes: number;
  answerBytes: number;
  /** Quiet router, heartbeats alone: CPU per heartbeat, ms. */
  routerMsPerHeartbeat: number;
  redisMsPerHeartbeat: number;
  /** Registry refresh in this process on the quiet router's data, a quarter of the heartbeats changed since the last read (mean of 16 reads): CPU and wall time, ms; Redis CPU, ms. */
  refreshCpuMs: number;
  refreshWallMs: number;
  refreshRedisMs: number;
  /** Redis memory of the heartbeats and registrations, per node, bytes (MEMORY USAGE). */
  redisBytesPerNode: number;
  /** Steady router: all nodes heartbeating every second (with churn), over the window. */
  steady: {
    routerCores: number;
    redisCores: number;
    heartbeatsPerSecond: number;
    offeredPerSecond: number;
    skipped: number;
    failed: number;
    /** Registry refresh wall time measured meanwhile in this process, median of 3, ms. */
    refreshWallMs: number;
    nodesDied: number;
    nodesRegistered: number;
    /** This process's CPU meanwhile (the nodes' heartbeats, the measuring client), cores; the machine's 1-minute load average after the window. */
    benchCores: number;
    loadAverage: number;
    /** The router's threads' time runnable but waiting for a CPU (taken by other processes), per second. */
    routerWaitCores: number;
  };
  /** /allocate latency on the steady router (open loop), by the size of the rooms allocated into. */
  allocate: Array<{ roomSize: number; ratePerSecond: number; p50Ms: number; p99Ms: number; errors: number; failures: Record<string, number> }>;
}

export interface ScaleResult {
  regions: number;
  rooms: number;
  participants: number;
  largeRooms: number;
  fill: { seconds: number; how: string };
  redisBytesPerRoom: number;
  redisBytesPerParticipant: number;
  sizes: SizeResult[];
  /** Quiet router, each alone: CPU per call, ms. */
  perCall: {
    allocateSmallRoom: { routerMs: number; redisMs: number; meanRoomSize: number };
    allocateLargeRoom: { routerMs: number; redisMs: number; meanRoomSize: number };
    joinReport: { routerMs: number; redisMs: number };
    leaveReport: { routerMs: number; redisMs: number };
  };
  /** The pure placement decision's time by number of regions and room size. */
  placement: PlacementCost[];
  /** A full room scan (listRoomIds, then getRoom per room) in this process, per room. */
  roomScan: { rooms: number; listMs: number; cpuMsPerRoom: number; wallMsPerRoom: number; redisMsPerRoom: number };
  churn: {
    nodes: number;
    seconds: number;
    joinsPerSecond: number;
    leavesPerSecond: number;
    joins: number;
    leaves: number;
    failures: number;
    /** What the first failed call got ('' when none failed). */
    firstFailure: string;
    routerCores: number;
    redisCores: number;
    rebalanceDecisions: number;
    rebalanceDecisionMs: number;
    /** The rebalancer's pure decision time (geo_sfu_rebalance_decision_seconds) over the phase's seconds: cores. */
    rebalanceCores: number;
  };
  /** At the largest size, a heartbeat with every peer's RTT (as an agent sends it, quality dropped): its size and the router's answer. */
  untrimmedHeartbeat: { entries: number; bytes: number; status: number };
  /** peerRtt entries that fit a heartbeat (the router's body limit, the schema's 1,000), as measured at the largest size. */
  peerRttEntriesThatFit: number;
  /** What the extrapolation was computed from. */
  measured: Measured;
  extrapolation: Extrapolation;
  notes: string[];
  files: { md: string; svg: string } | null;
}
