/** A process holding the leader lease (for failover tests): prints `leader` once it holds it. */
import { RedisLeaderLease } from '../../router/state/leader-lease.ts';

const [url, keyPrefix, ttlMs] = process.argv.slice(2);
const lease = new RedisLeaderLease({ url: url!, keyPrefix: keyPrefix!, timeoutMs: 1_000, ttlMs: Number(ttlMs), onChange: (leader) => leader && process.stdout.write('leader\n') });
await lease.start();
setInterval(() => {}, 60_000);
