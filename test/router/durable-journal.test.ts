import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { RedisRoomStore } from '../../router/state/redis-room-store.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace, testConfig } from '../utils/router-harness.ts';
import { type ServiceProcess, spawnRouter } from '../utils/service-process.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';

/**
 * The durable degraded journal (router/allocation/degraded-journal.ts) with real processes: a router
 * cut from Redis allocates from local state, is SIGKILLed, fails to start again while Redis is still
 * away, and once Redis is back starts and writes every allocation it had acknowledged into Redis
 * exactly once: none lost, none twice.
 */
const SECRETS = testConfig('memory');
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  await cleanupNamespaces();
});

const US_WEST = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };
const DEGRADED = 30;

it('allocations acknowledged with Redis away survive the router\'s SIGKILL and reach Redis exactly once', async () => {
  const ns = runNamespace();
  const journalDir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-journal-test-'));
  cleanup.push(() => rm(journalDir, { recursive: true, force: true }));
  const target = new URL(REDIS_URL);
  const proxy = await TcpFaultProxy.start(target.hostname, Number(target.port));
  cleanup.push(() => proxy.close());
  const redisUrl = new URL(target);
  redisUrl.port = String(proxy.port);
  const env = {
    REDIS_URL: redisUrl.href,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_JOURNAL_DIR: journalDir,
    GEO_SFU_CLUSTER_SECRET: SECRETS.clusterSecret,
    GEO_SFU_TOKEN_SECRETS: SECRETS.tokenKeys.map((k) => `${k.kid}:${k.secret}`).join(','),
    GEO_SFU_API_KEY: SECRETS.apiKey,
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_REDIS_TIMEOUT_MS: '1000',
    GEO_SFU_DEGRADED_SEATS_PER_NODE: String(DEGRADED),
    GEO_SFU_HEARTBEAT_INTERVAL_MS: '200',
  };
  let router: ServiceProcess = await spawnRouter(env);
  const port = router.port;
  cleanup.push(() => router.stop());
  const nodes = new FakeNodes(router.url, SECRETS.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 1_000 });
  const auth = { authorization: `Bearer ${SECRETS.apiKey}` };
  // The router must have read the node before it can place; then the room is one it knows.
  const deadline = Date.now() + 10_000;
  while ((await allocate(router.url, { roomId: 'durable', participantId: 'first', latencies: US_WEST }, auth)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`first allocation failed:\n${router.output.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  proxy.cut();
  const acknowledged: string[] = [];
  const ms: number[] = [];
  for (let i = 0; i < DEGRADED; i++) {
    const started = performance.now();
    const res = await allocate(router.url, { roomId: 'durable', participantId: `p${i}`, latencies: US_WEST }, auth);
    ms.push(performance.now() - started);
    if (res.status === 200) acknowledged.push(res.body.allocationId!);
  }
  ms.sort((x, y) => x - y);
  console.log(`degraded allocations (journal fsynced before each answer): ${acknowledged.length}/${DEGRADED} acknowledged, median ${ms[ms.length >> 1]!.toFixed(1)} ms, max ${ms[ms.length - 1]!.toFixed(1)} ms`);
  expect(acknowledged.length).toBe(DEGRADED);

  router.child.kill('SIGKILL');
  await new Promise((resolve) => router.child.once('exit', resolve));
  const onDisk = (await readdir(journalDir)).filter((f) => f.endsWith('.jsonl'));
  expect(onDisk).toHaveLength(1);
  const journalBytes = (await readFile(path.join(journalDir, onDisk[0]!))).length;
  console.log(`journal file at the kill: ${journalBytes} bytes for ${DEGRADED} allocations (${Math.round(journalBytes / DEGRADED)} bytes each)`);
  // Restarted while Redis is still away: it refuses to start, and the journal stays as it was.
  await expect(spawnRouter(env, port)).rejects.toThrow(/exited/);
  expect((await readFile(path.join(journalDir, onDisk[0]!), 'utf8')).split('\n').filter(Boolean)).toHaveLength(DEGRADED);

  proxy.restore();
  router = await spawnRouter(env, port);
  const store = await RedisRoomStore.open({ url: REDIS_URL, keyPrefix: ns.redisKeyPrefix, timeoutMs: 2_000, roomIdleTtlMs: 300_000 });
  cleanup.push(() => store.close());
  const replayDeadline = Date.now() + 10_000;
  let inRedis: string[] = [];
  while (Date.now() < replayDeadline) {
    inRedis = ((await store.getRoom('durable'))?.participants ?? []).map((p) => p.allocationId);
    if (acknowledged.every((id) => inRedis.includes(id))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(router.output.join('\n')).toMatch(/degraded journal adopted from disk/);
  expect(acknowledged.filter((id) => !inRedis.includes(id))).toEqual([]);
  expect(inRedis).toHaveLength(DEGRADED + 1);
  expect(new Set(inRedis).size).toBe(inRedis.length);
  expect((await store.nodeCounts()).get('us-west-1')).toBe(DEGRADED + 1);
  // Written out: the file is emptied (nothing to adopt at the next start).
  const journalText = async () => (await Promise.all((await readdir(journalDir)).map((f) => readFile(path.join(journalDir, f), 'utf8')))).join('');
  while ((await journalText()) !== '' && Date.now() < replayDeadline) await new Promise((r) => setTimeout(r, 100));
  expect(await journalText()).toBe('');
});
