import { describe, expect, it } from 'vitest';
import { AdmittedAllocations } from '../../region-agent/signaling/admitted-allocations.ts';

describe('AdmittedAllocations (a join token admits one session)', () => {
  it('admits an allocation once while its token lives, and forgets it after its exp (bounded memory)', () => {
    const admitted = new AdmittedAllocations();
    const t0 = 1_000_000;
    for (let i = 0; i < 1_000; i++) expect(admitted.admit(`aid-${i}`, t0 + 60_000, t0)).toBe(true);
    expect(admitted.admit('aid-7', t0 + 60_000, t0 + 1)).toBe(false);
    expect(admitted.admit('aid-7', t0 + 60_000, t0 + 59_999)).toBe(false);
    expect(admitted.size).toBe(1_000);
    // Past the tokens' exp the next sweep (every 10 s) drops them (the token itself is refused as expired by then).
    expect(admitted.admit('aid-late', t0 + 180_000, t0 + 70_000)).toBe(true);
    console.log(`after the tokens' exp: ${admitted.size} entries kept of 1001 admitted`);
    expect(admitted.size).toBe(1);
  });
});
