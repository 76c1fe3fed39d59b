import { BufferedSessionLog, type SessionLogOptions } from './buffered-session-log.ts';
import { type SessionBatch, applyStatusChange } from './session-buffer.ts';
import type { SessionRow } from './types.ts';

/**
 * Rows the in-memory log keeps: the most recent ones (about 0.5 KB each). Without a bound, a
 * long-running embedded router's heap grew by the whole history (bench/soak.ts: +1 GiB/h at
 * 135 allocations/s); PostgreSQL is the durable log.
 */
export const MEMORY_SESSION_ROWS = 10_000;

/** Session log of a single router without PostgreSQL: the same queueing and status rules, kept in memory (the last MEMORY_SESSION_ROWS rows). */
export class MemorySessionLog extends BufferedSessionLog {
  private readonly rows = new Map<string, SessionRow>();

  constructor(options: SessionLogOptions) {
    super(options);
  }

  async get(id: string): Promise<SessionRow | null> {
    const row = this.rows.get(id);
    return row ? { ...row } : null;
  }

  protected async prepare(): Promise<void> {}

  protected async write(batch: SessionBatch): Promise<string[]> {
    for (const row of batch.inserts) {
      if (!this.rows.has(row.id)) this.rows.set(row.id, { ...row });
    }
    // A Map iterates in insertion order: the first keys are the oldest rows.
    for (const id of this.rows.keys()) {
      if (this.rows.size <= MEMORY_SESSION_ROWS) break;
      this.rows.delete(id);
    }
    for (const change of batch.changes) {
      const row = this.rows.get(change.id);
      const changed = row && applyStatusChange(row, change);
      if (changed) this.rows.set(change.id, changed);
    }
    // One process: a row not here was never recorded or is gone, it is not on its way from another replica.
    return [];
  }

  protected async release(): Promise<void> {
    this.rows.clear();
  }
}
