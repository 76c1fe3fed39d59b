import { expect, it } from 'vitest';
import { clientLink, clientRtt, interRegionLink, wanProfileProblems, type WanProfile } from '../../infra/embedded/wan-profile.ts';

const REGIONS = ['us-west', 'us-east', 'eu-west'];
const RTT = { 'us-west': { 'us-east': 68, 'eu-west': 130 }, 'us-east': { 'eu-west': 72 } };

it('accepts loss and jitter as one number for every inter-region link or per pair, and resolves each link', () => {
  const perPair: WanProfile = { interRegionRttMs: RTT, interRegionLossPct: { 'eu-west': { 'us-west': 1 } }, interRegionJitterMs: { 'us-west': { 'eu-west': 10 } } };
  expect(wanProfileProblems(perPair, REGIONS)).toEqual([]);
  // Either direction of the pair; pairs not listed are clean; within a region nothing is emulated.
  expect(interRegionLink(perPair, 'us-west', 'eu-west')).toEqual({ oneWayDelayMs: 65, jitterMs: 10, lossPct: 1 });
  expect(interRegionLink(perPair, 'eu-west', 'us-west')).toEqual({ oneWayDelayMs: 65, jitterMs: 10, lossPct: 1 });
  expect(interRegionLink(perPair, 'us-east', 'eu-west')).toEqual({ oneWayDelayMs: 36, jitterMs: 0, lossPct: 0 });
  expect(interRegionLink(perPair, 'us-east', 'us-east')).toEqual({ oneWayDelayMs: 0, jitterMs: 0, lossPct: 0 });

  const everywhere: WanProfile = { interRegionRttMs: RTT, interRegionLossPct: 3, interRegionJitterMs: 20 };
  expect(wanProfileProblems(everywhere, REGIONS)).toEqual([]);
  expect(interRegionLink(everywhere, 'us-east', 'us-west')).toEqual({ oneWayDelayMs: 34, jitterMs: 20, lossPct: 3 });
  // A profile without impairments is clean links, as before.
  expect(interRegionLink({ interRegionRttMs: RTT }, 'us-west', 'us-east')).toEqual({ oneWayDelayMs: 34, jitterMs: 0, lossPct: 0 });
});

it('names each bad field: out-of-range or non-numeric loss and jitter, unknown regions, reserved names', () => {
  const problems = (p: Record<string, unknown>) => wanProfileProblems({ interRegionRttMs: RTT, ...p }, REGIONS);
  expect(problems({ interRegionLossPct: 101 })).toEqual(['interRegionLossPct: must be a percentage in [0, 100], or a matrix of them like interRegionRttMs']);
  expect(problems({ interRegionLossPct: -1 })).toHaveLength(1);
  expect(problems({ interRegionJitterMs: '10' })).toEqual(['interRegionJitterMs must be an object']);
  expect(problems({ interRegionJitterMs: { 'us-west': { 'eu-west': 20_000 } } })).toEqual(['interRegionJitterMs.us-west.eu-west: must be a number of ms in [0, 10000]']);
  expect(problems({ interRegionLossPct: { mars: { 'us-west': 1 } } })).toEqual(['interRegionLossPct.mars: not a catalog region']);
  expect(problems({ interRegionLossPct: { 'us-west': 1 } })).toEqual(['interRegionLossPct.us-west must be an object']);
  expect(problems({ interRegionLossPct: [1] })).toEqual(['interRegionLossPct must be an object']);
  // Object.prototype names as regions are not regions (a JSON profile may hold them as own keys).
  const reserved = JSON.parse('{"interRegionRttMs": {"__proto__": {"us-west": 1}, "us-west": {"us-east": 68, "eu-west": 130}, "us-east": {"eu-west": 72}}, "interRegionJitterMs": {"constructor": {"toString": 5}}}') as unknown;
  expect(wanProfileProblems(reserved, REGIONS)).toEqual([
    'interRegionRttMs.__proto__: not a catalog region',
    'interRegionJitterMs.constructor: not a catalog region',
    'interRegionJitterMs.constructor.toString: not a catalog region',
  ]);
  expect(interRegionLink(reserved as WanProfile, 'us-west', 'eu-west')).toEqual({ oneWayDelayMs: 65, jitterMs: 0, lossPct: 0 });
  expect(wanProfileProblems([], REGIONS)).toEqual(['must be a JSON object']);
  expect(wanProfileProblems({ interRegionRttMs: { 'us-west': { 'us-east': 68 } } }, REGIONS)).toEqual(['interRegionRttMs: no RTT between eu-west and us-west', 'interRegionRttMs: no RTT between eu-west and us-east']);
});

