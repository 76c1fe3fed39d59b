import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MEMORY_SESSION_ROWS, MemorySessionLog } from '../../router/state/memory-session-log.ts';
import { MIGRATIONS, migrate } from '../../router/state/pg-migrations.ts';
import { PgSessionLog, type PgSessionLogOptions } from '../../router/state/pg-session-log.ts';
import { ConfigError, DependencyUnavailableError } from '../../shared/errors.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';
import { TEST_DATABASE_URL, TestPgSchemas } from '../utils/test-backends.ts';
import { QUIET_FLUSHER, describeSessionLogContract, sessionRow } from './session-log-contract.ts';

const schemas = new TestPgSchemas();
const sharedSchema = schemas.schema();
afterAll(async () => {
  await schemas.cleanup();
});

describeSessionLogContract('MemorySessionLog', (options) => new MemorySessionLog(options));
it('MemorySessionLog keeps only the most recent MEMORY_SESSION_ROWS rows (a long-running embedded router must not grow)', async () => {
  const log = new MemorySessionLog({ ...QUIET_FLUSHER, batchSize: 5_000, bufferMax: 100_000 });
  await log.start();
  const rows = Array.from({ length: MEMORY_SESSION_ROWS + 250 }, (_, i) => sessionRow({ userId: `u${i}` }));
  for (const row of rows) log.record(row);
  await log.flush();
  expect(await log.get(rows[249]!.id)).toBeNull();
  expect((await log.get(rows[250]!.id))?.userId).toBe('u250');
  expect((await log.get(rows.at(-1)!.id))?.userId).toBe(`u${MEMORY_SESSION_ROWS + 249}`);
  await log.close();
});

describeSessionLogContract('PgSessionLog', (options) => new PgSessionLog({ ...options, connectionString: TEST_DATABASE_URL, schema: sharedSchema }));

