import { afterAll, expect, it } from 'vitest';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, runNamespace, startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';
import { ask, SENTINEL_GROUP, startSentinelGroup } from '../utils/sentinel-group.ts';

/**
 * GEO_SFU_REDIS_MIN_REPLICAS_ACK: the router WAITs for the replica after the allocation script, on
 * the Sentinel topology the test starts (primary + replica + three sentinels). Two routers share the
 * state, one without WAIT and one with WAIT 1; each allocation's latency is measured on both.
 */
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
  await cleanupNamespaces();
});

const LATENCIES = { 'us-west': 10, 'us-east': 60, 'eu-west': 130, apac: 170 };
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

it('with WAIT 1 every answered allocation is already on the replica; a replica that does not answer delays it by the wait, then it is served and counted', async () => {
  const group = await startSentinelGroup();
  cleanup.push(() => group.close());
  const primaryPort = await group.primaryPort();
  const replicaPort = group.dataNodePorts.find((p) => p !== primaryPort)!;
  const ns = runNamespace();
  const redisTimeoutMs = 1_000;
  const base = { redisUrl: '', redisSentinels: group.sentinels, redisSentinelName: SENTINEL_GROUP, redisTimeoutMs, maxParticipantsPerNode: 100_000 };
  const routers: RunningRouter[] = [];
  for (const redisMinReplicasAck of [0, 1]) routers.push(await startRouter(testConfig('real', { ...base, redisMinReplicasAck }, ns)));
  cleanup.push(() => Promise.all(routers.map((r) => r.close())));
  const [plain, waiting] = routers as [RunningRouter, RunningRouter];
  const nodes = new FakeNodes(plain.url, plain.config.clusterSecret);
  cleanup.push(() => nodes.close());
  await nodes.start(200);
  await nodes.add({ nodeId: 'us-west-1', region: 'us-west', maxParticipants: 100_000 });
  await Promise.all(routers.map((r) => r.app.registry.refresh()));

  // Alternating, each call a new room, so both settings see the same machine load.
  const elapsed: [number[], number[]] = [[], []];
  for (let i = 0; i < 60; i++) {
    for (const [k, router] of routers.entries()) {
      const roomId = `room-${k}-${i}`;
      const started = performance.now();
      const result = await allocate(router.url, { roomId, participantId: 'p', latencies: LATENCIES });
      elapsed[k]!.push(performance.now() - started);
      expect(result.status).toBe(200);
      // WAIT 1 answered: the replica has the pin already (without WAIT it usually does too, a
      // moment later, which is why only the waiting router is checked).
      if (router === waiting) expect(await ask(replicaPort, 'HGET', `${ns.redisKeyPrefix}room:${roomId}`, 'home')).toBe('us-west');
    }
  }
  console.log(`/allocate on Sentinel (primary + 1 replica), median of 60: ${median(elapsed[0]).toFixed(1)} ms without WAIT, ${median(elapsed[1]).toFixed(1)} ms with GEO_SFU_REDIS_MIN_REPLICAS_ACK=1`);
  expect(waiting.app.rooms.replicaAckShortfalls()).toBe(0);

  // The replica stops answering: the waiting router answers after the wait (half the command
  // timeout) with fewer acknowledgements, serves the allocation and counts it; the other is unaffected.
  const replica = group.dataNode(replicaPort);
  replica.kill('SIGSTOP');
  try {
    const started = performance.now();
    const result = await allocate(waiting.url, { roomId: 'room-paused-replica', participantId: 'p', latencies: LATENCIES });
    const waitedMs = performance.now() - started;
    console.log(`replica paused: allocation with WAIT 1 answered ${result.status} after ${waitedMs.toFixed(0)} ms (wait ${redisTimeoutMs / 2} ms)`);
    expect(result.status).toBe(200);
    expect(waitedMs).toBeGreaterThanOrEqual(redisTimeoutMs / 2 - 20);
    expect(waiting.app.rooms.replicaAckShortfalls()).toBe(1);
    expect((await allocate(plain.url, { roomId: 'room-paused-replica-plain', participantId: 'p', latencies: LATENCIES })).status).toBe(200);
    expect(plain.app.rooms.replicaAckShortfalls()).toBe(0);
    const metrics = await (await fetch(`${waiting.url}/metrics`)).text();
    expect(metrics).toMatch(/^geo_sfu_redis_replica_ack_shortfalls 1$/m);
  } finally {
    replica.kill('SIGCONT');
  }
  // Once the replica catches up it holds what was written meanwhile.
  expect(await ask(primaryPort, 'WAIT', 1, 5_000)).toBe(1);
  expect(await ask(replicaPort, 'HGET', `${ns.redisKeyPrefix}room:room-paused-replica`, 'home')).toBe('us-west');
}, 90_000);
