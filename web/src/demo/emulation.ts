/**
 * "Emulate a region": the latencies the demo sends to /allocate instead of the measured ones, so
 * that one machine can put each participant on the edge of a region of its choice and the cascade
 * between those edges can be watched. The chosen region is near, every other region far: far
 * enough that min-delay placement (whose cost also counts the inter-region link) never prefers
 * another edge, whatever the WAN profile.
 */
export const EMULATED_NEAR_MS = 5;
export const EMULATED_FAR_MS = 400;

export function emulatedLatencies(regionIds: readonly string[], region: string): Record<string, number> {
  return Object.fromEntries(regionIds.map((id) => [id, id === region ? EMULATED_NEAR_MS : EMULATED_FAR_MS]));
}

/** What the page was opened with: `/demo?room=…&name=…&region=…` (region: a region id to emulate, or absent for the measured RTTs). */
export interface DemoParams {
  room: string;
  name: string;
  region: string | null;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function readParams(search: string, random: () => string): DemoParams {
  const q = new URLSearchParams(search);
  const pick = (name: string, fallback: string) => {
    const v = q.get(name)?.trim() ?? '';
    return ID.test(v) ? v : fallback;
  };
  const region = q.get('region');
  return { room: pick('room', `demo-${random()}`), name: pick('name', `guest-${random()}`), region: region && /^[a-z0-9][a-z0-9-]{0,31}$/.test(region) ? region : null };
}
