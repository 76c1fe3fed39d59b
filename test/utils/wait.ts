/**
 * Polls `probe` until it gives a value (anything but null, undefined or false) and returns it;
 * throws naming `what` after `timeoutMs`. Tests wait for properties this way, never for a fixed time.
 */
export async function waitFor<T>(what: string, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves once `count()` has not changed for `quietMs` (traffic in flight has drained). */
export async function waitUntilQuiet(count: () => number, quietMs: number): Promise<void> {
  let last = -1;
  let since = performance.now();
  for (;;) {
    const now = count();
    if (now !== last) [last, since] = [now, performance.now()];
    else if (performance.now() - since > quietMs) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
