import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakeNodes } from '../test/utils/fake-nodes.ts';
import { allocate } from '../test/utils/http.ts';
import { testConfig } from '../test/utils/router-harness.ts';
import { ask, failoverRecovery, type FailoverCall, reconcileActions, SENTINEL_GROUP, startSentinelGroup, until } from '../test/utils/sentinel-group.ts';
import { spawnRouter, type ServiceProcess } from '../test/utils/service-process.ts';

/**
 * Redis failover under load: a Sentinel group (primary, replica, three sentinels with
 * down-after-milliseconds 1000) started on spare ports, two router processes, a steady 200
 * allocations/s over 100 rooms. The primary is SIGKILLed; measured: the time from the kill until
 * allocations succeed again on both routers, and the calls refused meanwhile (each should be a 503
 * with Retry-After). The killed server then comes back as a replica (master_link_status:up) and the
 * next failover starts: three (one with --quick); the median is the figure.
 *
 * Degraded allocation is off here: it would serve the known rooms from local state during the
 * outage and hide when Redis answers again, which is what this measures.
 */
export interface FailoverRound {
  killedPort: number;
  promotedPort: number;
  /** Kill → the first success after the last refusal, the later of the two routers, ms. */
  recoveryMs: number;
  /** Kill → the sentinels name the new primary (Redis's own part of recoveryMs), ms. */
  promotedAfterMs: number;
  calls: number;
  refused: number;
  /** Refusals by status and error code, e.g. `503 DEPENDENCY_UNAVAILABLE`. */
  refusals: Record<string, number>;
  /** Refusals that were not a 503 with Retry-After (connection errors included). */
  badRefusals: number;
}

export interface RedisFailoverResult {
  rounds: FailoverRound[];
  medianRecoveryMs: number;
  ratePerSecond: number;
  rooms: number;
  /** After the last failover, the load stopped: the changes of Redis server the routers saw (one per failover expected). */
  failoversSeen: number;
  /** Reconcile actions on both routers over the run (geo_sfu_reconcile_actions_total, by action). */
  reconcileActions: Record<string, number>;
  /** Nodes whose count differed from the participant records on the last primary, read in one step (none expected). */
  countMismatches: Array<{ nodeId: string; counted: number; records: number }>;
}

/** Each node's count against the participant records, in one script (no allocation runs between the two reads). */
const COUNTS_VS_RECORDS = `
local records = {}
for _, roomId in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local encoded = string.gsub(string.gsub(roomId, '%%', '%%25'), ':', '%%3A')
  for _, record in ipairs(redis.call('HVALS', ARGV[1] .. encoded .. ':participants')) do
    local nodeId = cjson.decode(record).nodeId
    records[nodeId] = (records[nodeId] or 0) + 1
  end
end
local counted = redis.call('HGETALL', KEYS[2])
local out = {}
local seen = {}
for i = 1, #counted, 2 do
  seen[counted[i]] = true
  local want = records[counted[i]] or 0
  if tonumber(counted[i + 1]) ~= want then out[#out + 1] = counted[i]; out[#out + 1] = counted[i + 1]; out[#out + 1] = want end
end
for nodeId, n in pairs(records) do
  if not seen[nodeId] then out[#out + 1] = nodeId; out[#out + 1] = 0; out[#out + 1] = n end
end
return out
`;

const RATE = 200;
const PREFIX = 'bench-failover:';
const ROOMS = 100;
const LATENCIES = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };

