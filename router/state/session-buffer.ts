import { BadRequestError } from '../../shared/errors.ts';
import type { SessionRow, SessionStatus } from './types.ts';

/** A status only moves forward: allocated < active < ended | expired (both final). */
export const STATUS_RANK: Readonly<Record<SessionStatus, number>> = { allocated: 0, active: 1, ended: 2, expired: 2 };
export const FINAL_STATUSES = (Object.keys(STATUS_RANK) as SessionStatus[]).filter((status) => STATUS_RANK[status] === 2);

export interface StatusChange {
  id: string;
  status: Exclude<SessionStatus, 'allocated'>;
  at: Date;
}

/** What one write applies, inserts before status changes (a change may target a row inserted in the same write). */
export interface SessionBatch {
  inserts: SessionRow[];
  changes: StatusChange[];
}

/** The row with the change applied, or null when the change would not move its status forward. */
export function applyStatusChange(row: SessionRow, change: StatusChange): SessionRow | null {
  if (STATUS_RANK[change.status] <= STATUS_RANK[row.status]) return null;
  return { ...row, status: change.status, endedAt: FINAL_STATUSES.includes(change.status) ? change.at : row.endedAt };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isSessionId(id: string): boolean {
  return UUID.test(id);
}

/**
 * Rejects what the table would refuse (non-UUID id, over-long columns) when it is queued: a bad
 * row inside a batch would otherwise fail every retry of that batch and block all the others.
 */
export function validateSessionRow(row: SessionRow): void {
  if (!isSessionId(row.id)) throw new BadRequestError(`session id "${row.id}" is not a UUID`, 'id');
  const limits: Array<[keyof SessionRow, string, number]> = [
    ['roomId', row.roomId, 255],
    ['userId', row.userId, 128],
    ['serverId', row.serverId, 100],
    ['region', row.region, 64],
    ['homeRegion', row.homeRegion, 64],
  ];
  for (const [field, value, max] of limits) {
    if (value.length === 0 || value.length > max) throw new BadRequestError(`session ${field} must be 1–${max} characters`, field);
  }
}

type Entry = { kind: 'insert'; row: SessionRow } | { kind: 'change'; change: StatusChange };

function keyOf(entry: Entry): string {
  return entry.kind === 'insert' ? `insert:${entry.row.id}` : `change:${entry.change.id}`;
}

/** Two queued entries for the same key: an insert keeps the first (as ON CONFLICT DO NOTHING would), a change the furthest status. */
function merge(earlier: Entry, later: Entry): Entry {
  if (earlier.kind === 'change' && later.kind === 'change' && STATUS_RANK[later.change.status] > STATUS_RANK[earlier.change.status]) return later;
  return earlier;
}

/**
 * The session log's queue: at most one insert and one status change per session id, oldest
 * first, bounded by `max` entries (past it the oldest queued entry is dropped and counted). A write
 * takes every queued entry; if it fails they go back in front, merged with what arrived meanwhile.
 */
export class SessionBuffer {
  private queued = new Map<string, Entry>();
  private inFlight: Entry[] = [];
  private dropped = 0;

  constructor(private readonly max: number) {}

  addInsert(row: SessionRow): void {
    this.add({ kind: 'insert', row });
  }

  addChange(change: StatusChange): void {
    this.add({ kind: 'change', change });
  }

  /** Moves every queued entry in flight; null when there is nothing to write. */
  take(): SessionBatch | null {
    if (this.queued.size === 0) return null;
    this.inFlight = [...this.queued.values()];
    this.queued = new Map();
    const batch: SessionBatch = { inserts: [], changes: [] };
    for (const entry of this.inFlight) {
      if (entry.kind === 'insert') batch.inserts.push(entry.row);
      else batch.changes.push(entry.change);
    }
    return batch;
  }

  /** The batch in flight was written. */
  commit(): void {
    this.inFlight = [];
  }

  /** The batch in flight failed: its entries are queued again, ahead of newer ones. */
  restore(): void {
    const queued = new Map(this.inFlight.map((entry) => [keyOf(entry), entry]));
    for (const [key, entry] of this.queued) {
      const earlier = queued.get(key);
      queued.set(key, earlier ? merge(earlier, entry) : entry);
    }
    this.queued = queued;
    this.inFlight = [];
    this.trim();
  }

  depth(): number {
    return this.queued.size + this.inFlight.length;
  }

  droppedCount(): number {
    return this.dropped;
  }

  private add(entry: Entry): void {
    const key = keyOf(entry);
    const earlier = this.queued.get(key);
    // Replacing a key's value keeps its place in the queue.
    this.queued.set(key, earlier ? merge(earlier, entry) : entry);
    this.trim();
  }

  /** Entries in flight are being written and are never dropped. */
  private trim(): void {
    for (const key of this.queued.keys()) {
      if (this.depth() <= this.max) return;
      this.queued.delete(key);
      this.dropped++;
    }
  }
}
