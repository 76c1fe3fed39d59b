import { ID_PATTERN } from '../../shared/schemas/index.ts';

/** Names that collide with Object.prototype: room, participant and display names a client may pick. */
export const RESERVED_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'] as const;

/** Object.prototype's own keys that are valid room and participant ids, for random picks. */
export const OBJECT_PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).filter((k) => new RegExp(ID_PATTERN).test(k));

/** geo_sfu_unexpected_errors_total on a router's or agent's /metrics, all kinds summed (throws when absent). */
export async function unexpectedErrors(baseUrl: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`, { headers })).text();
  const samples = text.split('\n').filter((line) => line.startsWith('geo_sfu_unexpected_errors_total{'));
  if (samples.length === 0) throw new Error(`${baseUrl}/metrics has no geo_sfu_unexpected_errors_total`);
  return samples.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
