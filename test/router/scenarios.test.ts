import { afterEach, describe, expect, it } from 'vitest';
import type { GeoSfuConfig } from '../../shared/config/index.ts';
import { FakeNodes } from '../utils/fake-nodes.ts';
import { allocate } from '../utils/http.ts';
import { startRouter, testConfig, type RunningRouter } from '../utils/router-harness.ts';

/**
 * Placement end to end through POST /allocate: scripted nodes with exact loads and the sample
 * inter-region RTTs, clients with measured latencies, expected homes, edges and cascade sets.
 * Expected values are worked out by hand in each row from the delay model
 * d(a,b) = (rtt(a,A) + rtt(A,B) + rtt(b,B)) / 2.
 */
const SAMPLE_RTT: Record<string, Record<string, number>> = {
  'us-west': { 'us-east': 68, 'eu-west': 133, apac: 170 },
  'us-east': { 'eu-west': 72, apac: 224 },
  'eu-west': { apac: 176 },
};
const NODE = { 'us-west': 'us-west-1', 'us-east': 'us-east-1', 'eu-west': 'eu-west-1', apac: 'apac-1' } as const;

const NEW_YORK = { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 };
const LONDON = { 'us-west': 140, 'us-east': 80, 'eu-west': 5, apac: 180 };
const SINGAPORE = { 'us-west': 165, 'us-east': 225, 'eu-west': 170, apac: 5 };
const SEATTLE = { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 };
const PORTLAND = { 'us-west': 25, 'us-east': 70, 'eu-west': 135, apac: 180 };

interface Join {
  who: string;
  latencies: Record<string, number>;
  expect: { home: string; region: string; cascade: string[]; reasons?: string[]; excluded?: Record<string, string> };
}
interface Row {
  name: string;
  config?: Partial<GeoSfuConfig>;
  /** Changes applied to the nodes before the joins (and their effect waited for). */
  setup?: (nodes: FakeNodes) => void;
  joins: Join[];
}

