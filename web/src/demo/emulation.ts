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

/**
 * What the page was opened with: `/demo?room=…&name=…&region=…` (region: a region id to emulate,
 * checked against the catalog once it is loaded (resolveRegion), or absent for the measured RTTs).
 * A room or name /allocate would refuse is normalised, the same way in every tab that opens the
 * link, so that people sharing it still meet; `notices` says what was changed, for the page to show.
 */
export interface DemoParams {
  room: string;
  name: string;
  region: string | null;
  notices: string[];
}

const ID_LENGTH = 128;
const REGION_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** "bad room!" → "bad-room": runs of characters outside A-Z a-z 0-9 . _ : - become one "-"; null when nothing is left. */
export function normaliseId(value: string): string | null {
  const id = value
    .trim()
    .replace(/[^A-Za-z0-9._:-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, ID_LENGTH);
  return id === '' ? null : id;
}

const shown = (value: string) => JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);

export function readParams(search: string, random: () => string): DemoParams {
  const q = new URLSearchParams(search);
  const notices: string[] = [];
  const pick = (param: string, fallback: string) => {
    const given = q.get(param);
    if (given === null || given.trim() === '') return fallback;
    const id = normaliseId(given);
    if (id === given) return id;
    notices.push(
      id === null
        ? `${param} ${shown(given)} has no usable characters (A-Z a-z 0-9 . _ : -): using ${fallback}`
        : `${param} ${shown(given)} is not a valid id (1–${ID_LENGTH} of A-Z a-z 0-9 . _ : -): using "${id}"`,
    );
    return id ?? fallback;
  };
  const room = pick('room', `demo-${random()}`);
  const name = pick('name', `guest-${random()}`);
  const given = q.get('region')?.trim() ?? '';
  const region = given === '' ? null : given.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return { room, name, region, notices };
}

/**
 * The region to emulate, once the catalog is known: the parameter if it names one of `regionIds`,
 * else none, with a notice that says so (the tab then uses its measured RTTs).
 */
export function resolveRegion(region: string | null, regionIds: readonly string[]): { region: string | null; notice: string | null } {
  if (region === null || regionIds.includes(region)) return { region, notice: null };
  const why = REGION_ID.test(region) ? 'is not a region of this deployment' : 'is not a region id';
  return { region: null, notice: `region ${shown(region)} ${why} (${regionIds.join(', ')}): no emulation, this tab uses its measured RTTs` };
}
