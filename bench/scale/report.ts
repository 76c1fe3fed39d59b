import type { ScaleResult } from './types.ts';
import { ASSUMPTIONS, extrapolate, type ExtrapolatedRow } from './model.ts';
import { scaleSvg } from './plot.ts';

const f = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '∞');
const n = (x: number) => Math.round(x).toLocaleString('en-US');
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GiB`;
const big = (x: number) => (x >= 1e6 ? `${x / 1e6}M` : x >= 1e3 ? `${x / 1e3}k` : String(x));

/** One line per extrapolated size: what it needs and what saturates first. */
export function rowSummary(r: ExtrapolatedRow): string {
  return `${n(r.nodes)} nodes, ${n(r.rooms)} rooms, ${n(r.joinsPerSecond)} joins/s: ${r.routerReplicas} router replicas, ${f(r.routerCores, 1)} cores (registry refresh ${f(r.refreshCoresPerReplica)} cores on each); Redis ${f(r.redisCores)} cores, ${gib(r.redisMemoryBytes)}; saturates first: ${r.saturatesFirst.resource} (${f(r.saturatesFirst.ratio)}× of it)${r.beyondPeerRttLimit ? '; heartbeats refused today: figures assume each carries what fits' : ''}`;
}

export function scaleMarkdown(r: ScaleResult): string {
  const x = r.extrapolation;
  const lines = [
    '# Control plane at scale',
    '',
    `${r.regions} regions, ${n(r.rooms)} rooms (${n(r.largeRooms)} of 100 participants), ${n(r.participants)} participant records written in ${f(r.fill.seconds, 1)} s (${r.fill.how}). Written by \`npm run bench\` (bench/scale/).`,
    '',
    '## Per node count',
    '',
    '| nodes | peerRtt entries per heartbeat | heartbeat / answer (bytes) | router CPU per heartbeat (ms) | Redis CPU per heartbeat (ms) | registry refresh: wall / CPU / Redis CPU (ms) | Redis bytes per node | steady router: cores | steady Redis: cores | router waiting for a CPU (s/s); this process (cores); load average | heartbeats/s answered of offered (skipped, failed) | refresh under load (ms) | /allocate p50 / p99, rooms of 10 (ms) | /allocate p50 / p99, rooms of 100 (ms) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.sizes.map((s) => {
      const a10 = s.allocate.find((a) => a.roomSize === 10)!;
      const a100 = s.allocate.find((a) => a.roomSize === 100)!;
      return `| ${n(s.nodes)} | ${n(s.peerRttEntries)} | ${n(s.heartbeatBytes)} / ${n(s.answerBytes)} | ${f(s.routerMsPerHeartbeat, 3)} | ${f(s.redisMsPerHeartbeat, 3)} | ${f(s.refreshWallMs, 1)} / ${f(s.refreshCpuMs, 1)} / ${f(s.refreshRedisMs, 1)} | ${n(s.redisBytesPerNode)} | ${f(s.steady.routerCores)} | ${f(s.steady.redisCores)} | ${f(s.steady.routerWaitCores)}; ${f(s.steady.benchCores)}; ${f(s.steady.loadAverage, 1)} | ${n(s.steady.heartbeatsPerSecond)} of ${n(s.steady.offeredPerSecond)} (${s.steady.skipped}, ${s.steady.failed}) | ${f(s.steady.refreshWallMs, 0)} | ${f(a10.p50Ms, 1)} / ${f(a10.p99Ms, 1)}${a10.errors ? ` (${a10.errors} failed)` : ''} | ${f(a100.p50Ms, 1)} / ${f(a100.p99Ms, 1)}${a100.errors ? ` (${a100.errors} failed)` : ''} |`;
    }),
    '',
    `peerRtt entries that fit a heartbeat: ${n(r.peerRttEntriesThatFit)} (the router's 64 KiB body limit; the schema allows 1,000). Each node probes at most ${n(r.measured.probePeerLimit)} peers (GEO_SFU_PROBE_PEERS_PER_REGION in each of the ${r.regions} regions), ${r.measured.probePeerLimit <= r.peerRttEntriesThatFit ? 'so heartbeats fit at every size' : `so heartbeats are refused past ${n(r.peerRttEntriesThatFit + 1)} nodes; sizes past that ran with the RTTs limited to what fits`}: at the largest size a heartbeat with the RTTs of all ${n(r.untrimmedHeartbeat.entries)} peers listed to it (${n(r.untrimmedHeartbeat.bytes)} B, quality list empty) was answered ${r.untrimmedHeartbeat.status}.`,
    '',
    '## Per call (quiet router, each kind alone)',
    '',
    '| call | router CPU (ms) | Redis CPU (ms) |',
    '| --- | --- | --- |',
    `| /allocate into rooms of 1–10 | ${f(r.perCall.allocateSmallRoom.routerMs, 3)} | ${f(r.perCall.allocateSmallRoom.redisMs, 3)} |`,
    `| /allocate into rooms of 1–100 | ${f(r.perCall.allocateLargeRoom.routerMs, 3)} | ${f(r.perCall.allocateLargeRoom.redisMs, 3)} |`,
    `| join report | ${f(r.perCall.joinReport.routerMs, 3)} | ${f(r.perCall.joinReport.redisMs, 3)} |`,
    `| leave report | ${f(r.perCall.leaveReport.routerMs, 3)} | ${f(r.perCall.leaveReport.redisMs, 3)} |`,
    `| room scan (listRoomIds + getRoom), per room, of ${n(r.roomScan.rooms)} | ${f(r.roomScan.cpuMsPerRoom, 3)} (wall ${f(r.roomScan.wallMsPerRoom, 3)}) | ${f(r.roomScan.redisMsPerRoom, 3)} |`,
    '',
    `The placement decision alone (min-delay, in-process, ${n(r.placement[0]?.nodes ?? 0)} nodes): ${r.placement.map((c) => `${c.regions} regions, room of ${c.roomSize}: ${f(c.medianUs, 0)} µs median (p99 ${f(c.p99Us, 0)} µs)`).join('; ')}.`,
    '',
    `Redis memory: ${n(r.redisBytesPerParticipant)} B per participant, ${n(r.redisBytesPerRoom)} B per room besides (MEMORY USAGE of participants hashes; used_memory growth of the fill).`,
    '',
    `Churn at 1 % of ${n(r.participants)} participants joining and 1 % leaving per minute (${f(r.churn.joinsPerSecond, 1)}/s each) on ${n(r.churn.nodes)} nodes for ${f(r.churn.seconds, 1)} s: ${r.churn.joins} joins, ${r.churn.leaves} leaves, ${r.churn.failures} failed; router ${f(r.churn.routerCores)} cores, Redis ${f(r.churn.redisCores)} cores; ${r.churn.rebalanceDecisions} rebalancing decisions of ${f(r.churn.rebalanceDecisionMs, 3)} ms (${f(r.churn.rebalanceCores, 4)} cores).`,
    '',
    '## Extrapolation',
    '',
    `Assumptions: ${ASSUMPTIONS.participantsPerNode} participants per node, ${ASSUMPTIONS.participantsPerRoom} per room, sessions of ${ASSUMPTIONS.sessionSeconds / 60} min, a heartbeat per node per second, ${ASSUMPTIONS.refreshesPerSecond} registry refreshes per second on every router replica, the leader reading every room every ${ASSUMPTIONS.reconcileSeconds} s (reconcile) and after node deaths (one restart per node per day), a router replica used to ${ASSUMPTIONS.routerCoreBudget * 100} % of its one core, Redis to 1 core and 64 GiB.`,
    '',
    '| participants | nodes | joins/s (and leaves/s) | router replicas / cores | registry refresh per replica (cores) | leader room scans (cores; one scan s) | Redis CPU (cores): heartbeats + refresh + calls + scans | Redis memory | saturated first (use / limit) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...x.rows.map((row) => `| ${big(row.participants)} | ${n(row.nodes)}${row.beyondPeerRttLimit ? ' (heartbeats refused today)' : ''} | ${n(row.joinsPerSecond)} | ${row.routerReplicas} / ${f(row.routerCores, 1)} | ${f(row.refreshCoresPerReplica)} | ${f(row.leaderScanCores)}; ${f(row.roomScanSeconds, 0)} | ${f(row.redisCores)} = ${f(row.redisCoresBy.heartbeats)} + ${f(row.redisCoresBy.registryRefresh)} + ${f(row.redisCoresBy.allocateAndReports)} + ${f(row.redisCoresBy.roomScans)} | ${gib(row.redisMemoryBytes)} | ${row.saturatesFirst.resource} (${f(row.saturatesFirst.ratio)}×) |`),
    '',
    `In the order they saturate as participants grow: ${x.saturation.map((u) => `${u.resource} at ${u.participants === null ? 'more than 1,000,000,000' : n(u.participants)}`).join('; ')}.`,
    '',
    limitsText(r),
    '',
    '![router and Redis CPU against nodes and participants](scale-cpu.svg)',
    '',
    ...r.notes.map((note) => `- ${note}`),
    '',
  ];
  return lines.join('\n');
}

