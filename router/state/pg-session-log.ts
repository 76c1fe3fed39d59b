import pg from 'pg';
import { CONFIG_SPEC } from '../../shared/config/spec.ts';
import { ConfigError } from '../../shared/errors.ts';
import { dependencyFailure } from './dependency-error.ts';
import { BufferedSessionLog, type SessionLogOptions } from './buffered-session-log.ts';
import { migrate } from './pg-migrations.ts';
import { FINAL_STATUSES, STATUS_RANK, type SessionBatch, type StatusChange, isSessionId } from './session-buffer.ts';
import type { SessionRow, SessionStatus } from './types.ts';

export interface PgSessionLogOptions extends SessionLogOptions {
  connectionString: string;
  /** Schema holding the tables (pgSchema); created by the first migration run. */
  schema: string;
  /** Opening a connection fails after this long. Default 2 s. */
  connectTimeoutMs?: number;
  /** A statement fails after this long (server- and client-side). Default 5 s. */
  statementTimeoutMs?: number;
  /** Limit of each migration statement. Default 60 s. */
  migrationTimeoutMs?: number;
}

interface VideoSessionRow {
  id: string;
  room_id: string;
  user_id: string;
  server_id: string;
  region: string;
  home_region: string;
  status: SessionStatus;
  created_at: Date;
  ended_at: Date | null;
}

/** SQL CASE giving a status column's rank, generated from STATUS_RANK so the two cannot disagree. */
function rankOf(column: string): string {
  return `CASE ${column} ${Object.entries(STATUS_RANK)
    .map(([status, rank]) => `WHEN '${status}' THEN ${rank}`)
    .join(' ')} END`;
}

/**
 * The durable session log: the guide's `video_sessions` table in the configured schema. Each
 * write is one transaction of multi-row statements over arrays (`unnest`), so a batch is one
 * statement with a fixed parameter count whatever its size. Inserts are `ON CONFLICT (id) DO
 * NOTHING` and a status change only applies if it moves the status forward, so a batch replayed
 * after a lost COMMIT acknowledgement changes nothing.
 */
export class PgSessionLog extends BufferedSessionLog {
  private readonly pool: pg.Pool;
  private readonly table: string;
  private readonly insertSql: string;
  private readonly changeSql: string;

  constructor(private readonly pgOptions: PgSessionLogOptions) {
    super(pgOptions);
    // The schema is spliced into SQL as an identifier, so it is checked here as well as in loadConfig.
    const schemaPattern = CONFIG_SPEC.pgSchema.pattern ?? /^$/;
    if (!schemaPattern.test(pgOptions.schema)) {
      throw new ConfigError([`GEO_SFU_PG_SCHEMA: "${pgOptions.schema}" does not match ${schemaPattern}`]);
    }
    const statementTimeoutMs = pgOptions.statementTimeoutMs ?? 5_000;
    this.pool = new pg.Pool({
      connectionString: pgOptions.connectionString,
      // One write at a time plus reads (get).
      max: 4,
      connectionTimeoutMillis: pgOptions.connectTimeoutMs ?? 2_000,
      statement_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: 'geo-sfu-router',
    });
    // An idle connection dropped by the server is discarded by the pool; the next write reports
    // the outage if it lasts. Without a listener the 'error' event would crash the process.
    this.pool.on('error', () => undefined);
    this.table = `"${pgOptions.schema}".video_sessions`;
    this.insertSql = `INSERT INTO ${this.table} (id, room_id, user_id, server_id, region, home_region, status, created_at, ended_at)
      SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], $8::timestamptz[], $9::timestamptz[])
      ON CONFLICT (id) DO NOTHING`;
    // Answers the changes whose row is not in the table (yet): the data-modifying CTE runs whether
    // or not the SELECT reads it, and the SELECT sees the rows as they were before it (the same ids).
    this.changeSql = `WITH c AS (SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::timestamptz[]) AS c(id, status, at)),
      changed AS (
        UPDATE ${this.table} AS s
        SET status = c.status,
            ended_at = CASE WHEN c.status IN (${FINAL_STATUSES.map((status) => `'${status}'`).join(', ')}) THEN c.at ELSE s.ended_at END
        FROM c
        WHERE s.id = c.id AND ${rankOf('s.status')} < ${rankOf('c.status')}
      )
      SELECT c.id FROM c WHERE NOT EXISTS (SELECT 1 FROM ${this.table} AS s WHERE s.id = c.id)`;
  }

  async get(id: string): Promise<SessionRow | null> {
    if (!isSessionId(id)) return null;
    try {
      const { rows } = await this.pool.query<VideoSessionRow>(
        `SELECT id, room_id, user_id, server_id, region, home_region, status, created_at, ended_at FROM ${this.table} WHERE id = $1`,
        [id],
      );
      return rows[0] ? toSessionRow(rows[0]) : null;
    } catch (err) {
      throw dependencyFailure('postgres', err);
    }
  }

  protected async prepare(): Promise<void> {
    try {
      await migrate({
        connectionString: this.pgOptions.connectionString,
        schema: this.pgOptions.schema,
        connectTimeoutMs: this.pgOptions.connectTimeoutMs ?? 2_000,
        statementTimeoutMs: this.pgOptions.migrationTimeoutMs ?? 60_000,
      });
    } catch (err) {
      throw dependencyFailure('postgres', err);
    }
  }

  protected async write(batch: SessionBatch): Promise<string[]> {
    const client = await this.pool.connect();
    // A server that dies (a PostgreSQL restart) mid-write fails the query, and the checked-out
    // client also emits 'error': without a listener that would end the router. The query's
    // failure is what counts (the batch is retried).
    const ignore = (): void => undefined;
    client.on('error', ignore);
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      for (const rows of chunks(batch.inserts, this.options.batchSize)) await client.query(this.insertSql, insertParams(rows));
      const withoutRow: string[] = [];
      for (const changes of chunks(batch.changes, this.options.batchSize)) {
        const { rows } = await client.query<{ id: string }>(this.changeSql, changeParams(changes));
        withoutRow.push(...rows.map((row) => row.id));
      }
      await client.query('COMMIT');
      return withoutRow;
    } catch (err) {
      failure = err as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      // A failed connection is destroyed rather than handed to the next write.
      client.off('error', ignore);
      client.release(failure);
    }
  }

  protected async release(): Promise<void> {
    await this.pool.end();
  }
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function insertParams(rows: SessionRow[]): unknown[] {
  return [
    rows.map((r) => r.id),
    rows.map((r) => r.roomId),
    rows.map((r) => r.userId),
    rows.map((r) => r.serverId),
    rows.map((r) => r.region),
    rows.map((r) => r.homeRegion),
    rows.map((r) => r.status),
    rows.map((r) => r.createdAt),
    rows.map((r) => r.endedAt),
  ];
}

function changeParams(changes: StatusChange[]): unknown[] {
  return [changes.map((c) => c.id), changes.map((c) => c.status), changes.map((c) => c.at)];
}

function toSessionRow(row: VideoSessionRow): SessionRow {
  return {
    id: row.id,
    roomId: row.room_id,
    userId: row.user_id,
    serverId: row.server_id,
    region: row.region,
    homeRegion: row.home_region,
    status: row.status,
    createdAt: row.created_at,
    endedAt: row.ended_at,
  };
}
