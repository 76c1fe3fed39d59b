import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { configWith, type GeoSfuConfig } from '../../shared/config/index.ts';
import { buildRouter } from '../../router/app.ts';
import type { RouterApp } from '../../router/services.ts';
import { preloadGeoIp } from '../../router/geo.ts';
import { createStores } from '../../router/state/index.ts';
import { redisTarget } from '../../router/state/redis-client.ts';
import { RedisLimitStore } from '../../router/state/redis-limit-store.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL, TestPgSchemas, TestRedisKeys } from './test-backends.ts';

export const REDIS_URL = TEST_REDIS_URL;
export const DATABASE_URL = TEST_DATABASE_URL;

export type Backend = 'memory' | 'real';

const redisKeys = new TestRedisKeys();
const pgSchemas = new TestPgSchemas();

/** A namespace of this run on the shared Redis and PostgreSQL (parallel work shares one of each). */
export function runNamespace(): { redisKeyPrefix: string; pgSchema: string } {
  return { redisKeyPrefix: redisKeys.prefix(), pgSchema: pgSchemas.schema() };
}

/** Deletes every Redis key and PostgreSQL schema `runNamespace()` handed out in this file. */
export async function cleanupNamespaces(): Promise<void> {
  await redisKeys.cleanup();
  await pgSchemas.cleanup();
}

/** Test configuration: secrets set, fast timings, quiet logs, real stores when backend is 'real'. */
export function testConfig(backend: Backend, overrides: Partial<GeoSfuConfig> = {}, ns = runNamespace()): GeoSfuConfig {
  return configWith({
    logLevel: 'silent',
    clusterSecret: 'c'.repeat(40),
    tokenKeys: [{ kid: 'k1', secret: 's'.repeat(40) }],
    apiKey: 'api-key-for-tests-0123456789abcdef',
    adminToken: 'admin-token-for-tests-0123456789abcdef',
    routerPort: 0,
    heartbeatIntervalMs: 200,
    suspectAfterMs: 700,
    deadAfterMs: 1_500,
    probeIntervalMs: 200,
    // Shared 2-core machines stall at times; production keeps the 500 ms default.
    redisTimeoutMs: 3_000,
    // Tests and benchmarks send bursts from one address; the limiter has a test of its own.
    rateLimitPerMinute: 0,
    ...(backend === 'real' ? { redisUrl: REDIS_URL, databaseUrl: DATABASE_URL, ...ns } : {}),
    ...overrides,
  });
}

export interface RunningRouter {
  app: RouterApp;
  url: string;
  config: GeoSfuConfig;
  close(): Promise<void>;
}

/**
 * Builds and starts a router on a free port; `extend` may add routes before it listens.
 * `sharedLimits`: its limits and nonces in Redis, as router/main.ts does with REDIS_URL.
 */
export async function startRouter(config: GeoSfuConfig, extend?: (app: RouterApp) => void, options: { sharedLimits?: boolean } = {}): Promise<RunningRouter> {
  const geoLookup = await preloadGeoIp();
  const logger = pino({ level: 'silent' });
  const { rooms, nodes, sessions } = await createStores(config, { logger });
  const redis = redisTarget(config);
  const limitStore = options.sharedLimits && redis ? await RedisLimitStore.open({ ...redis, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisTimeoutMs }) : undefined;
  const app = await buildRouter({ config, rooms, nodes, sessions, geoLookup, logger, ...(limitStore ? { limitStore } : {}) });
  extend?.(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { app, url, config, close: () => app.close() };
}
