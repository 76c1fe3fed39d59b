import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import type { NormalizedPolicy } from '../../shared/schemas/index.ts';
import type { ParticipantRecord } from '../state/types.ts';
import type { AppOccurrence } from '../webhooks/types.ts';

/** An allocation made while Redis was unreachable, waiting to be written there. */
export interface JournalEntry {
  roomId: string;
  participant: ParticipantRecord;
  /** The room's home and epoch as this router knew them when it placed the participant. */
  home: { region: string; nodeId: string };
  epoch: number;
  /** The room's region policy (pinned again with the home if the room was forgotten meanwhile). */
  policy: NormalizedPolicy | null;
}

/**
 * One line of the journal file, by kind. Replaying the lines in order rebuilds the journal; a kind
 * this version does not know is kept in the file's history only (skipped), so kinds can be added.
 */
export type JournalRecord =
  /** An allocation made from local state (replaces the participant's earlier journaled one in the room). */
  | { kind: 'allocation'; entry: JournalEntry }
  /** The participant of a journaled allocation joined its node. */
  | { kind: 'joined'; allocationId: string }
  /** The allocation was written to Redis, or its participant left before it was. */
  | { kind: 'removed'; allocationId: string };

/** What replaying one entry did (see DegradedAllocator.replayJournal). */
export type ReplayResult =
  /** Written into the room as this router knew it. */
  | 'applied'
  /** Redis already held this allocation (an earlier replay whose answer was lost). */
  | 'already_applied'
  /** The room was re-homed meanwhile (another epoch): the participant is counted into the room as it is now. */
  | 'rehomed'
  /** The participant holds a newer allocation in Redis: this one is dropped. */
  | 'superseded';

export interface JournalFileOptions {
  /** Folder of the journal files (GEO_SFU_JOURNAL_DIR); created if missing. */
  dir: string;
  /** The deployment (its Redis key prefix): a router adopts only journals of its own deployment. */
  deployment: string;
  /** Largest file (GEO_SFU_JOURNAL_MAX_BYTES): past it the file is compacted, and an allocation that would not fit is refused. */
  maxBytes: number;
}

/** Journal files this process has open (several routers may run in one process, as in tests). */
const heldFiles = new Set<string>();
let nextSeq = 0;

/** `journal-<deployment>-<pid>-<seq>.jsonl`, or such a file being adopted by `<pid>-<seq>`. */
const JOURNAL_FILE = /^journal-([0-9a-f]{16})-(\d+)-(\d+)\.jsonl(?:\.adopted-(\d+)-(\d+))?$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The allocations this router made from local state while Redis was away (by allocation id, in
 * allocation order), and the seats it took per node meanwhile. Seats are not given back when a
 * journaled participant leaves: the budget stays conservative until the journal is written out.
 *
 * With a file (`DegradedJournal.open`), every change is appended to it and fsynced before the call
 * resolves, so an allocation is answered only once it would survive the router's death. At open, the
 * router adopts the journals that routers of its deployment which died left in the folder (its own
 * previous run included), and replays them like its own. The file is compacted to the live entries
 * when it would pass its bound, and truncated when the journal empties.
 */
export class DegradedJournal {
  readonly #entries = new Map<string, JournalEntry>();
  readonly #seatsTaken = new Map<string, number>();
  /** Bytes each live allocation takes in a compacted file. */
  readonly #lineBytes = new Map<string, number>();
  #liveBytes = 0;
  #file: { path: string; maxBytes: number; handle: FileHandle | null; bytes: number } | null = null;
  #pending: Array<{ line: string; done: (err?: Error) => void }> = [];
  #flushing: Promise<void> | null = null;

  /** A journal in memory only: it dies with the process. */
  static inMemory(): DegradedJournal {
    return new DegradedJournal();
  }

