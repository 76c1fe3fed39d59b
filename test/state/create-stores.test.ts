import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createStores } from '../../router/state/index.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { DependencyUnavailableError } from '../../shared/errors.ts';
import { TcpFaultProxy } from '../utils/tcp-fault-proxy.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TestPgSchemas, TestRedisKeys } from '../utils/test-backends.ts';
import { allocation, participant } from './room-store-contract.ts';
import { sessionRow } from './session-log-contract.ts';

const logger = pino({ level: 'silent' });
const keys = new TestRedisKeys();
const schemas = new TestPgSchemas();
afterAll(async () => {
  await keys.cleanup();
  await schemas.cleanup();
});

describe('createStores', () => {
  it('keeps state in memory when REDIS_URL and DATABASE_URL are not set', async () => {
    const stores = await createStores(loadConfig({}), { logger });
    try {
      expect(stores.backends).toEqual({ rooms: 'memory', nodes: 'memory', sessions: 'memory' });
      expect((await stores.rooms.allocate(allocation('r1', participant('alice', 'us-east-1')))).status).toBe('ok');
    } finally {
      await stores.close();
    }
  });

  it('uses Redis and PostgreSQL when their URLs are set, under the configured prefix and schema', async () => {
    const prefix = keys.prefix();
    const schema = schemas.schema();
    const config = loadConfig({ REDIS_URL: TEST_REDIS_URL, DATABASE_URL: TEST_DATABASE_URL, GEO_SFU_REDIS_PREFIX: prefix, GEO_SFU_PG_SCHEMA: schema });
    const stores = await createStores(config, { logger });
    const row = sessionRow();
    try {
      expect(stores.backends).toEqual({ rooms: 'redis', nodes: 'redis', sessions: 'postgres' });
      expect((await stores.rooms.allocate(allocation('r1', participant('alice', 'us-east-1')))).status).toBe('ok');
      stores.sessions.record(row);
    } finally {
      await stores.close();
    }
    // close() flushed the queued row.
    expect(await schemas.query(`SELECT user_id FROM "${schema}".video_sessions WHERE id = $1`, [row.id])).toEqual([{ user_id: 'user-1' }]);
    const reopened = await createStores(config, { logger });
    try {
      expect((await reopened.rooms.getRoom('r1'))?.participants.map((p) => p.participantId)).toEqual(['alice']);
    } finally {
      await reopened.close();
    }
  });

  it('fails with DependencyUnavailableError when a configured backend is unreachable', async () => {
    const proxy = await TcpFaultProxy.start('127.0.0.1', 5432);
    proxy.cut();
    try {
      const config = loadConfig({
        REDIS_URL: TEST_REDIS_URL,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
        GEO_SFU_REDIS_PREFIX: keys.prefix(),
        GEO_SFU_PG_SCHEMA: schemas.schema(),
      });
      await expect(createStores(config, { logger })).rejects.toBeInstanceOf(DependencyUnavailableError);
    } finally {
      await proxy.close();
    }
  });
});
