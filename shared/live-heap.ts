import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/**
 * The V8 heap a process really holds: heapUsed just after its last major (mark-compact) garbage
 * collection. heapUsed itself also counts the garbage of the old generation until the next major
 * collection, minutes apart in a process far below its heap limit, so its growth over a few
 * minutes says little about a leak; this one grows only with what survives (bench/soak.ts).
 */
let lastAfterMajorGc: number | null = null;
let observer: PerformanceObserver | null = null;

function observe(): void {
  if (observer) return;
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (((entry as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) lastAfterMajorGc = process.memoryUsage().heapUsed;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** `name` on `registry`: heapUsed after the last major collection (the current heapUsed until one has run). */
export function liveHeapGauge(registry: Registry, name: string): Gauge {
  observe();
  return new Gauge({
    name,
    help: "V8 heap used just after the process's last major garbage collection: what survives, without the garbage heapUsed counts between collections.",
    registers: [registry],
    collect() {
      this.set(lastAfterMajorGc ?? process.memoryUsage().heapUsed);
    },
  });
}