/** Where one Redis primary and one router replica stop being enough. */
export function limitsText(r: ScaleResult): string {
  const x = r.extrapolation;
  const redis = x.redisPrimaryLimit
    ? `One Redis primary stops being enough at about ${n(x.redisPrimaryLimit.participants)} participants (${n(x.redisPrimaryLimit.participants / ASSUMPTIONS.participantsPerNode)} nodes; ${x.redisPrimaryLimit.resource}: ${f(x.redisPrimaryLimit.redisCoresBy.heartbeats)} cores for heartbeats, ${f(x.redisPrimaryLimit.redisCoresBy.registryRefresh)} for the routers' registry refreshes, ${f(x.redisPrimaryLimit.redisCoresBy.allocateAndReports)} for allocations and join/leave reports, ${f(x.redisPrimaryLimit.redisCoresBy.roomScans)} for the leader's room scans).`
    : 'One Redis primary is enough up to 1,000,000,000 participants in this model.';
  const router = x.routerRefreshLimit === null ? '' : ` A router replica spends its 70 % of a core on registry refreshes alone from about ${n(x.routerRefreshLimit)} participants (${n(x.routerRefreshLimit / ASSUMPTIONS.participantsPerNode)} nodes).`;
  const path = x.participantPathLimit;
  const participantsOnly = ` On the participants' path alone (registry costs made small), one Redis primary saturates at about ${path.withScans === null ? 'more than 1,000,000,000' : n(path.withScans)} participants with the leader's room scans, ${path.withoutScans === null ? 'more than 1,000,000,000' : n(path.withoutScans)} without them.`;
  return redis + router + participantsOnly;
}

