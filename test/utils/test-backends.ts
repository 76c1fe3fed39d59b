import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** The shared services every real-backend test uses; never stopped or flushed by a test. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/**
 * Key prefixes of one test run (`test:<random>:`, sub-prefixes per test), all deleted by
 * `cleanup()`: the Redis is shared with other runs and other projects.
 */
export class TestRedisKeys {
  readonly runPrefix = `test:${randomSuffix()}:`;
  private next = 0;

  /** A fresh prefix, so a test sees none of the keys of the tests before it. */
  prefix(): string {
    return `${this.runPrefix}${this.next++}:`;
  }

  async cleanup(): Promise<number> {
    const redis = new Redis(TEST_REDIS_URL);
    try {
      let deleted = 0;
      for await (const keys of redis.scanStream({ match: `${this.runPrefix}*`, count: 1_000 }) as AsyncIterable<string[]>) {
        if (keys.length > 0) deleted += await redis.unlink(...keys);
      }
      return deleted;
    } finally {
      redis.disconnect();
    }
  }
}

/** PostgreSQL schemas of one test run (`test_<random>_<n>`), all dropped by `cleanup()`. */
export class TestPgSchemas {
  private readonly runPrefix = `test_${randomSuffix()}`;
  private readonly created: string[] = [];

  /** A schema name nobody uses yet (created by whoever migrates it). */
  schema(): string {
    const name = `${this.runPrefix}_${this.created.length}`;
    this.created.push(name);
    return name;
  }

  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  async cleanup(): Promise<void> {
    for (const name of this.created) await this.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  }
}
