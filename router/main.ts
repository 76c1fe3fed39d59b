/**
 * Router entry point: `node --import tsx router/main.ts` in development, `node dist/router/main.js`
 * once built (`npm run build`). Reads and validates the configuration,
 * picks the stores (Redis/PostgreSQL when REDIS_URL/DATABASE_URL are set, in-memory otherwise),
 * serves until SIGTERM/SIGINT, then closes cleanly.
 */
import { pino } from 'pino';
import { ConfigError } from '../shared/errors.ts';
import { installProcessSafety } from '../shared/process-safety.ts';
import { CONFIG_SPEC, loadConfig } from '../shared/config/index.ts';
import { trustCaForOutgoingCalls } from '../shared/tls.ts';
import { buildRouter } from './app.ts';
import { preloadGeoIp } from './geo.ts';
import { createStores } from './state/index.ts';
import { RedisLeaderLease } from './state/leader-lease.ts';
import { redisTarget } from './state/redis-client.ts';
import { RedisLimitStore } from './state/redis-limit-store.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  // The router keeps only hashes of its static credentials (buildRouter); not in its environment either.
  delete process.env[CONFIG_SPEC.apiKey.env];
  delete process.env[CONFIG_SPEC.adminToken.env];
  const missing: string[] = [];
  if (config.clusterSecret === '') missing.push('GEO_SFU_CLUSTER_SECRET is required (agents sign their calls with it)');
  if (config.tokenKeys.length === 0) missing.push('GEO_SFU_TOKEN_SECRETS is required (join tokens are signed with it)');
  if (config.requireAuth && config.apiKey === '' && config.apiKeyHashes === '' && config.grantKeys.length === 0) {
    missing.push('GEO_SFU_REQUIRE_AUTH (on in production mode) needs GEO_SFU_API_KEY, GEO_SFU_API_KEY_HASHES or GEO_SFU_GRANT_SECRETS: nobody could allocate');
  }
  if (missing.length > 0) throw new ConfigError(missing);

  trustCaForOutgoingCalls(config.tlsCaFile);
  const logger = pino({ level: config.logLevel });
  const geoLookup = await preloadGeoIp();
  const { rooms, nodes, sessions, backends } = await createStores(config, { logger });
  logger.info({ backends }, 'stores open');
  const redis = redisTarget(config);
  const lease = redis
    ? new RedisLeaderLease({ ...redis, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisTimeoutMs, ttlMs: config.leaderLeaseMs, renewMs: config.leaderRenewMs, logger, onChange: (leader) => logger.info({ leader }, 'leader lease') })
    : undefined;
  // Replicas share their limits and the nonces of signed requests in Redis (router/limits.ts).
  const limitStore = redis ? await RedisLimitStore.open({ ...redis, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisTimeoutMs, logger }) : undefined;
  const app = await buildRouter({ config, rooms, nodes, sessions, geoLookup, logger, ...(lease ? { lease } : {}), ...(limitStore ? { limitStore } : {}) });
  installProcessSafety({ name: 'router', logger: app.log, count: (kind) => app.metrics.unexpectedErrors.inc({ kind }), close: () => app.close() });
  await app.listen({ host: config.routerHost, port: config.routerPort });
  app.log.info({ url: `${config.tlsCertFile === '' ? 'http' : 'https'}://${config.routerHost}:${(app.server.address() as { port: number }).port}` }, 'router listening');

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'router shutting down');
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'error while closing');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`geo-sfu router: ${err instanceof ConfigError ? err.message : (err as Error).stack}\n`);
  process.exit(1);
});
