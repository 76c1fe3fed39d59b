import { expect, it } from 'vitest';
import { LocalWindowCounter } from '../../shared/limits.ts';

/** shared/limits.ts: the in-process window counter behind every server's limits when it is alone. */
const WINDOW_MS = 60_000;

it('counts each key in a window that opens at its first event, and opens a new one after it ends', async () => {
  let clock = 0;
  const counter = new LocalWindowCounter(() => clock);
  expect(await counter.hit('a', WINDOW_MS)).toEqual({ count: 1, resetInMs: WINDOW_MS });
  clock = 10_000;
  expect(await counter.hit('b', WINDOW_MS)).toEqual({ count: 1, resetInMs: WINDOW_MS });
  expect(await counter.hit('a', WINDOW_MS)).toEqual({ count: 2, resetInMs: WINDOW_MS - 10_000 });
  // a's window ends; b's goes on. a reopens, later than b: b ending must not take a's new window with it.
  clock = WINDOW_MS;
  expect(await counter.peek('a', WINDOW_MS)).toEqual({ count: 0, resetInMs: 0 });
  expect(await counter.hit('a', WINDOW_MS)).toEqual({ count: 1, resetInMs: WINDOW_MS });
  clock = WINDOW_MS + 10_000;
  expect(await counter.hit('c', WINDOW_MS)).toEqual({ count: 1, resetInMs: WINDOW_MS });
  expect(await counter.peek('b', WINDOW_MS)).toEqual({ count: 0, resetInMs: 0 });
  expect(await counter.peek('a', WINDOW_MS)).toEqual({ count: 1, resetInMs: WINDOW_MS - 10_000 });
  expect(await counter.peek('constructor', WINDOW_MS)).toEqual({ count: 0, resetInMs: 0 });
});

it('200,000 keys open at once (addresses failing together) do not make each hit scan them all', async () => {
  const clock = 0;
  const counter = new LocalWindowCounter(() => clock);
  // Each hit scanning every open key would take ~2·10¹⁰ steps here: far past the test's timeout.
  const started = performance.now();
  for (let i = 0; i < 200_000; i++) await counter.hit(`2001:db8::${i.toString(16)}`, WINDOW_MS);
  console.log(`200,000 distinct keys counted in ${(performance.now() - started).toFixed(0)} ms`);
  expect((await counter.peek('2001:db8::0', WINDOW_MS)).count).toBe(1);
  expect((await counter.peek(`2001:db8::${(199_999).toString(16)}`, WINDOW_MS)).count).toBe(1);
});