it('accepts client loss and jitter as one number for every region or per region, and resolves each region’s client link', () => {
  const perRegion: WanProfile = { interRegionRttMs: RTT, clientRttMs: { 'us-west': 20, 'eu-west': 140 }, clientLossPct: { 'us-west': 5 }, clientJitterMs: { 'eu-west': 15 } };
  expect(wanProfileProblems(perRegion, REGIONS)).toEqual([]);
  // Half the region's client RTT each way, with the region's loss and jitter (0 when only the other is given).
  expect(clientLink(perRegion, 'us-west')).toEqual({ oneWayDelayMs: 10, jitterMs: 0, lossPct: 5 });
  expect(clientLink(perRegion, 'eu-west')).toEqual({ oneWayDelayMs: 70, jitterMs: 15, lossPct: 0 });
  // A region with neither is not emulated for media (signaling keeps its delay proxy).
  expect(clientLink(perRegion, 'us-east')).toBeNull();

  const everywhere: WanProfile = { interRegionRttMs: RTT, clientRttMs: { 'us-east': 30 }, clientLossPct: 2, clientJitterMs: 8 };
  expect(wanProfileProblems(everywhere, REGIONS)).toEqual([]);
  expect(clientLink(everywhere, 'us-east')).toEqual({ oneWayDelayMs: 15, jitterMs: 8, lossPct: 2 });
  // No client RTT for the region: no delay, the loss and jitter still apply.
  expect(clientLink(everywhere, 'us-west')).toEqual({ oneWayDelayMs: 0, jitterMs: 8, lossPct: 2 });
  // Given as 0 still puts the relay in (the client RTT then applies to media too).
  expect(clientLink({ interRegionRttMs: RTT, clientRttMs: { 'us-west': 20 }, clientLossPct: 0 }, 'us-west')).toEqual({ oneWayDelayMs: 10, jitterMs: 0, lossPct: 0 });
  // Without them, as before: no region's client media is emulated.
  for (const region of REGIONS) expect(clientLink({ interRegionRttMs: RTT, clientRttMs: { 'us-west': 20 } }, region)).toBeNull();
  expect(clientRtt({ interRegionRttMs: RTT, clientRttMs: { 'us-west': 20 } }, 'us-west')).toBe(20);
});

it('names each bad client field: out-of-range or non-numeric values, arrays, unknown regions', () => {
  const problems = (p: Record<string, unknown>) => wanProfileProblems({ interRegionRttMs: RTT, ...p }, REGIONS);
  expect(problems({ clientLossPct: 100.5 })).toEqual(['clientLossPct: must be a percentage in [0, 100], or an object of them per region like clientRttMs']);
  expect(problems({ clientLossPct: -0.1 })).toHaveLength(1);
  expect(problems({ clientLossPct: Number.NaN })).toHaveLength(1);
  expect(problems({ clientJitterMs: 10_001 })).toEqual(['clientJitterMs: must be a number of ms in [0, 10000], or an object of them per region like clientRttMs']);
  expect(problems({ clientJitterMs: '10' })).toEqual(['clientJitterMs must be an object']);
  expect(problems({ clientJitterMs: null })).toEqual(['clientJitterMs must be an object']);
  expect(problems({ clientLossPct: [5] })).toEqual(['clientLossPct must be an object']);
  expect(problems({ clientLossPct: { 'us-west': 101, 'eu-west': '1', 'us-east': 1 } })).toEqual([
    'clientLossPct.us-west: must be a percentage in [0, 100]',
    'clientLossPct.eu-west: must be a percentage in [0, 100]',
  ]);
  expect(problems({ clientJitterMs: { 'us-west': { 'eu-west': 5 } } })).toEqual(['clientJitterMs.us-west: must be a number of ms in [0, 10000]']);
  expect(problems({ clientLossPct: { mars: 1 } })).toEqual(['clientLossPct.mars: not a catalog region']);
  expect(problems({ clientJitterMs: { mars: -1 } })).toEqual(['clientJitterMs.mars: not a catalog region', 'clientJitterMs.mars: must be a number of ms in [0, 10000]']);
  // Both fields' problems are reported together, with the others'.
  expect(problems({ clientRttMs: { mars: 1 }, clientLossPct: 200, clientJitterMs: [] })).toEqual([
    'clientRttMs.mars: not a catalog region',
    'clientLossPct: must be a percentage in [0, 100], or an object of them per region like clientRttMs',
    'clientJitterMs must be an object',
  ]);
});

