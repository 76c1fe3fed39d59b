import { describe, expect, it } from 'vitest';
import { RequestLimiter, requestBurst } from '../../region-agent/signaling/client-limits.ts';

describe('the request bucket (GEO_SFU_SIGNALING_REQUESTS_PER_SECOND)', () => {
  it('holds the burst, refills at the rate, keeps connections apart, and a refusal takes nothing; 0 turns it off', () => {
    let nowMs = 1_000_000;
    const limiter = new RequestLimiter<object>(10, 30, () => nowMs);
    const [a, b] = [{}, {}];
    const admitted = (c: object, n: number) => Array.from({ length: n }, () => limiter.admit(c)).filter(Boolean).length;
    expect(admitted(a, 50)).toBe(30);
    expect(admitted(b, 5)).toBe(5);
    nowMs += 500;
    expect(admitted(a, 50)).toBe(5);
    nowMs += 100_000;
    expect(admitted(a, 50)).toBe(30);
    const off = new RequestLimiter<object>(0, 30, () => nowMs);
    expect(Array.from({ length: 1_000 }, () => off.admit(a)).every(Boolean)).toBe(true);
    expect(requestBurst({ maxRoomParticipants: 100, maxParticipantsPerNode: 500 })).toBe(432);
    expect(requestBurst({ maxRoomParticipants: 0, maxParticipantsPerNode: 50 })).toBe(232);
  });
});
