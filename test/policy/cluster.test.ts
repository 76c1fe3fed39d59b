import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrant } from '../../sdk/server.ts';
import { GeoSfuClientError, NO_ALLOWED_REGION, type GeoSfuRoom, type RoomEvents } from '../../sdk/index.ts';
import type { DashboardSnapshot, RegionPolicy, RegionsResponse, RoomView } from '../../shared/schemas/index.ts';
import { type Cluster, fakeMediaClient, fakeTrack, GRANT_AUDIENCE, GRANT_KEY, startCluster, waitFor } from '../sdk/helpers.ts';
import { firstDashboardEvent } from '../utils/dashboard-events.ts';
import { allocate } from '../utils/http.ts';
import { cleanupNamespaces, REDIS_URL, runNamespace } from '../utils/router-harness.ts';

/**
 * Region policies (docs/region-policy.md) on the embedded default with Redis: a router and one
 * agent per region (real mediasoup, cascade and signaling) behind the sample WAN profile, room
 * state in Redis under a per-run prefix, grants required. One cluster for the file; the tests that
 * drain (us-west) and kill (eu-west) an agent run last.
 */
let cluster: Cluster;
const rooms: GeoSfuRoom[] = [];
const ns = runNamespace();
const TURN_URLS = { 'eu-west': ['turn:turn-euw.test:3478'], 'us-east': ['turn:turn-use.test:3478'], '*': ['turn:turn-any.test:3478'] };
const ICE_SERVERS = [{ urls: 'stun:stun-euw.test:3478', regions: ['eu-west'] }, { urls: 'stun:stun-global.test:3478' }];

const NEW_YORK = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };
// Far from every region but their own, so a loaded machine's inflated inter-region RTTs cannot flip a decision.
const LONDON = { 'us-west': 400, 'us-east': 400, 'eu-west': 5, apac: 400 };
const SINGAPORE = { 'us-west': 180, 'us-east': 240, 'eu-west': 170, apac: 5 };
const MUMBAI = { 'us-west': 182.7, 'us-east': 185.1, 'eu-west': 117.3, apac: 69.6 };
const BOSTON = { 'us-west': 400, 'us-east': 5, 'eu-west': 400, apac: 400 };
const EU: RegionPolicy = { allowedRegions: ['eu-west'] };
const US: RegionPolicy = { allowedRegions: ['us-west', 'us-east'] };
const EU_US: RegionPolicy = { allowedRegions: ['us-east', 'eu-west'] };

const grant = (roomId: string, participantId: string, policy?: RegionPolicy) =>
  createGrant({ key: GRANT_KEY, issuer: 'policy-test', audience: GRANT_AUDIENCE, roomId, participantId, ttlSeconds: 600, nowMs: Date.now(), ...(policy ? { policy } : {}) });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const apiKey = () => bearer(cluster.embedded.credentials.apiKey);
const admin = () => bearer(cluster.embedded.credentials.adminToken);

beforeAll(async () => {
  cluster = await startCluster({
    REDIS_URL,
    GEO_SFU_REDIS_PREFIX: ns.redisKeyPrefix,
    GEO_SFU_REBALANCE: 'true',
    GEO_SFU_REBALANCE_DEBOUNCE_MS: '300',
    GEO_SFU_P2P_FALLBACK: 'true',
    GEO_SFU_TURN_SECRET: 't'.repeat(40),
    GEO_SFU_TURN_URLS: JSON.stringify(TURN_URLS),
    GEO_SFU_TURN_ANY_REGIONS: 'us-west',
    GEO_SFU_ICE_SERVERS: JSON.stringify(ICE_SERVERS),
    // A drained agent tells its clients to move 4 s after SIGTERM (deadline − deadline / 5).
    GEO_SFU_DRAIN_DEADLINE_MS: '5000',
  });
}, 120_000);
afterAll(async () => {
  await Promise.all(rooms.map((r) => r.leave().catch(() => undefined)));
  await cluster?.embedded.close();
  await cleanupNamespaces();
});

async function getJson<T>(path: string, headers: Record<string, string> = {}): Promise<T> {
  return (await (await fetch(`${cluster.embedded.routerUrl}${path}`, { headers })).json()) as T;
}

