import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PgSessionLog } from '../../router/state/pg-session-log.ts';
import { PrivatePostgres } from '../utils/private-postgres.ts';
import { sessionRow } from './session-log-contract.ts';

/**
 * The session log across a PostgreSQL restart, on a private cluster the test stops (as a crash) and
 * starts again: what is recorded meanwhile is buffered, and every row and status change is written
 * exactly once when the server is back, including a batch whose write the crash cut.
 */
let cluster: PrivatePostgres;
beforeAll(async () => {
  cluster = await PrivatePostgres.start();
}, 60_000);
afterAll(async () => {
  await cluster?.destroy();
});

async function rows(schema: string): Promise<Array<{ id: string; status: string }>> {
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    return (await client.query<{ id: string; status: string }>(`SELECT id::text, status FROM "${schema}".video_sessions`)).rows;
  } finally {
    await client.end();
  }
}

it('rows recorded while PostgreSQL restarts are buffered and written exactly once when it is back', async () => {
  const schema = 'restart_test';
  const log = new PgSessionLog({ connectionString: cluster.url, schema, batchSize: 200, flushMs: 50, bufferMax: 100_000, maxBackoffMs: 200, connectTimeoutMs: 1_000 });
  await log.start();
  const before = Array.from({ length: 100 }, (_, i) => sessionRow({ userId: `before-${i}` }));
  for (const row of before) log.record(row);
  await log.flush();

  // A large batch on its way as the server dies: committed or not, it must land once.
  const cut = Array.from({ length: 2_000 }, (_, i) => sessionRow({ userId: `cut-${i}` }));
  for (const row of cut) log.record(row);
  const inFlight = log.flush(60_000);
  await cluster.stop('immediate');
  const stoppedAt = Date.now();

  const during = Array.from({ length: 300 }, (_, i) => sessionRow({ userId: `during-${i}` }));
  for (const row of during) log.record(row);
  for (const row of before.slice(0, 50)) log.setStatus(row.id, 'active', new Date());
  for (const row of before.slice(0, 10)) log.setStatus(row.id, 'ended', new Date());
  await sleep(500); // background writes fail meanwhile, with backoff
  const buffered = log.bufferDepth();
  expect(buffered).toBeGreaterThanOrEqual(during.length + 60);

  await cluster.resume();
  const resumedAt = Date.now();
  await inFlight;
  await log.flush(30_000);
  console.log(`PostgreSQL down ${resumedAt - stoppedAt} ms (${buffered} entries buffered); everything written ${Date.now() - resumedAt} ms after it was back`);
  expect(log.bufferDepth()).toBe(0);
  expect(log.droppedCount()).toBe(0);

  const written = await rows(schema);
  const all = [...before, ...cut, ...during];
  expect(written).toHaveLength(all.length);
  expect(new Set(written.map((r) => r.id)).size).toBe(all.length);
  const status = new Map(written.map((r) => [r.id, r.status]));
  expect(before.slice(0, 10).map((r) => status.get(r.id))).toEqual(Array(10).fill('ended'));
  expect(before.slice(10, 50).map((r) => status.get(r.id))).toEqual(Array(40).fill('active'));
  expect(during.every((r) => status.get(r.id) === 'allocated')).toBe(true);
  await log.close();
}, 90_000);