describe('PgSessionLog on PostgreSQL', () => {
  const opened: PgSessionLog[] = [];
  function pgLog(options: Partial<PgSessionLogOptions> = {}): PgSessionLog {
    const log = new PgSessionLog({ ...QUIET_FLUSHER, connectionString: TEST_DATABASE_URL, schema: sharedSchema, ...options });
    opened.push(log);
    return log;
  }
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((log) => log.close().catch(() => undefined)));
  });

  const migrationOptions = (schema: string) => ({ connectionString: TEST_DATABASE_URL, schema, connectTimeoutMs: 2_000, statementTimeoutMs: 10_000 });

  it('migrates an empty database to the video_sessions table, and a re-run changes nothing', async () => {
    const schema = schemas.schema();
    expect(await migrate(migrationOptions(schema))).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrate(migrationOptions(schema))).toEqual([]);

    const columns = await schemas.query<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
      `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = 'video_sessions' ORDER BY ordinal_position`,
      [schema],
    );
    expect(columns.map((c) => [c.column_name, c.data_type, c.is_nullable])).toEqual([
      ['id', 'uuid', 'NO'],
      ['room_id', 'character varying', 'NO'],
      ['user_id', 'character varying', 'NO'],
      ['server_id', 'character varying', 'NO'],
      ['created_at', 'timestamp with time zone', 'NO'],
      ['status', 'character varying', 'NO'],
      ['region', 'character varying', 'NO'],
      ['home_region', 'character varying', 'NO'],
      ['ended_at', 'timestamp with time zone', 'YES'],
    ]);
    expect(columns.find((c) => c.column_name === 'status')?.column_default).toBe("'allocated'::character varying");
    const indexes = await schemas.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'video_sessions' ORDER BY indexname`, [schema]);
    expect(indexes.map((i) => i.indexdef.replace(/ ON .*USING btree/, ''))).toEqual([
      'CREATE UNIQUE INDEX video_sessions_pkey (id)',
      'CREATE INDEX video_sessions_room_server_idx (room_id, server_id)',
      'CREATE INDEX video_sessions_user_idx (user_id)',
    ]);
    const applied = await schemas.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations`);
    expect(applied).toEqual([{ version: 1 }]);
  });

  it('two routers starting together apply each migration once', async () => {
    const schema = schemas.schema();
    const logs = Array.from({ length: 4 }, () => pgLog({ schema }));
    await Promise.all(logs.map((log) => log.start()));
    const applied = await schemas.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(applied).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
    const row = sessionRow();
    logs[0]!.record(row);
    await logs[0]!.flush();
    expect(await logs[3]!.get(row.id)).toEqual(row);
  });

  it('writes a flush as one transaction of multi-row statements', async () => {
    const log = pgLog({ batchSize: 7 });
    await log.start();
    const rows = Array.from({ length: 120 }, (_, i) => sessionRow({ roomId: 'batched', userId: `user-${i}` }));
    for (const row of rows) log.record(row);
    for (const row of rows.slice(0, 30)) log.setStatus(row.id, 'active', new Date());
    await log.flush();
    const written = await schemas.query<{ n: string; transactions: string; active: string }>(
      `SELECT count(*) AS n, count(DISTINCT xmin::text) AS transactions, count(*) FILTER (WHERE status = 'active') AS active
       FROM "${sharedSchema}".video_sessions WHERE id = ANY($1::uuid[])`,
      [rows.map((r) => r.id)],
    );
    // The 30 updated rows carry the same transaction id as the inserts: one commit for all.
    expect(written).toEqual([{ n: '120', transactions: '1', active: '30' }]);
  });

  it('a replay by another router (same ids, later statuses) leaves one row each, statuses forward only', async () => {
    const first = pgLog();
    await first.start();
    const rows = Array.from({ length: 20 }, () => sessionRow({ roomId: 'replayed' }));
    for (const row of rows) first.record(row);
    for (const row of rows) first.setStatus(row.id, 'ended', new Date('2024-05-01T11:00:00.000Z'));
    await first.flush();
    const replay = pgLog();
    await replay.start();
    for (const row of rows) replay.record({ ...row, serverId: 'elsewhere' });
    for (const row of rows) replay.setStatus(row.id, 'active', new Date());
    await replay.flush();
    const stored = await schemas.query<{ n: string; servers: string; statuses: string }>(
      `SELECT count(*) AS n, string_agg(DISTINCT server_id, ',') AS servers, string_agg(DISTINCT status, ',') AS statuses
       FROM "${sharedSchema}".video_sessions WHERE id = ANY($1::uuid[])`,
      [rows.map((r) => r.id)],
    );
    expect(stored).toEqual([{ n: '20', servers: 'us-east-1', statuses: 'ended' }]);
  });

  it("a status change that reaches the table before its row (another router's, not written yet) is applied once the row is there", async () => {
    // Router A answers the allocations, the agents report the joins to router B, and B writes first.
    const allocatedBy = pgLog();
    const joinedAt = pgLog();
    await allocatedBy.start();
    await joinedAt.start();
    const rows = Array.from({ length: 5 }, () => sessionRow({ roomId: 'joined-elsewhere' }));
    for (const row of rows) joinedAt.setStatus(row.id, 'active', new Date());
    joinedAt.setStatus(rows[4]!.id, 'ended', new Date('2024-05-01T11:00:00.000Z'));
    await joinedAt.flush();
    // The changes wait for their rows.
    expect(joinedAt.bufferDepth()).toBe(5);
    for (const row of rows) allocatedBy.record(row);
    await allocatedBy.flush();
    await joinedAt.flush();
    const stored = await schemas.query<{ status: string; ended_at: Date | null }>(`SELECT status, ended_at FROM "${sharedSchema}".video_sessions WHERE id = ANY($1::uuid[]) ORDER BY status`, [rows.map((r) => r.id)]);
    expect(stored.map((r) => [r.status, r.ended_at?.toISOString() ?? null])).toEqual([...Array(4).fill(['active', null]), ['ended', '2024-05-01T11:00:00.000Z']]);
    expect(joinedAt.bufferDepth()).toBe(0);
  });

  it('close writes what is still queued', async () => {
    const log = pgLog();
    await log.start();
    const row = sessionRow();
    log.record(row);
    await log.close();
    const reader = pgLog();
    expect(await reader.get(row.id)).toEqual(row);
  });

  it('refuses a schema name that is not a plain identifier', () => {
    expect(() => pgLog({ schema: 'public; DROP TABLE x' })).toThrow(ConfigError);
  });

  describe('with PostgreSQL away (through a fault-injecting proxy)', () => {
    let proxy: TcpFaultProxy;
    beforeAll(async () => {
      proxy = await TcpFaultProxy.start('127.0.0.1', 5432);
    });
    afterAll(async () => {
      await proxy.close();
    });

    const proxied = (options: Partial<PgSessionLogOptions> = {}) =>
      pgLog({
        connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
        batchSize: 25,
        flushMs: 50,
        maxBackoffMs: 200,
        connectTimeoutMs: 500,
        statementTimeoutMs: 500,
        ...options,
      });

    async function countRows(ids: string[]): Promise<{ rows: number; ended: number }> {
      const [result] = await schemas.query<{ rows: string; ended: string }>(
        `SELECT count(*) AS rows, count(*) FILTER (WHERE status = 'ended') AS ended FROM "${sharedSchema}".video_sessions WHERE id = ANY($1::uuid[])`,
        [ids],
      );
      return { rows: Number(result!.rows), ended: Number(result!.ended) };
    }

    it('queues while the database is unreachable and writes every row exactly once after', async () => {
      const log = proxied();
      await log.start();
      const before = Array.from({ length: 30 }, () => sessionRow({ roomId: 'outage' }));
      for (const row of before) log.record(row);
      await log.flush();

      proxy.cut();
      const during = Array.from({ length: 200 }, () => sessionRow({ roomId: 'outage' }));
      for (const row of during.slice(0, 100)) log.record(row);
      await sleep(300);
      expect(log.bufferDepth()).toBe(100);
      for (const row of during.slice(100)) log.record(row);
      for (const row of [...before, ...during].slice(0, 50)) log.setStatus(row.id, 'ended', new Date());
      expect(log.bufferDepth()).toBe(250);
      await expect(log.flush(300)).rejects.toBeInstanceOf(DependencyUnavailableError);
      expect(await countRows(during.map((r) => r.id))).toEqual({ rows: 0, ended: 0 });

      proxy.restore();
      await log.flush(10_000);
      expect(log.bufferDepth()).toBe(0);
      expect(log.droppedCount()).toBe(0);
      expect(await countRows([...before, ...during].map((r) => r.id))).toEqual({ rows: 230, ended: 50 });
    });

    it('a write whose answers come slower than the statement timeout fails, is kept, and is written once later', async () => {
      const log = proxied();
      await log.start();
      const rows = Array.from({ length: 60 }, () => sessionRow({ roomId: 'slow' }));
      for (const row of rows) log.record(row);
      for (const row of rows.slice(0, 10)) log.setStatus(row.id, 'ended', new Date());
      // Answers arrive after the statement timeout: the client gives up and drops the connection.
      proxy.delay(700);
      await expect(log.flush(400)).rejects.toBeInstanceOf(DependencyUnavailableError);
      expect(log.bufferDepth()).toBe(70);
      proxy.restore();
      await log.flush(10_000);
      expect(log.bufferDepth()).toBe(0);
      expect(await countRows(rows.map((r) => r.id))).toEqual({ rows: 60, ended: 10 });
    });

    it('keeps at most bufferMax entries while away: the oldest are dropped and counted', async () => {
      const log = proxied({ bufferMax: 100 });
      await log.start();
      proxy.cut();
      const rows = Array.from({ length: 130 }, () => sessionRow({ roomId: 'overflow' }));
      for (const row of rows.slice(0, 80)) log.record(row);
      // Failed writes put their entries back in front; the bound still holds across retries.
      await sleep(300);
      for (const row of rows.slice(80)) log.record(row);
      expect(log.bufferDepth()).toBe(100);
      expect(log.droppedCount()).toBe(30);
      proxy.restore();
      await log.flush(10_000);
      expect(await countRows(rows.slice(0, 30).map((r) => r.id))).toEqual({ rows: 0, ended: 0 });
      expect(await countRows(rows.slice(30).map((r) => r.id))).toEqual({ rows: 100, ended: 0 });
    });
  });
});
