import pg from 'pg';

export interface Migration {
  version: number;
  name: string;
  /** DDL for the given (already quoted) schema. */
  sql(schema: string): string;
}

/** Append only: a released migration is never edited, a change is a new version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'video_sessions',
    sql: (schema) => `
      CREATE TABLE ${schema}.video_sessions (
        id UUID PRIMARY KEY,
        room_id VARCHAR(255) NOT NULL,
        user_id VARCHAR(128) NOT NULL,
        server_id VARCHAR(100) NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        status VARCHAR(50) NOT NULL DEFAULT 'allocated',
        region VARCHAR(64) NOT NULL,
        home_region VARCHAR(64) NOT NULL,
        ended_at TIMESTAMPTZ NULL
      );
      CREATE INDEX video_sessions_room_server_idx ON ${schema}.video_sessions (room_id, server_id);
      CREATE INDEX video_sessions_user_idx ON ${schema}.video_sessions (user_id);
    `,
  },
];

export interface MigrateOptions {
  connectionString: string;
  /** Unquoted schema name (validated by the caller). */
  schema: string;
  connectTimeoutMs: number;
  /** Limit of each migration statement (DDL may take longer than a session-log write). */
  statementTimeoutMs: number;
}

/**
 * Brings `schema` up to the latest migration and returns the versions applied now. Runs on its own
 * connection under a session advisory lock keyed by the schema, so routers starting together take
 * turns: the first applies, the others find nothing left to do. Each migration commits with its
 * `schema_migrations` row in one transaction, so it is applied exactly once or not at all.
 */
export async function migrate(options: MigrateOptions): Promise<number[]> {
  const schema = `"${options.schema}"`;
  const client = new pg.Client({
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.statementTimeoutMs,
    application_name: 'geo-sfu-migrate',
  });
  // A connection lost mid-migration fails the pending query; this only keeps the event handled.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`geo-sfu:migrations:${options.schema}`]);
    // Created under the lock: concurrent CREATE ... IF NOT EXISTS can still collide on the catalog.
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
    )`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations`);
    const done = new Set(rows.map((row) => row.version));
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      try {
        await client.query('BEGIN');
        await client.query(migration.sql(schema));
        await client.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      applied.push(migration.version);
    }
    return applied;
  } finally {
    // Ending the session releases the advisory lock too.
    await client.end().catch(() => undefined);
  }
}
