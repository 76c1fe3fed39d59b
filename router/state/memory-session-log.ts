import { BufferedSessionLog, type SessionLogOptions } from './buffered-session-log.ts';
import { type SessionBatch, applyStatusChange } from './session-buffer.ts';
import type { SessionRow } from './types.ts';

/** Session log of a single router without PostgreSQL: the same queueing and status rules, kept in memory. */
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

  protected async write(batch: SessionBatch): Promise<void> {
    for (const row of batch.inserts) {
      if (!this.rows.has(row.id)) this.rows.set(row.id, { ...row });
    }
    for (const change of batch.changes) {
      const row = this.rows.get(change.id);
      const changed = row && applyStatusChange(row, change);
      if (changed) this.rows.set(change.id, changed);
    }
  }

  protected async release(): Promise<void> {
    this.rows.clear();
  }
}
