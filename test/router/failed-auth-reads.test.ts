import { expect, it } from 'vitest';
import { LocalWindowCounter, type WindowCount, type WindowCounter } from '../../shared/limits.ts';
import { ReadWhereFailed } from '../../router/limits.ts';

/**
 * The failed-authentication count router replicas share, as each reads it (router/limits.ts): a
 * replica reads an address's shared count only after answering that address 401 itself, so
 * clients that never fail cost no read, and a guesser spread over N replicas gets at most N − 1
 * tries past the limit. The shared counter here is one LocalWindowCounter standing for Redis (the
 * real one is in shared-limits.test.ts), counting the reads it is asked for.
 */
const WINDOW_MS = 60_000;
const LIMIT = 3;

class CountedReads implements WindowCounter {
  reads = 0;
  constructor(private readonly inner: WindowCounter) {}
  hit(key: string, windowMs: number): Promise<WindowCount> {
    return this.inner.hit(key, windowMs);
  }
  peek(key: string, windowMs: number): Promise<WindowCount> {
    this.reads++;
    return this.inner.peek(key, windowMs);
  }
}

/** What failedAuthLimit (shared/http.ts) does with one request: refused (429) past the limit, else 401 when the guess fails. */
async function attempt(replica: WindowCounter, ip: string, fails: boolean): Promise<200 | 401 | 429> {
  if ((await replica.peek(ip, WINDOW_MS)).count >= LIMIT) return 429;
  if (!fails) return 200;
  await replica.hit(ip, WINDOW_MS);
  return 401;
}

it('an address that never failed on a replica costs that replica no read of the shared count', async () => {
  let clock = 1_000;
  const shared = new CountedReads(new LocalWindowCounter(() => clock));
  const replica = new ReadWhereFailed(shared, () => clock);
  for (let i = 0; i < 100; i++) expect(await attempt(replica, `198.51.100.${i % 10}`, false)).toBe(200);
  expect(shared.reads).toBe(0);
  // One failure: that address is read from now on, the others still are not.
  expect(await attempt(replica, '198.51.100.1', true)).toBe(401);
  expect(await attempt(replica, '198.51.100.1', false)).toBe(200);
  expect(await attempt(replica, '198.51.100.2', false)).toBe(200);
  expect(shared.reads).toBe(1);
  // Past the window the replica forgets the address again.
  clock += WINDOW_MS;
  expect(await attempt(replica, '198.51.100.1', false)).toBe(200);
  expect(await attempt(replica, '198.51.100.1', false)).toBe(200);
  expect(shared.reads).toBe(1);
});

it('a guesser spread over N replicas gets at most N − 1 failures past the limit, then every replica refuses it', async () => {
  const clock = 1_000;
  for (const replicas of [1, 2, 3, 5]) {
    const shared = new LocalWindowCounter(() => clock);
    const fleet = Array.from({ length: replicas }, () => new ReadWhereFailed(shared, () => clock));
    const answers: number[] = [];
    for (let i = 0; i < 4 * (LIMIT + replicas); i++) answers.push(await attempt(fleet[i % replicas]!, '203.0.113.9', true));
    const failures = answers.filter((a) => a === 401).length;
    console.log(`${replicas} replicas, limit ${LIMIT}: ${answers.join(' ')}`);
    expect(failures).toBeGreaterThanOrEqual(LIMIT);
    expect(failures).toBeLessThanOrEqual(LIMIT + replicas - 1);
    // Once refused, refused on every replica for the rest of the window.
    const firstRefused = answers.indexOf(429);
    expect(answers.slice(firstRefused).every((a) => a === 429)).toBe(true);
    for (const replica of fleet) expect(await attempt(replica, '203.0.113.9', true)).toBe(429);
  }
});

it('with its memory full of failing addresses a replica reads the shared count for every address, so none slips through', async () => {
  const clock = 1_000;
  const shared = new CountedReads(new LocalWindowCounter(() => clock));
  const replica = new ReadWhereFailed(shared, () => clock);
  // Fill the replica's memory (100,000 addresses, each failing once) from another replica's view of the count.
  for (let i = 0; i < 100_000; i++) await replica.hit(`fill-${i}`, WINDOW_MS);
  // A new address failed on other replicas only: this one cannot remember it, so it reads the count.
  for (let i = 0; i < LIMIT; i++) await shared.hit('203.0.113.77', WINDOW_MS);
  expect(await attempt(replica, '203.0.113.77', true)).toBe(429);
  expect(shared.reads).toBe(1);
});
