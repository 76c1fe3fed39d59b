import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { DEFAULT_DATASET_URL, loadDataset } from '../../bench/placement/dataset.ts';
import { checkLiveAgreement } from '../../bench/placement/live.ts';
import { generateRooms } from '../../bench/placement/rooms.ts';

const ds = loadDataset(fileURLToPath(DEFAULT_DATASET_URL));

it('a live router (POST /allocate, leaves through the admin API) makes every decision the in-process simulation makes', async () => {
  // A small sample with every kind of room: regional and spanning, 2 to 50 people, some leaves.
  const all = generateRooms(ds, { seed: 3, count: 60 });
  const rooms = [...all.filter((r) => r.final.length <= 10).slice(0, 10), ...all.filter((r) => r.final.length > 10).slice(0, 3)];
  expect(rooms.some((r) => r.kind === 'spanning') && rooms.some((r) => r.kind === 'regional')).toBe(true);
  expect(rooms.some((r) => r.events.some((e) => e.type === 'leave'))).toBe(true);
  const { decisions, disagreements } = await checkLiveAgreement(ds, rooms, 'min-delay');
  expect(disagreements).toEqual([]);
  expect(decisions).toBe(rooms.reduce((s, r) => s + r.participants.length, 0));
}, 60_000);

it('agrees for the first-joiner strategy too', async () => {
  const rooms = generateRooms(ds, { seed: 8, count: 8 });
  const { disagreements } = await checkLiveAgreement(ds, rooms, 'first-joiner');
  expect(disagreements).toEqual([]);
}, 60_000);
