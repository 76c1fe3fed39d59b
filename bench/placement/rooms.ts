import type { LatencyDataset } from './dataset.ts';
import { gaussian, randomInt, seededRandom, shuffle, weightedIndex, type Random } from './prng.ts';

/**
 * Seeded room generator. A room is a sequence of joins and leaves; each participant lives in a
 * city of the data set and has
 *   - a true RTT to every region: the city's RTT plus its own access-network delay (the same to
 *     every region: last mile, Wi-Fi), which is what the room's delay is scored with;
 *   - a measured RTT to every region: the true RTT plus measurement noise (what the client sends
 *     to POST /allocate, and what placement decides on).
 */
export interface SimParticipant {
  id: string;
  /** Index in `dataset.cities`. */
  city: number;
  accessMs: number;
  trueRttMs: Record<string, number>;
  measuredRttMs: Record<string, number>;
}

export type RoomEvent = { type: 'join' | 'leave'; participant: number };

export interface SimRoom {
  id: string;
  kind: 'regional' | 'spanning';
  /** Continents the room draws its cities from. */
  continents: string[];
  participants: SimParticipant[];
  /** Joins and leaves in order; `participant` indexes `participants`. */
  events: RoomEvent[];
  /** Participants present after the last event, in arrival order. */
  final: number[];
}

export interface SizeBucket {
  min: number;
  max: number;
  share: number;
}

export interface RoomMix {
  /** Final room size (participants present at the end) by bucket. */
  sizes: SizeBucket[];
  /** Share of rooms whose cities are all on one continent; the others span 2–3 continents. */
  regionalShare: number;
  /** Share of rooms of 3 or more in which people also leave (1 to ⌈n/4⌉ of them, replaced by later joiners). */
  leaveShare: number;
  /** Access-network delay added to every region's RTT, uniform in [min, max] ms. */
  accessMs: { min: number; max: number };
  /** Measurement noise: normal with σ = sigmaMs + sigmaFraction × true RTT, clamped to ≥ 1 ms, rounded to 0.1 ms. */
  noise: { sigmaMs: number; sigmaFraction: number };
}

export const DEFAULT_MIX: RoomMix = {
  sizes: [
    { min: 2, max: 4, share: 0.4 },
    { min: 5, max: 10, share: 0.3 },
    { min: 11, max: 25, share: 0.2 },
    { min: 26, max: 50, share: 0.1 },
  ],
  regionalShare: 0.55,
  leaveShare: 0.3,
  accessMs: { min: 2, max: 20 },
  noise: { sigmaMs: 2, sigmaFraction: 0.05 },
};

/** A city's continent: its `continent`, or else the region it is closest to. */
export function continentOf(ds: LatencyDataset, city: number): string {
  const c = ds.cities[city]!;
  if (c.continent) return c.continent;
  let best = ds.regions[0]!;
  for (const r of ds.regions) if (c.rttMs[r]! < c.rttMs[best]!) best = r;
  return `near-${best}`;
}

export function generateRooms(ds: LatencyDataset, opts: { seed: number; count: number; mix?: RoomMix }): SimRoom[] {
  const mix = opts.mix ?? DEFAULT_MIX;
  const random = seededRandom(opts.seed);
  const byContinent = new Map<string, number[]>();
  for (const i of ds.cities.keys()) {
    const c = continentOf(ds, i);
    byContinent.set(c, [...(byContinent.get(c) ?? []), i]);
  }
  const continents = [...byContinent.keys()];
  const weightOf = (city: number) => ds.cities[city]!.weight ?? 1;
  const continentWeights = continents.map((c) => byContinent.get(c)!.reduce((s, i) => s + weightOf(i), 0));
  const pickCity = (continent: string) => {
    const cities = byContinent.get(continent)!;
    return cities[weightedIndex(random, cities.map(weightOf))]!;
  };

  return Array.from({ length: opts.count }, (_, index): SimRoom => {
    const bucket = mix.sizes[weightedIndex(random, mix.sizes.map((b) => b.share))]!;
    const size = randomInt(random, bucket.min, bucket.max);
    const regional = continents.length === 1 || random() < mix.regionalShare;
    let chosen: string[];
    if (regional) chosen = [continents[weightedIndex(random, continentWeights)]!];
    else {
      const k = Math.min(continents.length, random() < 0.6 ? 2 : 3);
      const pool = continents.map((c, i) => ({ c, w: continentWeights[i]! }));
      chosen = [];
      while (chosen.length < k) {
        const i = weightedIndex(random, pool.map((p) => p.w));
        chosen.push(pool[i]!.c);
        pool.splice(i, 1);
      }
    }
    const shares = chosen.map(() => 0.3 + random());
    const leaves = size >= 3 && random() < mix.leaveShare ? randomInt(random, 1, Math.ceil(size / 4)) : 0;
    const arrivals = size + leaves;
    const homeContinents = Array.from({ length: arrivals }, () => chosen[weightedIndex(random, shares)]!);
    // A spanning room really spans: at least one arrival on another continent than the first's.
    if (chosen.length > 1 && homeContinents.every((c) => c === homeContinents[0])) {
      homeContinents[randomInt(random, 1, arrivals - 1)] = chosen.find((c) => c !== homeContinents[0])!;
    }
    const participants = homeContinents.map((continent, i) => participant(ds, random, mix, `p${i}`, pickCity(continent)));
    return { id: `room-${index}`, kind: regional ? 'regional' : 'spanning', continents: chosen, participants, ...schedule(random, arrivals, leaves) };
  });
}

function participant(ds: LatencyDataset, random: Random, mix: RoomMix, id: string, city: number): SimParticipant {
  const accessMs = Math.round((mix.accessMs.min + random() * (mix.accessMs.max - mix.accessMs.min)) * 10) / 10;
  const trueRttMs: Record<string, number> = {};
  const measuredRttMs: Record<string, number> = {};
  for (const r of ds.regions) {
    const rtt = ds.cities[city]!.rttMs[r]! + accessMs;
    trueRttMs[r] = rtt;
    const sigma = mix.noise.sigmaMs + mix.noise.sigmaFraction * rtt;
    measuredRttMs[r] = Math.max(1, Math.round((rtt + sigma * gaussian(random)) * 10) / 10);
  }
  return { id, city, accessMs, trueRttMs, measuredRttMs };
}

/**
 * Joins in participant order with `leaves` leaves interleaved: a leave happens only while at least
 * two are present (the room never empties, so its home stays as in the router), and takes a
 * random present participant, the first joiner included.
 */
function schedule(random: Random, arrivals: number, leaves: number): Pick<SimRoom, 'events' | 'final'> {
  const events: RoomEvent[] = [];
  const present: number[] = [];
  let joined = 0;
  let left = 0;
  while (joined < arrivals || left < leaves) {
    const canLeave = left < leaves && present.length >= 2;
    const leaveNow = canLeave && (joined === arrivals || random() < (leaves - left) / (leaves - left + arrivals - joined));
    if (leaveNow) {
      const at = Math.floor(random() * present.length);
      events.push({ type: 'leave', participant: present[at]! });
      present.splice(at, 1);
      left++;
    } else {
      events.push({ type: 'join', participant: joined });
      present.push(joined++);
    }
  }
  return { events, final: present };
}

/** The same people as `room`'s final participants, joining in another order, nobody leaving (for counterfactuals). */
export function reordered(room: SimRoom, order: readonly number[]): SimRoom {
  return { ...room, events: order.map((participant) => ({ type: 'join', participant })), final: [...order] };
}

export function randomOrders(room: SimRoom, count: number, seed: number): number[][] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => shuffle(random, [...room.final]));
}