  /** A journal on disk, with what dead routers of the deployment left in `dir` adopted into it. */
  static async open(options: JournalFileOptions): Promise<DegradedJournal> {
    await mkdir(options.dir, { recursive: true });
    const deployment = createHash('sha256').update(options.deployment).digest('hex').slice(0, 16);
    const seq = nextSeq++;
    const own = path.join(options.dir, `journal-${deployment}-${process.pid}-${seq}.jsonl`);
    heldFiles.add(own);
    const journal = new DegradedJournal();
    journal.#file = { path: own, maxBytes: options.maxBytes, handle: null, bytes: 0 };
    const adopted: string[] = [];
    for (const name of await readdir(options.dir)) {
      const match = JOURNAL_FILE.exec(name);
      if (!match || match[1] !== deployment) continue;
      const full = path.join(options.dir, name);
      const ownerPid = Number(match[4] ?? match[2]);
      // A file of a live router is its own; one of this process that it does not hold is from a previous run (pid 1 in a container).
      // (Our own name, not created yet, can only be such a file.)
      if ((heldFiles.has(full) && full !== own) || (ownerPid !== process.pid && processAlive(ownerPid))) continue;
      const claimed = path.join(options.dir, `${name.replace(/\.adopted-.*$/, '')}.adopted-${process.pid}-${seq}`);
      try {
        await rename(full, claimed);
      } catch {
        continue; // another router claimed it first
      }
      for (const record of parseRecords(await readFile(claimed, 'utf8'))) journal.#apply(record);
      adopted.push(claimed);
    }
    if (adopted.length > 0) {
      // What was adopted is in our own file (fsynced) before the adopted files go.
      await journal.#compact();
      for (const file of adopted) await unlink(file);
    }
    return journal;
  }

  get size(): number {
    return this.#entries.size;
  }

  entries(): JournalEntry[] {
    return [...this.#entries.values()];
  }

  seatsTaken(nodeId: string): number {
    return this.#seatsTaken.get(nodeId) ?? 0;
  }

  /** The participant's journaled allocation in the room, if any. */
  heldBy(roomId: string, participantId: string): JournalEntry | null {
    return this.entries().find((e) => e.roomId === roomId && e.participant.participantId === participantId) ?? null;
  }

  /**
   * Records the allocation, durably; an earlier journaled allocation of the same participant in the
   * room is dropped (returned) and its seat given back, as the store releases a replaced
   * reservation. Throws DependencyUnavailableError when the file is full or cannot be written
   * (the journal is then as before).
   */
  async add(entry: JournalEntry): Promise<JournalEntry | null> {
    const record: JournalRecord = { kind: 'allocation', entry };
    const line = `${JSON.stringify(record)}\n`;
    if (this.#file && this.#liveBytes + Buffer.byteLength(line) > this.#file.maxBytes) {
      throw new DependencyUnavailableError(`degraded journal full (${this.#entries.size} allocations, GEO_SFU_JOURNAL_MAX_BYTES ${this.#file.maxBytes})`);
    }
    const earlier = this.#apply(record);
    try {
      await this.#append(line);
    } catch (err) {
      this.#forget(entry.participant.allocationId);
      if (earlier) this.#apply({ kind: 'allocation', entry: earlier });
      throw new DependencyUnavailableError(`degraded journal not written: ${(err as Error).message}`);
    }
    return earlier;
  }

  has(allocationId: string): boolean {
    return this.#entries.has(allocationId);
  }

  /** The participant joined its node: the entry is written as joined (no expiry). False if not journaled. */
  async markJoined(allocationId: string): Promise<boolean> {
    return this.#record({ kind: 'joined', allocationId });
  }

  /** Drops the entry (written out, or the participant left before it was). */
  async remove(allocationId: string): Promise<boolean> {
    return this.#record({ kind: 'removed', allocationId });
  }

  /** Stops writing; the file stays only if allocations in it still wait for Redis (the next start adopts it). */
  async close(): Promise<void> {
    await this.#flushing;
    const file = this.#file;
    if (!file) return;
    await file.handle?.close();
    file.handle = null;
    if (this.#entries.size === 0) await unlink(file.path).catch(() => undefined);
    heldFiles.delete(file.path);
  }

  async #record(record: JournalRecord & { allocationId: string }): Promise<boolean> {
    if (!this.#entries.has(record.allocationId)) return false;
    this.#apply(record);
    await this.#append(`${JSON.stringify(record)}\n`);
    return true;
  }

  /** Applies one record to the journal in memory; an allocation record returns the entry it replaced. */
  #apply(record: JournalRecord): JournalEntry | null {
    switch (record.kind) {
      case 'allocation': {
        const { entry } = record;
        const earlier = this.heldBy(entry.roomId, entry.participant.participantId);
        if (earlier) this.#forget(earlier.participant.allocationId, true);
        this.#entries.set(entry.participant.allocationId, entry);
        this.#seatsTaken.set(entry.participant.nodeId, this.seatsTaken(entry.participant.nodeId) + 1);
        const bytes = Buffer.byteLength(`${JSON.stringify(record)}\n`);
        this.#lineBytes.set(entry.participant.allocationId, bytes);
        this.#liveBytes += bytes;
        return earlier;
      }
      case 'joined': {
        const entry = this.#entries.get(record.allocationId);
        if (!entry) return null;
        entry.participant = { ...entry.participant, status: 'joined' };
        // Compacted, the entry is written joined: its room in the file changes.
        const bytes = Buffer.byteLength(`${JSON.stringify({ kind: 'allocation', entry } satisfies JournalRecord)}\n`);
        this.#liveBytes += bytes - (this.#lineBytes.get(record.allocationId) ?? 0);
        this.#lineBytes.set(record.allocationId, bytes);
        return null;
      }
      case 'removed':
        this.#forget(record.allocationId);
        return null;
    }
  }

  /** Drops an entry from memory; `giveSeatBack` when a newer allocation of the participant replaced it. */
  #forget(allocationId: string, giveSeatBack = false): void {
    const entry = this.#entries.get(allocationId);
    if (!entry) return;
    this.#entries.delete(allocationId);
    if (giveSeatBack) this.#seatsTaken.set(entry.participant.nodeId, this.seatsTaken(entry.participant.nodeId) - 1);
    this.#liveBytes -= this.#lineBytes.get(allocationId) ?? 0;
    this.#lineBytes.delete(allocationId);
    if (this.#entries.size === 0) this.#seatsTaken.clear();
  }

  /** Appends a line; resolves once it is on disk. Lines of concurrent callers share one write and one fsync. */
  #append(line: string): Promise<void> {
    if (!this.#file) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ line, done: (err) => (err ? reject(err) : resolve()) });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    const file = this.#file!;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0);
      try {
        const text = batch.map((p) => p.line).join('');
        if (this.#entries.size === 0) {
          // Nothing waits for Redis: the file starts again from empty.
          await this.#compact();
        } else if (file.bytes + Buffer.byteLength(text) > file.maxBytes) {
          // The journal in memory already holds these lines: the compacted file includes them.
          await this.#compact();
        } else {
          file.handle ??= await open(file.path, 'a');
          await file.handle.appendFile(text);
          await file.handle.datasync();
          file.bytes += Buffer.byteLength(text);
        }
        for (const p of batch) p.done();
      } catch (err) {
        for (const p of batch) p.done(err as Error);
      }
    }
    this.#flushing = null;
  }