export function scalePlot(r: ScaleResult): string {
  const grid: number[] = [];
  for (let p = 10_000; p <= 10_000_000; p = Math.round(p * 1.25)) grid.push(p);
  // Where heartbeats stop fitting, if they ever do (each node probes at most probePeerLimit peers).
  const limit = r.measured.probePeerLimit > r.peerRttEntriesThatFit ? (r.peerRttEntriesThatFit + 1) * ASSUMPTIONS.participantsPerNode : undefined;
  const finite = (pts: Array<[number, number]>) => pts.filter(([, y]) => Number.isFinite(y) && y > 0);
  const rows = extrapolate(r.measured, grid).rows;
  return scaleSvg(
    `Control plane CPU: ${r.regions} regions, ${n(r.participants)} participants in Redis`,
    {
      series: [
        { name: 'router (one process), on a CPU', colour: '#1f77b4', points: r.sizes.map((s) => [s.nodes, s.steady.routerCores]) },
        { name: 'router, on a CPU + waiting for one (a shared machine)', colour: '#9ecae1', points: r.sizes.map((s) => [s.nodes, s.steady.routerCores + s.steady.routerWaitCores]) },
        { name: 'Redis', colour: '#d62728', points: r.sizes.map((s) => [s.nodes, s.steady.redisCores]) },
      ],
      hLine: { y: 1, label: 'one core' },
    },
    {
      series: [
        { name: limit === undefined ? 'router, all replicas' : 'router, all replicas (dashed: RTTs cut to fit)', colour: '#1f77b4', points: finite(rows.map((row) => [row.participants, row.routerCores])), ...(limit === undefined ? {} : { dashedFrom: limit }) },
        { name: 'Redis', colour: '#d62728', points: finite(rows.map((row) => [row.participants, row.redisCores])), ...(limit === undefined ? {} : { dashedFrom: limit }) },
      ],
      hLine: { y: 1, label: "Redis's one command thread" },
      ...(limit === undefined ? {} : { vLine: { x: limit, label: 'heartbeats refused past here' } }),
    },
  );
}
