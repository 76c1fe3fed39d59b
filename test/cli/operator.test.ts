import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchEmbedded, type Embedded } from '../../infra/embedded/launcher.ts';
import { loadConfig } from '../../shared/config/index.ts';
import type { AllocatePreview, NodeAdminStatus, NodeView, QualityAlert, RegionsResponse, RoomView, ScalingView } from '../../shared/schemas/index.ts';
import type { GeoSfuClient, GeoSfuRoom } from '../../sdk/index.ts';
import { fakeMediaClient, fakeTrack, waitHealthy } from '../sdk/helpers.ts';
import { TEST_REDIS_URL, TestRedisKeys } from '../utils/test-backends.ts';
import { runCli } from './helpers.ts';

/**
 * The operator commands against one live embedded cluster (router + one agent per region, real
 * SFUs, Redis with this run's key prefix): nodes (list, cordon, uncordon, drain), rooms (list,
 * show and its alias, kick), alerts, scaling and allocate --dry-run, each with --json checked.
 * The tests run in order on the same cluster: the drain, which stops a node for good, comes last.
 */

const redisKeys = new TestRedisKeys();
const prefix = redisKeys.prefix();
let embedded: Embedded;
const output: string[] = [];

/** Near us-west, far from the rest: a participant that lands on us-west-1. */
const NEAR_US_WEST = { 'us-west': 10, 'us-east': 70, 'eu-west': 140, apac: 170 };
const latencyArgs = (latencies: Record<string, number>) => ['--latency', Object.entries(latencies).map(([r, v]) => `${r}=${v}`).join(',')];

beforeAll(async () => {
  const env = {
    GEO_SFU_LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    GEO_SFU_REDIS_PREFIX: prefix,
    // Allocations stay pending for the whole file; no live rebalancing writes behind the tests.
    GEO_SFU_ALLOCATION_TTL_MS: '600000',
    GEO_SFU_REBALANCE: 'false',
    GEO_SFU_RATE_LIMIT_PER_MINUTE: '0',
    GEO_SFU_PROBE_INTERVAL_MS: '250',
  };
  embedded = await launchEmbedded({ config: loadConfig(env), fixedPorts: false, env, onOutput: (name, line) => output.push(`[${name}] ${line}`) });
  await waitHealthy(embedded, output);
}, 90_000);

afterAll(async () => {
  await embedded?.close();
  await redisKeys.cleanup();
});

/** The CLI with the cluster's admin token (and API key) unless `env` says otherwise. */
const cli = (args: string[], env: Record<string, string> = { GEO_SFU_ADMIN_TOKEN: embedded.credentials.adminToken, GEO_SFU_API_KEY: embedded.credentials.apiKey }) =>
  runCli([...args, '--router', embedded.routerUrl], env);

async function cliJson<T>(args: string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** Polls the router's view (GET /regions, which `nodes --json` prints flattened: checked in the first test). */
async function nodesUntil(what: string, done: (nodes: NodeView[]) => boolean, timeoutMs = 20_000): Promise<NodeView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = (await (await fetch(`${embedded.routerUrl}/regions`)).json()) as RegionsResponse;
    const nodes = view.regions.flatMap((r) => r.nodes);
    if (done(nodes)) return nodes;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(nodes.map((n) => [n.nodeId, n.state, n.cordoned, n.draining, n.occupancy]))}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const node = (nodes: NodeView[], id: string) => nodes.find((n) => n.nodeId === id);

/**
 * Every key of this run's prefix with its value, but the registry's liveness (heartbeats rewrite it
 * every interval) and the shared limits (router/limits.ts): the nonces of every signed call the
 * agents make, and rate-limit windows, which a dry run is meant to count like any call.
 */
