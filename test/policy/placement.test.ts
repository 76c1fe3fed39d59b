import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../bench/placement/dataset.ts';
import { createStrategy, proposeRebalance, type PlacementStrategyKind, type RebalanceParticipant } from '../../router/placement/index.ts';
import type { NormalizedPolicy } from '../../shared/schemas/index.ts';
import { normalizePolicy } from '../../shared/schemas/index.ts';
import { EMPTY_ROOM, REGIONS, interRegion, measuredClient, nodes, placed, placementInput, room } from '../placement/fixtures.ts';

/**
 * The region policy in pure placement: excluded regions (POLICY_RESTRICTED) for every strategy,
 * home and edges; preferred regions on near-ties only; rebalancing never proposes a region outside.
 */
const DATA = loadDataset(fileURLToPath(new URL('../../bench/data/latency.json', import.meta.url)));
const city = (name: string) => DATA.cities.find((c) => c.name === name)!.rttMs;
const policy = (allowedRegions: string[], preferredRegions: string[] = [], allowP2p = false): NormalizedPolicy => ({ allowedRegions, preferredRegions, allowP2p });
const STRATEGIES: PlacementStrategyKind[] = ['min-delay', 'first-joiner', 'nearest'];
const codes = (reasons: Array<{ code: string }>) => reasons.map((r) => r.code);