it('refuses Object.prototype names as client regions, and never reads an inherited value for a region', () => {
  const RESERVED = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf', 'prototype'];
  for (const name of RESERVED) {
    for (const field of ['clientRttMs', 'clientLossPct', 'clientJitterMs']) {
      // As a JSON profile holds it: an own key, even `__proto__`.
      const parsed = JSON.parse(`{"interRegionRttMs": ${JSON.stringify(RTT)}, "${field}": {"${name}": 5, "us-west": 1}}`) as Record<string, unknown>;
      expect(Object.keys(parsed[field] as object)).toContain(name);
      expect(wanProfileProblems(parsed, REGIONS), `${field}.${name}`).toEqual([`${field}.${name}: not a catalog region`]);
      // A bad value with it: both named, nothing thrown.
      const bad = JSON.parse(`{"interRegionRttMs": ${JSON.stringify(RTT)}, "${field}": {"${name}": {"x": 1}}}`) as unknown;
      expect(wanProfileProblems(bad, REGIONS)).toHaveLength(2);
    }
  }
  // A catalog that had such a region name would find no value for it that the profile did not give
  // (nothing inherited from Object.prototype), and the names the profile gave are its own.
  const profile = JSON.parse(`{"interRegionRttMs": {"constructor": {"__proto__": 10}}, "clientRttMs": {"constructor": 40}, "clientLossPct": {"__proto__": 3}}`) as WanProfile;
  expect(clientRtt(profile, 'constructor')).toBe(40);
  expect(clientRtt(profile, 'toString')).toBeUndefined();
  expect(clientLink(profile, '__proto__')).toEqual({ oneWayDelayMs: 0, jitterMs: 0, lossPct: 3 });
  expect(clientLink(profile, 'constructor')).toBeNull();
  for (const name of ['toString', 'valueOf', 'hasOwnProperty', 'prototype']) expect(clientLink(profile, name), name).toBeNull();
  expect(wanProfileProblems(profile, ['constructor', '__proto__'])).toEqual([]);
  // The JSON profile's own `__proto__` key did not become its prototype.
  expect(Object.getPrototypeOf(profile.clientLossPct)).toBe(Object.prototype);
});

it('fuzz: random client fields never throw, and every problem names its field', () => {
  const keys = ['us-west', 'mars', '__proto__', 'constructor', 'toString', '', ' ', 'US-WEST', 'eu-west.x', '0'];
  const values: unknown[] = [0, 1, 50, 100, 100.01, -1, 1e9, Number.NaN, '5', null, true, [], {}, [1], { a: 1 }];
  let seed = 7;
  const random = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  let valid = 0;
  for (let i = 0; i < 2_000; i++) {
    const fields: Record<string, unknown> = {};
    for (const field of ['clientRttMs', 'clientLossPct', 'clientJitterMs']) {
      const shape = random();
      if (shape < 0.25) continue;
      if (shape < 0.5) fields[field] = pick(values);
      else {
        const entries = Array.from({ length: 1 + Math.floor(random() * 3) }, () => `${JSON.stringify(pick(keys))}: ${JSON.stringify(pick(values)) ?? 'null'}`);
        fields[field] = JSON.parse(`{${entries.join(',')}}`);
      }
    }
    const json = JSON.parse(JSON.stringify({ interRegionRttMs: RTT, ...fields })) as unknown;
    const problems = wanProfileProblems(json, REGIONS);
    for (const p of problems) expect(p).toMatch(/^(clientRttMs|clientLossPct|clientJitterMs)[.: ]/);
    if (problems.length === 0) {
      valid++;
      // A profile found valid resolves every catalog region to a link with values in range (or none).
      for (const region of REGIONS) {
        const link = clientLink(json as WanProfile, region);
        if (link === null) continue;
        expect(link.lossPct).toBeGreaterThanOrEqual(0);
        expect(link.lossPct).toBeLessThanOrEqual(100);
        expect(link.jitterMs).toBeGreaterThanOrEqual(0);
        expect(link.oneWayDelayMs).toBeGreaterThanOrEqual(0);
      }
    }
  }
  // Both outcomes were exercised.
  expect(valid).toBeGreaterThan(50);
  expect(valid).toBeLessThan(1_950);
});