/** Every URL of an allocation's ICE servers. */
const iceUrls = (servers: Array<{ urls: string | string[] }>) => servers.flatMap((s) => (typeof s.urls === 'string' ? [s.urls] : s.urls)).sort();

describe('placement, refusals and TURN within a policy', () => {
  it('a US participant in an ["eu-west"] room gets eu-west; the room shows its policy; TURN and STUN only tagged eu-west', async () => {
    const res = await allocate(cluster.embedded.routerUrl, { roomId: 'eu-only', participantId: 'nyc', latencies: NEW_YORK, policy: EU }, apiKey());
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect([res.body.homeRegion, res.body.region]).toEqual(['eu-west', 'eu-west']);
    expect(res.body.candidates.filter((c: { excludedBecause?: string }) => c.excludedBecause === 'POLICY_RESTRICTED').map((c: { region: string }) => c.region)).toEqual(['us-west', 'us-east', 'apac']);
    expect(res.body.reasons.map((r: { code: string }) => r.code)).toContain('REGION_POLICY');
    expect(iceUrls(res.body.iceServers)).toEqual(['stun:stun-euw.test:3478', 'turn:turn-euw.test:3478']);
    expect(JSON.stringify(res.body.iceServers)).not.toContain('regions');
    const room = await getJson<RoomView>('/rooms/eu-only');
    expect(room.policy).toEqual({ allowedRegions: ['eu-west'], preferredRegions: [], allowP2p: false });
    // A room without a policy behaves as before: the nearest region, every server.
    const open = await allocate(cluster.embedded.routerUrl, { roomId: 'no-policy', participantId: 'nyc', latencies: NEW_YORK }, apiKey());
    expect(open.body.region).toBe('us-east');
    expect(iceUrls(open.body.iceServers)).toEqual(['stun:stun-euw.test:3478', 'stun:stun-global.test:3478', 'turn:turn-use.test:3478']);
    expect((await getJson<RoomView>('/rooms/no-policy')).policy).toBeUndefined();
  });

  it('a grant\'s ["us-west", "us-east"] room with a participant in Singapore stays in the US (apac POLICY_RESTRICTED)', async () => {
    const first = await allocate(cluster.embedded.routerUrl, { roomId: 'us-only', participantId: 'nyc', latencies: NEW_YORK }, bearer(grant('us-only', 'nyc', US)));
    expect(first.body.region).toBe('us-east');
    const res = await allocate(cluster.embedded.routerUrl, { roomId: 'us-only', participantId: 'sg', latencies: SINGAPORE }, bearer(grant('us-only', 'sg', US)));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(['us-west', 'us-east']).toContain(res.body.region);
    expect(res.body.candidates.find((c: { region: string }) => c.region === 'apac')).toMatchObject({ excludedBecause: 'POLICY_RESTRICTED' });
    expect(res.body.cascade.regions.every((r: string) => r === 'us-west' || r === 'us-east')).toBe(true);
    // us-west has no TURN of its own: the `*` servers stand in, tagged us-west (GEO_SFU_TURN_ANY_REGIONS), which the room allows.
    expect(iceUrls(res.body.iceServers)).toEqual([res.body.region === 'us-west' ? 'turn:turn-any.test:3478' : 'turn:turn-use.test:3478']);
  });

  it('409 POLICY_CONFLICT for a grant whose policy differs from the room\'s (or has none); 400 naming the field; 403 for a grant caller\'s body policy', async () => {
    const url = cluster.embedded.routerUrl;
    for (const policy of [EU_US, undefined]) {
      const res = await allocate(url, { roomId: 'us-only', participantId: 'eve', latencies: NEW_YORK }, bearer(grant('us-only', 'eve', policy)));
      expect([res.status, res.body.error?.code]).toEqual([409, 'POLICY_CONFLICT']);
    }
    // Same regions in another order are the same policy.
    const same = await allocate(url, { roomId: 'us-only', participantId: 'eve', latencies: NEW_YORK }, bearer(grant('us-only', 'eve', { allowedRegions: ['us-east', 'us-west'] })));
    expect(same.status).toBe(200);
    const unknown = await allocate(url, { roomId: 'mars', participantId: 'a', policy: { allowedRegions: ['eu-west', 'mars-1'] } }, apiKey());
    expect([unknown.status, unknown.body.error?.field]).toEqual([400, 'policy.allowedRegions']);
    const proto = await allocate(url, { roomId: 'proto', participantId: 'a', policy: { allowedRegions: ['eu-west'], preferredRegions: ['constructor'] } }, apiKey());
    expect([proto.status, proto.body.error?.field]).toEqual([400, 'policy.preferredRegions']);
    const malformed = await allocate(url, { roomId: 'us-only', participantId: 'eve' }, bearer(grant('us-only', 'eve', { allowedRegions: 'apac' } as unknown as RegionPolicy)));
    expect([malformed.status, malformed.body.error?.code]).toEqual([401, 'BAD_GRANT']);
    const widened = await allocate(url, { roomId: 'us-only', participantId: 'eve', policy: { allowedRegions: ['apac'] } }, bearer(grant('us-only', 'eve', US)));
    expect([widened.status, widened.body.error?.field]).toEqual([403, 'policy']);
    // Nothing was pinned by the refusals.
    expect((await fetch(`${url}/rooms/mars`)).status).toBe(404);
  });

  it('no allowed region can take the room: 503 NO_ALLOWED_REGION with Retry-After; P2P only with allowP2p, its TURN in an allowed region', async () => {
    const eu = cluster.embedded.agents.find((a) => a.region === 'eu-west')!;
    const cordon = (cordoned: boolean) =>
      fetch(`${eu.directUrl}/admin/cordon`, { method: 'POST', headers: { 'content-type': 'application/json', ...admin() }, body: JSON.stringify({ cordoned }) });
    const seen = async (cordoned: boolean) => {
      expect((await cordon(cordoned)).status).toBe(200);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const regions = await getJson<RegionsResponse>('/regions');
        if (regions.regions.find((r) => r.id === 'eu-west')!.nodes.every((n) => n.cordoned === cordoned)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`router did not see eu-west cordoned=${cordoned}`);
    };
    await seen(true);
    try {
      const url = cluster.embedded.routerUrl;
      const refused = await allocate(url, { roomId: 'eu-refused', participantId: 'ldn', latencies: LONDON, policy: EU }, apiKey());
      expect([refused.status, refused.body.error?.code]).toEqual([503, 'NO_ALLOWED_REGION']);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.body.error?.message).toMatch(/eu-west CORDONED/);
      // The SDK throws it at once (not waited out like NO_CAPACITY), with the router's Retry-After.
      const asked = performance.now();
      const sdkRefusal = (await fakeMediaClient(url)
        .allocate('eu-refused', 'ldn-sdk', { apiKey: cluster.embedded.credentials.apiKey, latencies: LONDON, policy: EU })
        .catch((err: unknown) => err)) as GeoSfuClientError;
      expect(sdkRefusal).toBeInstanceOf(GeoSfuClientError);
      expect([sdkRefusal.status, sdkRefusal.code, sdkRefusal.retryAfterMs]).toEqual([503, NO_ALLOWED_REGION, 5_000]);
      expect(performance.now() - asked).toBeLessThan(5_000);
      const p2p = await allocate(url, { roomId: 'eu-p2p', participantId: 'ldn', latencies: LONDON, policy: { ...EU, allowP2p: true } }, apiKey());
      expect(p2p.status, JSON.stringify(p2p.body)).toBe(200);
      expect(p2p.body.mode).toBe('p2p');
      expect(iceUrls(p2p.body.iceServers)).toEqual(['stun:stun-euw.test:3478', 'turn:turn-euw.test:3478']);
      // The P2P room keeps its policy: another one (which a region could take) is refused.
      const other = await allocate(url, { roomId: 'eu-p2p', participantId: 'b', latencies: LONDON, policy: EU_US }, apiKey());
      expect([other.status, other.body.error?.code]).toEqual([409, 'POLICY_CONFLICT']);
      // Without a policy the same client is placed elsewhere, as before.
      const open = await allocate(url, { roomId: 'eu-open', participantId: 'ldn', latencies: LONDON }, apiKey());
      expect([open.body.mode, open.body.region === 'eu-west']).toEqual(['sfu', false]);
    } finally {
      await seen(false);
    }
  });

  it('the OpenAPI document describes `policy` and its codes', async () => {
    const doc = await getJson<{ paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> }; responses: Record<string, { description: string }> } }> }>('/docs/json');
    const post = doc.paths['/allocate']!.post!;
    expect(Object.keys(post.requestBody.content['application/json']!.schema.properties)).toContain('policy');
    expect(JSON.stringify(post.requestBody.content['application/json']!.schema.properties.policy)).toContain('allowedRegions');
    expect(post.responses['409']!.description).toContain('POLICY_CONFLICT');
    expect(post.responses['503']!.description).toContain('NO_ALLOWED_REGION');
  });
});

