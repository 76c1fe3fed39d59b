/**
 * The worker-spread policy (sfu/spread.ts) on its own: options to policy, and where a new peer
 * goes given the consumers on each of its room's routers. The media side of spreading is in
 * spread.test.ts.
 */
import { describe, expect, it } from 'vitest';

import { SfuError } from '../../sfu/index.ts';
import { placePeer, spreadPolicy, type SpreadDecision, type SpreadPolicy } from '../../sfu/spread.ts';

describe('spreadPolicy', () => {
  it('defaults: 500 consumers per worker, 80 %, as many routers as workers', () => {
    expect(spreadPolicy(undefined, 4)).toEqual({ consumersPerWorker: 500, threshold: 0.8, maxRoutersPerRoom: 4 });
    expect(spreadPolicy({ consumersPerWorker: 10, threshold: 1, maxRoutersPerRoom: 2 }, 4)).toEqual({
      consumersPerWorker: 10,
      threshold: 1,
      maxRoutersPerRoom: 2,
    });
  });

  it('false keeps rooms on one router', () => {
    expect(spreadPolicy(false, 4)).toBeUndefined();
  });

  it.each([
    ['threshold 0', { threshold: 0 }],
    ['threshold above 1', { threshold: 1.5 }],
    ['threshold NaN', { threshold: Number.NaN }],
    ['no capacity', { consumersPerWorker: 0 }],
    ['infinite capacity', { consumersPerWorker: Number.POSITIVE_INFINITY }],
    ['negative router cap', { maxRoutersPerRoom: -1 }],
  ])('rejects %s', (_name, options) => {
    expect(() => spreadPolicy(options, 2)).toThrow(SfuError);
    expect(() => spreadPolicy(options, 2)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('placePeer', () => {
  // Open below 0.5 x 4 = 2 consumers per router; at most 3 routers.
  const policy: SpreadPolicy = { consumersPerWorker: 4, threshold: 0.5, maxRoutersPerRoom: 3 };

  const cases: { name: string; consumers: number[]; policy: SpreadPolicy | undefined; unused: number; expect: SpreadDecision }[] = [
    { name: 'no policy: always the primary', consumers: [100, 0], policy: undefined, unused: 2, expect: { spread: false, router: 0 } },
    { name: 'a new room: its primary', consumers: [0], policy, unused: 2, expect: { spread: false, router: 0 } },
    { name: 'under the limit: stays', consumers: [1], policy, unused: 2, expect: { spread: false, router: 0 } },
    { name: 'at the limit: spreads', consumers: [2], policy, unused: 2, expect: { spread: true, router: 0 } },
    { name: 'open routers: the one with the fewest consumers', consumers: [3, 1, 0], policy, unused: 0, expect: { spread: false, router: 2 } },
    { name: 'ties: the earlier router', consumers: [5, 1, 1], policy, unused: 1, expect: { spread: false, router: 1 } },
    { name: 'all full, a worker free: spreads (fallback the fewest)', consumers: [4, 2], policy, unused: 1, expect: { spread: true, router: 1 } },
    { name: 'all full, no worker free: the fewest', consumers: [4, 2], policy, unused: 0, expect: { spread: false, router: 1 } },
    { name: 'all full, router cap reached: the fewest', consumers: [4, 3, 2], policy, unused: 5, expect: { spread: false, router: 2 } },
  ];

  it.each(cases)('$name', (c) => {
    expect(placePeer(c.consumers, c.policy, c.unused)).toEqual(c.expect);
  });
});
