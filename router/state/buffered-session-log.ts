import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { BadRequestError, DependencyUnavailableError } from '../../shared/errors.ts';
import { type SessionBatch, SessionBuffer, isSessionId, validateSessionRow } from './session-buffer.ts';
import type { SessionLog, SessionRow, SessionStatus } from './types.ts';

export interface SessionLogOptions {
  /** Rows (or status changes) per statement (sessionLogBatchSize). */
  batchSize: number;
  /** Interval of the background flusher (sessionLogFlushMs). */
  flushMs: number;
  /** Queued entries kept while the backend is away (sessionLogBufferMax). */
  bufferMax: number;
  /** Longest pause between retries while the backend is away. Default 5 s. */
  maxBackoffMs?: number;
  logger?: Logger;
}

const DEFAULT_FLUSH_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_BACKOFF_MS = 5_000;
/**
 * How long a status change whose row is not in the table yet is kept and written again with the
 * next writes. Router replicas share the table, not their buffers: a participant's allocation
 * answered by one replica and its join reported to another (agents reach any replica) gives a
 * status change that can reach the table before its row; so can a replica's rows held back while
 * the database was away. Past this the row is taken as never coming (its router died with it).
 */
const ROW_WAIT_MS = 60_000;

/**
 * The session log's queueing, flushing and retry policy, shared by the memory and PostgreSQL
 * backends, which only say how to prepare, write a batch, read a row and release. `record` and
 * `setStatus` only queue, so /allocate never waits on the database; one write runs at a time.
 */
export abstract class BufferedSessionLog implements SessionLog {
  private readonly buffer: SessionBuffer;
  private readonly maxBackoffMs: number;
  private timer: NodeJS.Timeout | null = null;
  /** Tail of the write chain: the next write starts after it, whatever its outcome. */
  private writes: Promise<void> = Promise.resolve();
  /** Consecutive failed background writes. */
  private failures = 0;
  private started = false;
  private closed = false;
  /** Status changes written while their row was not in the table: when their row was first missed. */
  private readonly rowMissingSince = new Map<string, number>();

  protected constructor(protected readonly options: SessionLogOptions) {
    this.buffer = new SessionBuffer(options.bufferMax);
    this.maxBackoffMs = Math.max(options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS, options.flushMs);
  }

  /** Readies the backend (migrations); throws when it cannot. */
  protected abstract prepare(): Promise<void>;
  /** Writes one batch, inserts before changes, all or nothing; returns the ids of the changes whose row is not in the table. */
  protected abstract write(batch: SessionBatch): Promise<string[]>;
  abstract get(id: string): Promise<SessionRow | null>;
  /** Releases the backend's resources. */
  protected abstract release(): Promise<void>;

  async start(): Promise<void> {
    await this.prepare();
    this.started = true;
    this.schedule(this.options.flushMs);
  }

  record(row: SessionRow): void {
    validateSessionRow(row);
    this.buffer.addInsert({ ...row });
  }

  setStatus(id: string, status: Exclude<SessionStatus, 'allocated'>, at: Date): void {
    if (!isSessionId(id)) throw new BadRequestError(`session id "${id}" is not a UUID`, 'id');
    this.buffer.addChange({ id, status, at });
  }

  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        // Writes are chained, so once this one succeeds everything queued before the call is written.
        return await this.writeQueued();
      } catch (err) {
        const pause = this.backoff(attempt);
        if (Date.now() + pause > deadline) {
          const failure = new DependencyUnavailableError(`session log: ${this.buffer.depth()} entries not written: ${(err as Error).message}`);
          failure.cause = err;
          throw failure;
        }
        await sleep(pause);
      }
    }
  }

  bufferDepth(): number {
    return this.buffer.depth();
  }

  droppedCount(): number {
    return this.buffer.droppedCount();
  }

  /** Stops the flusher, writes what is queued (up to the flush timeout) and releases the backend; rejects if entries were left unwritten. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      if (this.started) await this.flush();
    } finally {
      await this.release();
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.backgroundFlush(), delayMs);
  }

  private async backgroundFlush(): Promise<void> {
    try {
      await this.writeQueued();
      if (this.failures > 0) this.options.logger?.info({ failures: this.failures }, 'session log writes resumed');
      this.failures = 0;
    } catch (err) {
      this.failures++;
      // The first failure of an outage, then every tenth, so a long outage does not flood the log.
      if (this.failures % 10 === 1) this.options.logger?.warn({ err, failures: this.failures, bufferDepth: this.bufferDepth() }, 'session log write failed; retrying');
    }
    if (!this.closed) this.schedule(this.failures === 0 ? this.options.flushMs : this.backoff(this.failures));
  }

  private writeQueued(): Promise<void> {
    const write = this.writes.then(async () => {
      const batch = this.buffer.take();
      if (!batch) return;
      let withoutRow: string[];
      try {
        withoutRow = await this.write(batch);
      } catch (err) {
        this.buffer.restore();
        throw err;
      }
      this.buffer.commit();
      this.awaitRows(batch, withoutRow);
    });
    this.writes = write.catch(() => undefined);
    return write;
  }

  /** The batch's changes that found no row are queued again, until their row has been missed for ROW_WAIT_MS. */
  private awaitRows(batch: SessionBatch, withoutRow: string[]): void {
    const missing = new Set(withoutRow.map((id) => id.toLowerCase()));
    const nowMs = Date.now();
    // First missed first: what a full buffer dropped is forgotten here too, oldest first.
    for (const [id, since] of this.rowMissingSince) {
      if (nowMs - since <= 2 * ROW_WAIT_MS) break;
      this.rowMissingSince.delete(id);
    }
    for (const change of batch.changes) {
      const id = change.id.toLowerCase();
      const since = this.rowMissingSince.get(id);
      if (!missing.has(id)) {
        if (since !== undefined) this.rowMissingSince.delete(id);
        continue;
      }
      if (since !== undefined && nowMs - since > ROW_WAIT_MS) {
        this.rowMissingSince.delete(id);
        this.options.logger?.info({ id, status: change.status }, 'session log: status change dropped, its row never reached the table');
        continue;
      }
      this.rowMissingSince.set(id, since ?? nowMs);
      this.buffer.addChange(change);
    }
  }

  private backoff(attempt: number): number {
    return Math.min(this.options.flushMs * 2 ** attempt, this.maxBackoffMs);
  }
}
