import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { liveHeapGauge } from '../../shared/live-heap.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

/** A full collection, then the observer's callback (delivered asynchronously). */
async function collect(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 100));
}

describe('heap after the last major collection (shared/live-heap.ts)', () => {
  it('grows with what survives a collection and comes back down when it is released, whatever garbage lies around meanwhile', async () => {
    const registry = new Registry();
    liveHeapGauge(registry, 'test_heap_after_gc_bytes');
    const read = async () => (await registry.getSingleMetric('test_heap_after_gc_bytes')!.get()).values[0]!.value;

    await collect();
    const base = await read();
    let retained: number[][] | null = Array.from({ length: 64 }, () => new Array<number>(100_000).fill(1.5));
    await collect();
    const grown = await read();
    // Garbage made after the collection is not counted until the next one.
    let garbage: number[][] | null = Array.from({ length: 64 }, () => new Array<number>(100_000).fill(2.5));
    const withGarbage = await read();
    retained = null;
    garbage = null;
    await collect();
    const back = await read();
    console.log(`heap after GC: ${(base / MiB).toFixed(1)} → ${(grown / MiB).toFixed(1)} MiB with 49 MiB retained → ${(back / MiB).toFixed(1)} MiB released`);
    expect(grown - base).toBeGreaterThan(40 * MiB);
    expect(withGarbage).toBe(grown);
    expect(back - base).toBeLessThan(10 * MiB);
    expect([retained, garbage]).toEqual([null, null]);
  });
});