  /** Rewrites the file as the live entries (a new file, fsynced, renamed over the old one). */
  async #compact(): Promise<void> {
    const file = this.#file!;
    const text = this.entries()
      .map((entry) => `${JSON.stringify({ kind: 'allocation', entry } satisfies JournalRecord)}\n`)
      .join('');
    const next = `${file.path}.next`;
    const handle = await open(next, 'w');
    try {
      await handle.writeFile(text);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(next, file.path);
    await file.handle?.close();
    file.handle = await open(file.path, 'a');
    // The rename must reach the disk too: fsync the folder.
    const dir = await open(path.dirname(file.path), 'r');
    await dir.sync().finally(() => dir.close());
    file.bytes = Buffer.byteLength(text);
  }

  // --- Application webhook occurrences (router/webhooks/app-events.ts), a kind of entry of their
  // own: raised while Redis was away, queued in this order once it is back.
  readonly #appEvents: AppOccurrence[] = [];

  get appEventCount(): number {
    return this.#appEvents.length;
  }

  addAppEvent(occurrence: AppOccurrence): void {
    this.#appEvents.push(occurrence);
  }

  firstAppEvent(): AppOccurrence | undefined {
    return this.#appEvents[0];
  }

  dropFirstAppEvent(): void {
    this.#appEvents.shift();
  }
}

/** The records of a journal file, in order; a torn last line (a write cut by the router's death, never acknowledged) ends it. */
function parseRecords(text: string): JournalRecord[] {
  const records: JournalRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let record: { kind?: unknown };
    try {
      record = JSON.parse(line) as { kind?: unknown };
    } catch {
      break;
    }
    if (record.kind === 'allocation' || record.kind === 'joined' || record.kind === 'removed') records.push(record as JournalRecord);
  }
  return records;
}