export async function benchRedisFailover(opts: { quick: boolean }): Promise<RedisFailoverResult> {
  const group = await startSentinelGroup();
  const journalDir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-failover-journal-'));
  const routers: ServiceProcess[] = [];
  let nodes: FakeNodes | null = null;
  try {
    const secrets = testConfig('memory');
    const env = {
      GEO_SFU_REDIS_SENTINELS: group.sentinels,
      GEO_SFU_REDIS_SENTINEL_NAME: SENTINEL_GROUP,
      GEO_SFU_REDIS_PREFIX: PREFIX,
      GEO_SFU_CLUSTER_SECRET: secrets.clusterSecret,
      GEO_SFU_TOKEN_SECRETS: secrets.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
      GEO_SFU_API_KEY: secrets.apiKey,
      GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
      GEO_SFU_MAX_ROOM_PARTICIPANTS: '0',
      GEO_SFU_MAX_PARTICIPANTS_PER_NODE: '100000',
      GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
      GEO_SFU_DEGRADED_ALLOCATION: 'false',
      GEO_SFU_JOURNAL_DIR: journalDir,
    };
    for (let i = 0; i < 2; i++) routers.push(await spawnRouter(env));
    nodes = new FakeNodes(routers[0]!.url, secrets.clusterSecret);
    await nodes.start(200);
    await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 100_000 });

    const calls: FailoverCall[] = [];
    let sent = 0;
    const inFlight = new Set<Promise<void>>();
    const fire = () => {
      const i = sent++;
      const router = i % 2;
      const call = (async () => {
        // Each room sees 10 participants in turn, replaced as they come back: the rooms stay small.
        const body = { roomId: `room-${i % ROOMS}`, participantId: `p-${Math.floor(i / ROOMS) % 10}`, latencies: LATENCIES };
        try {
          const res = await allocate(routers[router]!.url, body);
          calls.push({ atMs: Date.now(), router, status: res.status, code: res.body.error ? `${res.body.error.code} ${res.body.error.message.slice(0, 160)}` : '', retryAfter: res.headers['retry-after'] !== undefined });
        } catch {
          calls.push({ atMs: Date.now(), router, status: 'connection error', code: '', retryAfter: false });
        }
      })();
      inFlight.add(call);
      void call.finally(() => inFlight.delete(call));
    };
    // 200/s: a call every 5 ms, paced on the clock so a stall is caught up rather than lost.
    const startedAt = Date.now();
    const pacer = setInterval(() => {
      while (sent < ((Date.now() - startedAt) * RATE) / 1000) fire();
    }, 5);
    try {
      const okSince = (sinceMs: number, n: number) => [0, 1].every((router) => {
        const mine = calls.filter((c) => c.router === router && c.atMs > sinceMs);
        return mine.length >= n && mine.slice(-n).every((c) => c.status === 200);
      });
      await until('allocations before the first kill', async () => (okSince(startedAt, 50) ? true : null), 30_000);
      const rounds: FailoverRound[] = [];
      for (let round = 0; round < (opts.quick ? 1 : 3); round++) {
        const killedPort = await group.primaryPort();
        group.dataNode(killedPort).kill('SIGKILL');
        const killedAt = Date.now();
        const promoted = until('a new primary', async () => ((await group.primaryPort()) !== killedPort ? Date.now() - killedAt : null), 60_000).catch(() => -1);
        // Back: the last 100 calls of each router (half a second of load) succeeded.
        await until(`allocations again after failover ${round + 1}`, async () => (okSince(killedAt, 100) ? true : null), 60_000).catch(async (err: unknown) => {
          // What the routers answer, and what a heartbeat gets now: enough to tell a Redis still
          // away from a node the routers hold dead.
          const recent = calls.slice(-200).filter((c) => c.status !== 200);
          const heartbeat = await nodes!.heartbeat('us-west-1').then((ack) => `200 ${JSON.stringify(ack)}`, (e: unknown) => String(e));
          throw new Error(`${String(err)}; refusals among the last 200 calls: ${JSON.stringify(recent.slice(-2))} (${recent.length}); a heartbeat now: ${heartbeat}`);
        });
        const { after, recoveryMs, refused, refusals } = failoverRecovery(calls, killedAt);
        const promotedPort = await group.primaryPort();
        const promotedAfterMs = await promoted;
        rounds.push({
          killedPort,
          promotedPort,
          recoveryMs,
          promotedAfterMs,
          calls: after.length,
          refused: refused.length,
          refusals,
          badRefusals: refused.filter((c) => c.status !== 503 || !c.retryAfter).length,
        });
        process.stdout.write(`  failover ${round + 1}: :${killedPort} killed, :${promotedPort} promoted, promoted after ${promotedAfterMs} ms, allocations back after ${recoveryMs} ms; ${refused.length} of ${after.length} calls refused (${JSON.stringify(refusals)})\n`);
        // The killed server comes back as a replica of the new primary, and the sentinels see it
        // (else the next kill has nothing to promote).
        await group.restartAsReplica(killedPort);
        await group.settled(promotedPort);
      }
      const sorted = rounds.map((r) => r.recoveryMs).sort((a, b) => a - b);
      clearInterval(pacer);
      await Promise.all(inFlight);
      // After the load: each failover seen by the routers (the leader reconciles after it), and the
      // node counts equal to the participant records on the last primary.
      const actions = await until('every failover seen', async () => {
        const a = await reconcileActions(routers);
        return (a.failover_seen ?? 0) >= rounds.length ? a : null;
      }, 30_000).catch(() => reconcileActions(routers));
      const flat = (await ask(await group.primaryPort(), 'EVAL', COUNTS_VS_RECORDS, 2, `${PREFIX}rooms`, `${PREFIX}nodecount`, `${PREFIX}room:`)) as Array<string | number>;
      const countMismatches: RedisFailoverResult['countMismatches'] = [];
      for (let i = 0; i < flat.length; i += 3) countMismatches.push({ nodeId: String(flat[i]), counted: Number(flat[i + 1]), records: Number(flat[i + 2]) });
      process.stdout.write(`  after the load: reconcile actions ${JSON.stringify(actions)}; node counts vs records: ${countMismatches.length === 0 ? 'equal' : JSON.stringify(countMismatches)}\n`);
      return {
        rounds,
        medianRecoveryMs: sorted[Math.floor(sorted.length / 2)]!,
        ratePerSecond: RATE,
        rooms: ROOMS,
        failoversSeen: actions.failover_seen ?? 0,
        reconcileActions: actions,
        countMismatches,
      };
    } finally {
      clearInterval(pacer);
      await Promise.all(inFlight);
    }
  } finally {
    await nodes?.close();
    await Promise.all(routers.map((r) => r.stop()));
    await group.close();
    await rm(journalDir, { recursive: true, force: true });
  }
}