describe('placement within a region policy', () => {
  it('a first participant in the US of an ["eu-west"] room gets eu-west, every other region POLICY_RESTRICTED', () => {
    for (const kind of STRATEGIES) {
      const result = createStrategy(kind).place(placementInput({ client: measuredClient(city('New York')), room: EMPTY_ROOM, policy: policy(['eu-west']) }));
      expect(result.ok, kind).toBe(true);
      if (!result.ok) continue;
      expect([result.decision.homeRegion, result.decision.region]).toEqual(['eu-west', 'eu-west']);
      expect(codes(result.decision.reasons)).toContain('REGION_POLICY');
      expect(result.decision.candidates.filter((c) => c.excludedBecause === 'POLICY_RESTRICTED').map((c) => c.region)).toEqual(['us-west', 'us-east', 'apac']);
    }
  });

  it('a Singapore participant of a US room stays in the US (apac POLICY_RESTRICTED, even with nodes to spare)', () => {
    const us = room('us-east', 'use-1', [placed('ny', 'us-east', 'use-1', 10)]);
    for (const kind of STRATEGIES) {
      const result = createStrategy(kind).place(placementInput({ client: measuredClient(city('Singapore')), room: us, policy: policy(['us-west', 'us-east']) }));
      if (!result.ok) throw new Error(kind);
      expect(['us-west', 'us-east'], kind).toContain(result.decision.region);
      expect(result.decision.candidates.find((c) => c.region === 'apac')).toMatchObject({ excludedBecause: 'POLICY_RESTRICTED', score: null });
      expect(result.decision.cascadeRegions.every((r) => r === 'us-west' || r === 'us-east')).toBe(true);
    }
  });

  it('no allowed region with a node to spare: refused, never placed outside', () => {
    const overloaded = nodes({ 'euw-1': { stress: 1 } });
    const result = createStrategy('min-delay').place(placementInput({ client: measuredClient(city('London')), room: EMPTY_ROOM, nodes: overloaded, policy: policy(['eu-west']) }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.candidates.map((c) => [c.region, c.excludedBecause])).toEqual([
      ['us-west', 'POLICY_RESTRICTED'],
      ['us-east', 'POLICY_RESTRICTED'],
      ['eu-west', 'OVERLOADED'],
      ['apac', 'POLICY_RESTRICTED'],
    ]);
  });

  it('property: whatever the client, the room and the nodes, the decision is inside the policy', () => {
    const regionSubset = fc.subarray(REGIONS, { minLength: 1 });
    fc.assert(
      fc.property(
        regionSubset,
        fc.constantFrom(...STRATEGIES),
        fc.array(fc.record({ region: fc.constantFrom(...REGIONS), rtt: fc.integer({ min: 1, max: 300 }) }), { maxLength: 6 }),
        fc.tuple(...REGIONS.map(() => fc.integer({ min: 1, max: 300 }))),
        fc.subarray(['usw-1', 'use-1', 'euw-1', 'apac-1']),
        (allowed, kind, others, rtts, overloaded) => {
          const p = policy(REGIONS.filter((r) => allowed.includes(r)));
          const inRoom = others.filter((o) => allowed.includes(o.region)).map((o, i) => placed(`p${i}`, o.region, nodeIn(o.region), o.rtt));
          const snapshot = inRoom.length > 0 ? room(inRoom[0]!.region, inRoom[0]!.nodeId, inRoom) : EMPTY_ROOM;
          const nodeSet = nodes(Object.fromEntries(overloaded.map((id) => [id, { stress: 1 }])));
          const result = createStrategy(kind).place(placementInput({ client: measuredClient(Object.fromEntries(REGIONS.map((r, i) => [r, rtts[i]!]))), room: snapshot, nodes: nodeSet, policy: p }));
          if (result.ok) {
            expect(allowed).toContain(result.decision.region);
            expect(allowed).toContain(result.decision.homeRegion);
            for (const r of result.decision.cascadeRegions) expect(allowed).toContain(r);
          } else {
            for (const c of result.candidates) expect(c.excludedBecause === 'POLICY_RESTRICTED').toBe(!allowed.includes(c.region));
          }
        },
      ),
      { numRuns: 300, seed: 18 },
    );
  });

  it('preferredRegions break near-ties within GEO_SFU_MARGIN_MS, and only those', () => {
    // Made-up RTTs, so the gap between the two allowed regions is known exactly (10 ms).
    const client = measuredClient({ 'us-west': 200, 'us-east': 40, 'eu-west': 50, apac: 250 });
    const p = policy(['us-east', 'eu-west'], ['eu-west']);
    const place = (marginMs: number) => createStrategy('min-delay').place(placementInput({ client, room: EMPTY_ROOM, marginMs, policy: p }));
    const within = place(15);
    if (!within.ok) throw new Error('refused');
    expect(within.decision.region).toBe('eu-west');
    expect(within.decision.reasons.find((r) => r.code === 'PREFERRED_REGION')).toMatchObject({ region: 'eu-west', valueMs: 10 });
    const beyond = place(5);
    if (!beyond.ok) throw new Error('refused');
    expect(beyond.decision.region).toBe('us-east');
    expect(codes(beyond.decision.reasons)).not.toContain('PREFERRED_REGION');
    // An edge for a newcomer: the same rule on the mean delay (nearest strategy: on its own RTT).
    const nearest = createStrategy('nearest').place(placementInput({ client, room: room('us-east', 'use-1', [placed('a', 'us-east', 'use-1', 10)]), marginMs: 15, policy: p }));
    if (!nearest.ok) throw new Error('refused');
    expect(nearest.decision.region).toBe('eu-west');
  });
});

describe('rebalancing within a region policy', () => {
  const ASIA = ['Mumbai', 'Delhi', 'Dhaka', 'Bangkok', 'Singapore', 'Beijing'];
  const person = (name: string, region: string): RebalanceParticipant => ({ participantId: name, region, nodeId: nodeIn(region), rttMs: city(name), status: 'joined', lastMovedAtMs: null });
  const input = (participants: RebalanceParticipant[], p: NormalizedPolicy | null) => ({
    regions: REGIONS,
    nodes: nodes(),
    interRegionRtt: interRegion(),
    home: { region: 'eu-west', nodeId: 'euw-1' },
    participants,
    nowMs: 1_000_000,
    thresholds: { minRoomGainMs: 1, minPersonGainMs: 2, personWindowMs: 300_000 },
    policy: p,
  });

  it('never proposes a region outside the policy, where without one it would', () => {
    const everyone = [person('Paris', 'eu-west'), ...ASIA.map((c) => person(c, 'eu-west'))];
    const free = proposeRebalance(input(everyone, null));
    expect(free.moves.map((m) => m.to.region)).toContain('apac');
    const bounded = proposeRebalance(input(everyone, policy(['us-west', 'us-east', 'eu-west'])));
    for (const move of bounded.moves) expect(['us-west', 'us-east', 'eu-west']).toContain(move.to.region);
    expect(['us-west', 'us-east', 'eu-west']).toContain(bounded.home.region);
  });

  it('property: every move and the home stay inside the policy', () => {
    const names = DATA.cities.map((c) => c.name);
    fc.assert(
      fc.property(fc.subarray(REGIONS, { minLength: 1 }), fc.array(fc.constantFrom(...names), { minLength: 2, maxLength: 12 }), (allowed, cities) => {
        const p = policy(REGIONS.filter((r) => allowed.includes(r)));
        const start = p.allowedRegions[0]!;
        const proposal = proposeRebalance({ ...input(cities.map((c, i) => ({ ...person(c, start), participantId: `${c}-${i}` })), p), home: { region: start, nodeId: nodeIn(start) } });
        for (const move of proposal.moves) expect(allowed).toContain(move.to.region);
        expect(allowed).toContain(proposal.home.region);
      }),
      { numRuns: 200, seed: 18 },
    );
  });
});

describe('normalizePolicy', () => {
  it('orders regions by the catalog, defaults allowP2p, and names the field of an unknown or unallowed region', () => {
    expect(normalizePolicy({ allowedRegions: ['apac', 'us-west'] }, REGIONS)).toEqual({ allowedRegions: ['us-west', 'apac'], preferredRegions: [], allowP2p: false });
    expect(normalizePolicy({ allowedRegions: ['eu-west', 'mars'] }, REGIONS)).toMatchObject({ field: 'policy.allowedRegions' });
    expect(normalizePolicy({ allowedRegions: ['eu-west'], preferredRegions: ['__proto__'] }, REGIONS)).toMatchObject({ field: 'policy.preferredRegions' });
    expect(normalizePolicy({ allowedRegions: ['eu-west'], preferredRegions: ['apac'] }, REGIONS)).toMatchObject({ field: 'policy.preferredRegions', message: expect.stringMatching(/not one of the allowed/) });
  });
});

function nodeIn(region: string): string {
  return nodes().find((n) => n.region === region)!.nodeId;
}
