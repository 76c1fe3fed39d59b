import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DegradedJournal, type JournalEntry } from '../../router/allocation/degraded-journal.ts';
import { DependencyUnavailableError } from '../../shared/errors.ts';

/** The degraded journal's file: bounded, compacted, adopted at the next open, a torn last line ignored. */
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function folder(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'geo-sfu-journal-file-'));
  dirs.push(dir);
  return dir;
}

/** Ids of one width, so every allocation takes the same room in the file. */
const entry = (i: number, participantId = `p${String(i).padStart(6, '0')}`): JournalEntry => ({
  roomId: 'room',
  home: { region: 'us-west', nodeId: 'n1' },
  epoch: 0,
  policy: null,
  participant: { participantId, allocationId: `a${String(i).padStart(6, '0')}`, nodeId: 'n1', region: 'us-west', status: 'allocated', allocatedAtMs: i, clientRttMs: {} } as unknown as JournalEntry['participant'],
});

it('stays within its bound: compacts what was written out, refuses an allocation that would not fit, and starts from empty when drained', async () => {
  const dir = await folder();
  const maxBytes = 4_096;
  const journal = await DegradedJournal.open({ dir, deployment: 'bounded', maxBytes });
  let added = 0;
  let refused: unknown = null;
  for (let i = 0; i < 1_000 && !refused; i++) {
    try {
      await journal.add(entry(i));
      added++;
    } catch (err) {
      refused = err;
    }
  }
  const [file] = await readdir(dir);
  console.log(`journal of ${maxBytes} bytes: ${added} allocations, then refused; file ${(await stat(path.join(dir, file!))).size} bytes`);
  expect(refused).toBeInstanceOf(DependencyUnavailableError);
  expect(added).toBeGreaterThan(2);
  expect(journal.size).toBe(added);
  // Churn (joins, leaves, new allocations as seats free up): the file never passes its bound. One
  // allocation leaves first, so that a joined entry (a few bytes longer) still fits when compacted.
  await journal.remove(journal.entries()[0]!.participant.allocationId);
  for (let round = 0; round < 100; round++) {
    const victim = journal.entries()[0]!.participant.allocationId;
    await journal.markJoined(journal.entries()[1]!.participant.allocationId);
    await journal.remove(victim);
    await journal.add(entry(10_000 + round));
    expect((await stat(path.join(dir, file!))).size).toBeLessThanOrEqual(maxBytes);
  }
  for (const e of journal.entries()) await journal.remove(e.participant.allocationId);
  expect(await readFile(path.join(dir, file!), 'utf8')).toBe('');
  await journal.close();
  expect(await readdir(dir)).toEqual([]);
});

it('a journal left behind is adopted by the next open of its deployment only, a torn last line ignored, a retried participant counted once', async () => {
  const dir = await folder();
  const first = await DegradedJournal.open({ dir, deployment: 'mine', maxBytes: 1 << 20 });
  for (let i = 0; i < 5; i++) await first.add(entry(i));
  await first.add(entry(5, 'p000000')); // p000000 allocated again: replaces a000000
  await first.markJoined('a000001');
  await first.remove('a000002');
  await first.close(); // entries remain: the file stays, as after a crash
  const [file] = await readdir(dir);
  await appendFile(path.join(dir, file!), '{"kind":"allocation","entry":{"roomId":"ro'); // a write the crash cut short

  const other = await DegradedJournal.open({ dir, deployment: 'another deployment', maxBytes: 1 << 20 });
  expect(other.size).toBe(0);
  const next = await DegradedJournal.open({ dir, deployment: 'mine', maxBytes: 1 << 20 });
  expect(next.entries().map((e) => [e.participant.allocationId, e.participant.status]).sort()).toEqual([
    ['a000001', 'joined'],
    ['a000003', 'allocated'],
    ['a000004', 'allocated'],
    ['a000005', 'allocated'],
  ]);
  expect(next.seatsTaken('n1')).toBe(5); // seats of the participant that left are not given back before Redis has the journal
  // Adopted into its own file: the old one is gone, and a third open finds nothing left to adopt.
  expect((await readdir(dir)).filter((f) => f !== file)).toHaveLength(1);
  expect(await readdir(dir)).not.toContain(file);
  const third = await DegradedJournal.open({ dir, deployment: 'mine', maxBytes: 1 << 20 });
  expect(third.size).toBe(0);
  await Promise.all([other.close(), next.close(), third.close()]);
});