describe('media within a policy', () => {
  it('the cascade and rebalancing of an ["us-east", "eu-west"] room never reach a node outside it (checked on the agents\' pipes); the dashboard shows the policy', async () => {
    const roomId = 'cascade-policy';
    const join = async (participantId: string, latencies: Record<string, number>) => {
      const client = fakeMediaClient(cluster.embedded.routerUrl);
      const allocation = await client.allocate(roomId, participantId, { apiKey: cluster.embedded.credentials.apiKey, latencies, policy: EU_US });
      const room = await client.join({ allocation, tracks: [fakeTrack('audio')] });
      rooms.push(room);
      return room;
    };
    // Singapore and Mumbai would be nearer on apac (test/policy/placement.test.ts: rebalancing moves
    // such people there without a policy); Boston and London stay put either way.
    const people = [await join('bos', BOSTON), await join('ldn', LONDON), await join('sg', SINGAPORE), await join('bom', MUMBAI)];
    await waitFor('everyone consumes everyone', () => people.every((p) => p.remoteTracks.length === people.length - 1), 20_000);
    // Rebalancing looks at the room (debounce 300 ms) after the joins: wait for its decision.
    const snapshot = await waitForAsync('a rebalancing decision for the room', async () => {
      const s = await dashboardSnapshot();
      return s.rebalancing?.decisions.some((d) => d.roomId === roomId) ? s : null;
    });
    const decisions = snapshot.rebalancing!.decisions.filter((d) => d.roomId === roomId);
    for (const d of decisions) for (const m of d.moves) expect(['us-east', 'eu-west']).toContain(m.to);
    console.log(`rebalancing decisions for ${roomId}: ${decisions.map((d) => `${d.outcome} ${d.moves.map((m) => `${m.participantId} ${m.from}→${m.to}`).join(', ')}`).join('; ')}`);
    expect(snapshot.rooms!.find((r) => r.roomId === roomId)?.policy).toEqual({ allowedRegions: ['us-east', 'eu-west'], preferredRegions: [], allowP2p: false });

    const view = await getJson<RoomView>(`/rooms/${roomId}`);
    const used = new Set(view.participants.map((p) => p.region));
    expect([...used].sort()).toEqual(['eu-west', 'us-east']);
    // The agents' own pipes: only between the two allowed regions, none on the others.
    const pipes = await Promise.all(cluster.embedded.agents.map(async (a) => ({ region: a.region, pipes: agentPipes(await (await fetch(`${a.directUrl}/metrics`)).text()) })));
    console.log(`room on ${[...used].join(', ')}; agents' pipes: ${pipes.map((p) => `${p.region} → ${JSON.stringify(p.pipes)}`).join('; ')}`);
    for (const { region, pipes: byRemote } of pipes) {
      const other = region === 'us-east' ? 'eu-west' : 'us-east';
      if (region === 'us-east' || region === 'eu-west') expect(byRemote).toEqual({ [other]: 1 });
      else expect(byRemote).toEqual({});
    }
    await Promise.all(people.map((p) => p.leave()));

  });

  it('a drained node: its participants move within their room\'s policy (apac), where one without a policy goes to the nearer us-east', async () => {
    const SAN_FRANCISCO = { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 };
    const join = async (roomId: string, policy?: RegionPolicy) => {
      const client = fakeMediaClient(cluster.embedded.routerUrl);
      const allocation = await client.allocate(roomId, 'sf', { apiKey: cluster.embedded.credentials.apiKey, latencies: SAN_FRANCISCO, ...(policy ? { policy } : {}) });
      const room = await client.join({ allocation, tracks: [fakeTrack('audio')] });
      rooms.push(room);
      return room;
    };
    const bound = await join('drain-policy', { allowedRegions: ['us-west', 'apac'] });
    const free = await join('drain-free');
    expect([bound.edge.region, free.edge.region]).toEqual(['us-west', 'us-west']);
    const moves = [bound, free].map((r) => r.next('reconnected', () => true, 30_000));
    const drainedAt = performance.now();
    cluster.embedded.agents.find((a) => a.region === 'us-west')!.process.kill('SIGTERM');
    const [boundBack, freeBack] = await Promise.all(moves);
    console.log(`us-west drained: the policy room moved to ${boundBack!.edge.region}, the other to ${freeBack!.edge.region}, ${Math.round(performance.now() - drainedAt)} ms after SIGTERM`);
    expect([boundBack!.edge.region, freeBack!.edge.region]).toEqual(['apac', 'us-east']);
    const view = await getJson<RoomView>('/rooms/drain-policy');
    expect(view.participants.map((p) => p.region)).toEqual(['apac']);
    await Promise.all([bound.leave(), free.leave()]);
  });

  it('killing the only allowed region\'s node: an ["eu-west"] room refuses (the SDK reports NO_ALLOWED_REGION), an ["us-east", "eu-west"] room re-homes within its policy', async () => {
    const join = async (roomId: string, participantId: string, latencies: Record<string, number>, policy: RegionPolicy, errors: Error[]) => {
      const client = fakeMediaClient(cluster.embedded.routerUrl);
      const allocation = await client.allocate(roomId, participantId, { apiKey: cluster.embedded.credentials.apiKey, latencies, policy });
      const room = await client.join({ allocation, tracks: [fakeTrack('audio')], on: { error: ({ error }: RoomEvents['error']) => errors.push(error) } });
      rooms.push(room);
      return room;
    };
    const aliceErrors: Error[] = [];
    const bobErrors: Error[] = [];
    const alice = await join('only-eu', 'alice', LONDON, EU, aliceErrors);
    const bob = await join('eu-us', 'bob', LONDON, EU_US, bobErrors);
    const carol = await join('eu-us', 'carol', BOSTON, EU_US, []);
    expect([alice.edge.region, bob.edge.region, bob.edge.homeRegion, carol.edge.region]).toEqual(['eu-west', 'eu-west', 'eu-west', 'us-east']);

    const bobBack = bob.next('reconnected', () => true, 30_000);
    const killedAt = performance.now();
    cluster.embedded.agents.find((a) => a.region === 'eu-west')!.process.kill('SIGKILL');
    const refusal = await waitFor('alice told NO_ALLOWED_REGION', () => aliceErrors.find((e) => e instanceof GeoSfuClientError && e.code === NO_ALLOWED_REGION), 20_000);
    console.log(`eu-west killed: alice's SDK reported ${(refusal as GeoSfuClientError).code} after ${Math.round(performance.now() - killedAt)} ms (${refusal.message})`);
    expect(alice.closed).toBe(false);
    expect((refusal as GeoSfuClientError).retryAfterMs).toBeGreaterThan(0);
    const back = await bobBack;
    expect(back.edge.region).toBe('us-east');
    // The rehomer moves eu-us's home to the node left in its policy once eu-west-1 is dead; only-eu keeps its home.
    const rehomed = await waitForAsync('eu-us re-homed', async () => {
      const view = await getJson<RoomView>('/rooms/eu-us');
      return view.homeRegion !== 'eu-west' ? view : null;
    });
    expect(rehomed.homeRegion).toBe('us-east');
    const onlyEu = await getJson<RoomView>('/rooms/only-eu');
    expect([onlyEu.homeRegion, ...onlyEu.participants.map((p) => p.region)].every((r) => r === 'eu-west')).toBe(true);
    await alice.leave();
  });
});

async function waitForAsync<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The first admin snapshot of GET /events. */
const dashboardSnapshot = async (): Promise<DashboardSnapshot> => (await firstDashboardEvent(cluster.embedded.routerUrl, admin())).snapshot!;

/** geo_sfu_agent_pipes from an agent's /metrics, summed by remote region. */
function agentPipes(metrics: string): Record<string, number> {
  const byRemote: Record<string, number> = {};
  for (const m of metrics.matchAll(/^geo_sfu_agent_pipes\{([^}]*)\} (\d+)/gm)) {
    const remote = /remote_region="([^"]+)"/.exec(m[1]!)![1]!;
    const n = Number(m[2]);
    if (n > 0) byRemote[remote] = (byRemote[remote] ?? 0) + n;
  }
  return byRemote;
}