const rows: Row[] = [
  {
    name: 'single-region room',
    joins: [
      { who: 'alice', latencies: SEATTLE, expect: { home: 'us-west', region: 'us-west', cascade: ['us-west'], reasons: ['CLIENT_MEASURED_RTT', 'FIRST_PARTICIPANT_SETS_HOME'] } },
      // us-west: (25+0+20)/2 = 22.5 beats us-east (70+68+20)/2 = 79.
      { who: 'bob', latencies: PORTLAND, expect: { home: 'us-west', region: 'us-west', cascade: ['us-west'], reasons: ['MIN_MEAN_DELAY'] } },
    ],
  },
  {
    name: 'transatlantic pair',
    joins: [
      { who: 'alice', latencies: NEW_YORK, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'] } },
      // bob: eu-west (5+72+10)/2 = 43.5 < us-east (80+0+10)/2 = 45.
      { who: 'bob', latencies: LONDON, expect: { home: 'us-east', region: 'eu-west', cascade: ['us-east', 'eu-west'], reasons: ['MIN_MEAN_DELAY', 'CASCADE_ADDED'] } },
    ],
  },
  {
    name: 'three continents',
    joins: [
      { who: 'alice', latencies: NEW_YORK, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'] } },
      { who: 'bob', latencies: LONDON, expect: { home: 'us-east', region: 'eu-west', cascade: ['us-east', 'eu-west'] } },
      // carol: apac ((5+224+10)/2 + (5+176+5)/2)/2 = 106.25 < eu-west ((170+72+10)/2 + (170+0+5)/2)/2 = 106.75.
      { who: 'carol', latencies: SINGAPORE, expect: { home: 'us-east', region: 'apac', cascade: ['us-east', 'eu-west', 'apac'], reasons: ['CASCADE_ADDED'] } },
    ],
  },
  {
    name: 'margin keeps a newcomer in a region already in the room',
    config: { marginMs: 20 },
    joins: [
      { who: 'alice', latencies: NEW_YORK, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'] } },
      // bob: eu-west saves 45 - 43.5 = 1.5 ms < 20 over us-east, already in the room.
      { who: 'bob', latencies: LONDON, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'], reasons: ['KEPT_IN_ROOM_REGION_BY_MARGIN'] } },
    ],
  },
  {
    name: 'margin does not hold back a large saving',
    config: { marginMs: 20 },
    joins: [
      { who: 'alice', latencies: NEW_YORK, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'] } },
      // A Singapore client with poor transit to the US: apac (5+224+10)/2 = 119.5 vs us-east (300+0+10)/2 = 155,
      // us-west (190+68+10)/2 = 134, eu-west (200+72+10)/2 = 141: apac saves 35.5 > 20.
      {
        who: 'carol',
        latencies: { 'us-west': 190, 'us-east': 300, 'eu-west': 200, apac: 5 },
        expect: { home: 'us-east', region: 'apac', cascade: ['us-east', 'apac'], reasons: ['CASCADE_ADDED'] },
      },
    ],
  },
  {
    name: 'dead node gets no participants',
    setup: (nodes) => nodes.silence(NODE.apac),
    // carol: us-west 165 < eu-west 170 (apac dead).
    joins: [{ who: 'carol', latencies: SINGAPORE, expect: { home: 'us-west', region: 'us-west', cascade: ['us-west'], excluded: { apac: 'NODE_DEAD' } } }],
  },
  {
    name: 'cordoned node gets no participants',
    setup: (nodes) => nodes.set(NODE['eu-west'], { cordoned: true }),
    joins: [{ who: 'bob', latencies: LONDON, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'], excluded: { 'eu-west': 'CORDONED' } } }],
  },
  {
    name: 'overloaded node (cpu over the 70% limit) gets no participants',
    setup: (nodes) => nodes.set(NODE['us-east'], { load: { cpu: 0.75 } }),
    // alice: us-west 70 < eu-west 80.
    joins: [{ who: 'alice', latencies: NEW_YORK, expect: { home: 'us-west', region: 'us-west', cascade: ['us-west'], excluded: { 'us-east': 'OVERLOADED' } } }],
  },
  {
    name: 'draining node gets no participants',
    setup: (nodes) => nodes.set(NODE['us-west'], { draining: true }),
    // dave (Seattle): us-east 75 < eu-west 140.
    joins: [{ who: 'dave', latencies: SEATTLE, expect: { home: 'us-east', region: 'us-east', cascade: ['us-east'], excluded: { 'us-west': 'DRAINING' } } }],
  },
];

let router: RunningRouter | null = null;
let nodes: FakeNodes | null = null;
afterEach(async () => {
  await nodes?.close();
  await router?.close();
  nodes = null;
  router = null;
});

async function startWorld(overrides: Partial<GeoSfuConfig> = {}) {
  router = await startRouter(testConfig('memory', overrides));
  nodes = new FakeNodes(router.url, router.config.clusterSecret);
  await nodes.start(router.config.heartbeatIntervalMs);
  for (const [region, nodeId] of Object.entries(NODE)) await nodes.add({ nodeId, region });
  for (const [a, row] of Object.entries(SAMPLE_RTT)) {
    for (const [b, rtt] of Object.entries(row)) {
      nodes.setPeerRtt(NODE[a as keyof typeof NODE], NODE[b as keyof typeof NODE], rtt);
      nodes.setPeerRtt(NODE[b as keyof typeof NODE], NODE[a as keyof typeof NODE], rtt);
    }
  }
  await nodes.heartbeatAll();
  await router.app.registry.refresh();
  return { router, nodes };
}

describe('placement scenarios through POST /allocate', () => {
  it.each(rows)('$name', async (row) => {
    const world = await startWorld(row.config);
    if (row.setup) {
      row.setup(world.nodes);
      // Let a heartbeat carry the change, or let a silenced node age past the dead threshold.
      await new Promise((r) => setTimeout(r, world.router.config.deadAfterMs + 300));
      await world.router.app.registry.refresh();
    }
    const roomId = `room-${row.name.replace(/\W+/g, '-')}`;
    for (const join of row.joins) {
      const res = await allocate(world.router.url, { roomId, participantId: join.who, latencies: join.latencies });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect({ who: join.who, home: res.body.homeRegion, region: res.body.region, cascade: res.body.cascade.regions }).toEqual({
        who: join.who,
        home: join.expect.home,
        region: join.expect.region,
        cascade: join.expect.cascade,
      });
      expect(res.body.node.region).toBe(join.expect.region);
      const codes = res.body.reasons.map((r) => r.code);
      for (const code of join.expect.reasons ?? []) expect(codes).toContain(code);
      for (const [region, code] of Object.entries(join.expect.excluded ?? {})) {
        expect(res.body.candidates.find((c) => c.region === region)?.excludedBecause).toBe(code);
      }
    }
  });

  it('full home region: newcomers overflow to the best other region', async () => {
    const world = await startWorld();
    const first = await allocate(world.router.url, { roomId: 'overflow', participantId: 'alice', latencies: NEW_YORK });
    expect(first.body.homeRegion).toBe('us-east');
    world.nodes.set(NODE['us-east'], { load: { cpu: 0.9 } });
    await world.nodes.heartbeatAll();
    await world.router.app.registry.refresh();
    // dave (New York): us-west (70+68+10)/2 = 74 < eu-west (80+72+10)/2 = 81.
    const dave = await allocate(world.router.url, { roomId: 'overflow', participantId: 'dave', latencies: NEW_YORK });
    expect(dave.status).toBe(200);
    expect([dave.body.homeRegion, dave.body.region, dave.body.cascade.regions]).toEqual(['us-east', 'us-west', ['us-east', 'us-west']]);
    expect(dave.body.reasons.map((r) => r.code)).toContain('HOME_REGION_UNAVAILABLE');
  });

  it('every region unavailable: 503 with Retry-After, and nothing is stored', async () => {
    const world = await startWorld();
    for (const nodeId of Object.values(NODE)) world.nodes.set(nodeId, { cordoned: true });
    await world.nodes.heartbeatAll();
    await world.router.app.registry.refresh();
    const res = await allocate(world.router.url, { roomId: 'nowhere', participantId: 'alice', latencies: NEW_YORK });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(await world.router.app.rooms.getRoom('nowhere')).toBeNull();
  });

  it('client IP: geoip for API-key callers, the request address (loopback: defaults) otherwise', async () => {
    const world = await startWorld();
    const londonIp = '81.2.69.160';
    const withKey = await allocate(world.router.url, { roomId: 'geo1', participantId: 'p', clientIp: londonIp }, { authorization: `Bearer ${world.router.config.apiKey}` });
    expect(withKey.status).toBe(200);
    expect(withKey.body.rttSource).toBe('geoip');
    expect(withKey.body.region).toBe('eu-west');
    expect(withKey.body.reasons[0]!.code).toBe('GEOIP_ESTIMATED_RTT');
    const withoutKey = await allocate(world.router.url, { roomId: 'geo2', participantId: 'p', clientIp: londonIp });
    expect(withoutKey.status).toBe(200);
    expect(withoutKey.body.rttSource).toBe('default');
    // All regions equal: catalog order decides.
    expect(withoutKey.body.region).toBe('us-west');
  });
});