async function redisContents(): Promise<Map<string, unknown>> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const out = new Map<string, unknown>();
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1_000 }) as AsyncIterable<string[]>) {
      for (const key of keys) {
        if (key === `${prefix}nodes` || key === `${prefix}node-heartbeats` || key === `${prefix}node-beats` || key.startsWith(`${prefix}nonce:`) || key.startsWith(`${prefix}limit:`)) continue;
        const type = await redis.type(key);
        const value =
          type === 'hash' ? await redis.hgetall(key)
          : type === 'zset' ? await redis.zrange(key, 0, -1, 'WITHSCORES')
          : type === 'set' ? (await redis.smembers(key)).sort()
          : type === 'list' ? await redis.lrange(key, 0, -1)
          : await redis.get(key);
        out.set(key, { type, value });
      }
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

describe('operator commands against the embedded cluster', () => {
  let client: GeoSfuClient;
  let alice: GeoSfuRoom;

  afterAll(async () => {
    await alice?.leave();
  });

  it('nodes: every node with its flags and participants; --json is the router view', async () => {
    const [json, text] = await Promise.all([cliJson<{ nodes: NodeView[] }>(['nodes']), cli(['nodes', 'list'])]);
    const api = (await (await fetch(`${embedded.routerUrl}/regions`)).json()) as RegionsResponse;
    expect(json.nodes.map((n) => n.nodeId)).toEqual(api.regions.flatMap((r) => r.nodes.map((n) => n.nodeId)));
    expect(json.nodes.map((n) => n.nodeId).sort()).toEqual(embedded.agents.map((a) => a.nodeId).sort());
    for (const n of json.nodes) {
      expect(n).toMatchObject({ state: 'alive', cordoned: false, draining: false, occupancy: { joined: 0, pending: 0, total: 0 } });
    }
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/participants = joined \+ pending/);
    expect(text.stdout).toMatch(/us-west-1\s+│ us-west\s+│ alive\s+│/);
  }, 30_000);

  it('one count of participants: 1 joined + 1 pending shows as such in the API, `nodes` and `regions`', async () => {
    client = fakeMediaClient(embedded.routerUrl);
    const allocation = await client.allocate('ops-room', 'alice', { apiKey: embedded.credentials.apiKey, latencies: NEAR_US_WEST });
    alice = await client.join({ allocation, tracks: [fakeTrack('audio')] });
    // bob holds an allocation on the same node and does not join.
    const bob = await cli(['allocate', '--json', '--room', 'ops-room', '--participant', 'bob', ...latencyArgs(NEAR_US_WEST)]);
    expect(bob.code, bob.stderr).toBe(0);
    const edge = alice.edge.nodeId;
    expect(edge).toBe('us-west-1');

    await nodesUntil('1 joined + 1 pending on us-west-1 in the API', (ns) => node(ns, edge)?.occupancy.joined === 1);
    const [{ nodes }, nodesText, regionsText] = await Promise.all([cliJson<{ nodes: NodeView[] }>(['nodes']), cli(['nodes']), cli(['regions'])]);
    expect(node(nodes, edge)!.occupancy).toEqual({ joined: 1, pending: 1, total: 2 });
    expect(node(nodes, edge)!.load.participants).toBe(1);
    expect(node(nodes, edge)!.reserved).toBe(2);
    expect(nodesText.stdout).toMatch(/us-west-1\s+│ us-west\s+│ alive\s+│[^\n]*│\s+1\+1\/\d+ │/);
    expect(regionsText.stdout).toMatch(/us-west-1\s+│ alive\s+│[^\n]*│\s+1\+1\/\d+ │/);
  }, 60_000);

  it('rooms list, rooms show and the `rooms ROOM` alias', async () => {
    const [list, show, alias, listText] = await Promise.all([
      cliJson<{ rooms: Array<{ roomId: string; homeRegion: string; participants: number; joined: number; regions: string[] }> }>(['rooms', 'list']),
      cliJson<RoomView>(['rooms', 'show', 'ops-room']),
      cliJson<RoomView>(['rooms', 'ops-room']),
      cli(['rooms', 'list']),
    ]);
    expect(list.rooms).toContainEqual({ roomId: 'ops-room', homeRegion: 'us-west', participants: 2, joined: 1, regions: ['us-west'] });
    expect(show).toEqual(alias);
    expect(show.participants.map((p) => [p.participantId, p.status]).sort()).toEqual([
      ['alice', 'joined'],
      ['bob', 'allocated'],
    ]);
    expect(listText.stdout).toMatch(/ops-room\s+│ us-west\s+│\s+2 │\s+1 │ us-west/);
  }, 30_000);

  it('alerts and scaling: --json parses, the admin token is needed and named when missing', async () => {
    const [alerts, scaling, scalingText, noToken] = await Promise.all([
      cliJson<{ alerts: QualityAlert[] }>(['alerts']),
      cliJson<ScalingView>(['scaling']),
      cli(['scaling']),
      cli(['alerts', '--json'], {}),
    ]);
    expect(Array.isArray(alerts.alerts)).toBe(true);
    expect(scaling.regions.map((r) => r.region).sort()).toEqual(['apac', 'eu-west', 'us-east', 'us-west']);
    expect(scaling.regions.find((r) => r.region === 'us-west')!.nodes).toBe(1);
    expect(scalingText.stdout).toMatch(/us-west\s+│\s+1 │/);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/GET \/alerts failed: 401 .*\(set GEO_SFU_ADMIN_TOKEN\)/);
    expect(JSON.parse(noToken.stdout)).toMatchObject({ error: { status: 401 } });
  }, 30_000);

  it('allocate --dry-run: the decision, and Redis unchanged (keys and values) for an existing and a new room', async () => {
    const before = await redisContents();
    expect([...before.keys()].some((k) => k.includes('ops-room'))).toBe(true);
    const [existing, fresh, text] = await Promise.all([
      cliJson<{ preview: AllocatePreview }>(['allocate', '--dry-run', '--room', 'ops-room', '--participant', 'carol', ...latencyArgs({ 'us-west': 140, 'us-east': 70, 'eu-west': 5, apac: 170 })]),
      cliJson<{ preview: AllocatePreview }>(['allocate', '--dry-run', '--room', 'dry-only', '--participant', 'dave', ...latencyArgs(NEAR_US_WEST)]),
      cli(['allocate', '--dry-run', '--room', 'dry-only', '--participant', 'erin', ...latencyArgs(NEAR_US_WEST)]),
    ]);
    expect(existing.preview).toMatchObject({ dryRun: true, mode: 'sfu', roomId: 'ops-room', room: { exists: true, homeRegion: 'us-west', participants: 2 }, homeRegion: 'us-west' });
    expect(existing.preview.reasons.length).toBeGreaterThan(0);
    expect(existing.preview.candidates).toHaveLength(4);
    expect(fresh.preview).toMatchObject({ mode: 'sfu', room: { exists: false, homeRegion: null, participants: 0 }, homeRegion: 'us-west', region: 'us-west', node: { id: 'us-west-1' } });
    expect(fresh.preview.reasons.map((r) => r.code)).toContain('FIRST_PARTICIPANT_SETS_HOME');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Dry run: erin would be placed in room dry-only \(nothing reserved, nothing pinned\)/);
    expect(text.stdout).toMatch(/room dry-only does not exist yet/);

    const after = await redisContents();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    expect(after).toEqual(before);
    console.log(`allocate --dry-run: ${before.size} Redis keys (registry liveness, nonces and rate-limit windows aside) identical before and after three dry runs`);
    const room = await fetch(`${embedded.routerUrl}/rooms/dry-only`);
    expect(room.status).toBe(404);
    await room.body?.cancel();
  }, 30_000);

  it('rooms kick removes the participant; an unknown one is a 404, exit 1', async () => {
    const kicked = await cliJson<{ removed: { roomId: string; participantId: string } }>(['rooms', 'kick', 'ops-room', 'bob']);
    expect(kicked).toEqual({ removed: { roomId: 'ops-room', participantId: 'bob' } });
    const room = await cliJson<RoomView>(['rooms', 'show', 'ops-room']);
    expect(room.participants.map((p) => p.participantId)).toEqual(['alice']);
    const again = await cli(['rooms', 'kick', 'ops-room', 'bob']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/DELETE \/rooms\/ops-room\/participants\/bob failed: 404/);
  }, 30_000);

  it('nodes cordon and uncordon, forwarded by the router to the agent; placement follows', async () => {
    const cordoned = await cliJson<{ action: string; node: NodeAdminStatus }>(['nodes', 'cordon', 'us-east-1']);
    expect(cordoned).toMatchObject({ action: 'cordon', node: { nodeId: 'us-east-1', region: 'us-east', cordoned: true, draining: false } });
    await nodesUntil('us-east-1 cordoned in the router view', (ns) => node(ns, 'us-east-1')?.cordoned === true);
    const nearUsEast = latencyArgs({ 'us-west': 70, 'us-east': 5, 'eu-west': 80, apac: 200 });
    const { preview } = await cliJson<{ preview: AllocatePreview }>(['allocate', '--dry-run', '--room', 'east-room', '--participant', 'frank', ...nearUsEast]);
    expect(preview.region).not.toBe('us-east');
    expect(preview.candidates.find((c) => c.region === 'us-east')!.excludedBecause).toBe('CORDONED');

    const text = await cli(['nodes', 'uncordon', 'us-east-1']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/us-east-1 \(us-east\) uncordoned/);
    await nodesUntil('us-east-1 uncordoned in the router view', (ns) => node(ns, 'us-east-1')?.cordoned === false);
    const after = await cliJson<{ preview: AllocatePreview }>(['allocate', '--dry-run', '--room', 'east-room', '--participant', 'frank', ...nearUsEast]);
    expect(after.preview.region).toBe('us-east');

    const [unknown, noToken] = await Promise.all([cli(['nodes', 'cordon', 'no-such-node']), cli(['nodes', 'cordon', 'us-east-1'], {})]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/POST \/nodes\/no-such-node\/cordon failed: 404 NOT_FOUND/);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/401 .*\(set GEO_SFU_ADMIN_TOKEN\)/);
  }, 60_000);

  it('nodes drain: the agent drains, deregisters and exits 0', async () => {
    const apac = embedded.agents.find((a) => a.nodeId === 'apac-1')!;
    const exited = new Promise<number | null>((resolve) => apac.process.once('exit', (code) => resolve(code)));
    const drained = await cliJson<{ action: string; node: NodeAdminStatus }>(['nodes', 'drain', 'apac-1']);
    expect(drained).toMatchObject({ action: 'drain', node: { nodeId: 'apac-1', draining: true } });
    expect(await exited).toBe(0);
    await nodesUntil('apac-1 deregistered', (ns) => node(ns, 'apac-1') === undefined);
    const gone = await cli(['nodes', 'drain', 'apac-1']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/404/);
  }, 60_000);
});
