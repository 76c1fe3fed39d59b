import { expect, it } from 'vitest';
import { interRegionLink, wanProfileProblems, type WanProfile } from '../../infra/embedded/wan-profile.ts';

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
