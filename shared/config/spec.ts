/**
 * Every tunable of geo-sfu, in one place, with its default, unit and meaning (in the spirit of
 * jicofo's reference.conf). Values come from the environment (`GEO_SFU_*`, plus the conventional
 * REDIS_URL and DATABASE_URL); `loadConfig` validates all of them at start and refuses to run with
 * a message naming each bad variable. The configuration table of docs/configuration.md is checked against this
 * list by a test, so the two cannot drift.
 */

export type Component = 'router' | 'agent' | 'launcher' | 'setup' | 'all';

interface BaseSpec {
  env: string;
  component: Component;
  doc: string;
}
export interface IntSpec extends BaseSpec {
  kind: 'int';
  default: number;
  min: number;
  max: number;
}
export interface NumberSpec extends BaseSpec {
  kind: 'number';
  default: number;
  min: number;
  max: number;
}
export interface StringSpec extends BaseSpec {
  kind: 'string';
  default: string;
  /** When set, the value must match. */
  pattern?: RegExp;
}
export interface BoolSpec extends BaseSpec {
  kind: 'bool';
  default: boolean;
}
export interface EnumSpec<T extends string = string> extends BaseSpec {
  kind: 'enum';
  values: readonly T[];
  default: T;
}
export type Spec = IntSpec | NumberSpec | StringSpec | BoolSpec | EnumSpec;

const int = (env: string, component: Component, def: number, min: number, max: number, doc: string): IntSpec => ({
  kind: 'int', env, component, default: def, min, max, doc,
});
const num = (env: string, component: Component, def: number, min: number, max: number, doc: string): NumberSpec => ({
  kind: 'number', env, component, default: def, min, max, doc,
});
const str = (env: string, component: Component, def: string, doc: string, pattern?: RegExp): StringSpec => ({
  kind: 'string', env, component, default: def, doc, ...(pattern ? { pattern } : {}),
});
const bool = (env: string, component: Component, def: boolean, doc: string): BoolSpec => ({
  kind: 'bool', env, component, default: def, doc,
});
function oneOf<const T extends string>(env: string, component: Component, values: readonly T[], def: T, doc: string): EnumSpec<T> {
  return { kind: 'enum', env, component, values, default: def, doc };
}

const HOUR_MS = 3_600_000;

export const CONFIG_SPEC = {
  // --- common ---
  logLevel: oneOf('GEO_SFU_LOG_LEVEL', 'all', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level.'),
  regions: str('GEO_SFU_REGIONS', 'all', '', 'Region catalog as JSON `[{"id","displayName","lat","lon"}, ...]`; empty means the four default regions (us-west, us-east, eu-west, apac).'),
  clusterSecret: str('GEO_SFU_CLUSTER_SECRET', 'all', '', 'Shared secret (≥ 32 chars) for signed router↔agent and agent↔agent requests. Empty: the embedded launcher generates one per run; a standalone router or agent refuses to start without it.'),
  signedRequestWindowMs: int('GEO_SFU_SIGNED_REQUEST_WINDOW_MS', 'all', 30_000, 1_000, 600_000, 'Replay window of signed requests: a request whose timestamp is further than this from now, or whose nonce was seen within it, is refused.'),
  httpRequestTimeoutMs: int('GEO_SFU_HTTP_REQUEST_TIMEOUT_MS', 'all', 30_000, 100, 600_000, "Router and agent HTTP listeners: a request (headers and body) not received in full within this is answered 408 and its connection closed, so slow-body clients cannot hold connections. Long-lived streams (/events, socket.io) are not requests in this sense once open."),
  httpHeadersTimeoutMs: int('GEO_SFU_HTTP_HEADERS_TIMEOUT_MS', 'all', 10_000, 100, 600_000, "Router and agent HTTP listeners: a request's headers not received within this end its connection (at most GEO_SFU_HTTP_REQUEST_TIMEOUT_MS)."),
  httpKeepAliveTimeoutMs: int('GEO_SFU_HTTP_KEEP_ALIVE_TIMEOUT_MS', 'all', 72_000, 100, 600_000, "Router and agent HTTP listeners: an idle keep-alive connection is closed after this (longer than the usual 60 s of load balancers, so they close first)."),
  httpMaxConnections: int('GEO_SFU_HTTP_MAX_CONNECTIONS', 'all', 10_000, 0, 10_000_000, 'Router and agent HTTP listeners: concurrent connections (HTTP, socket.io, /events) accepted; past it new connections are closed at once. 0 = no limit.'),
  failedAuthPerMinute: int('GEO_SFU_FAILED_AUTH_PER_MINUTE', 'all', 60, 0, 10_000_000, 'Router and agents: after this many 401 answers to one client IP within a minute, its requests carrying a credential (bearer token, API key, request signature) get 429 until the minute is over. 0 = no limit.'),
  tokenSecrets: str('GEO_SFU_TOKEN_SECRETS', 'all', '', 'Join-token keys as `kid1:secret1,kid2:secret2` (each secret ≥ 32 chars). The first signs; all verify, so a key can be rotated without downtime. Empty: the embedded launcher generates one.'),
  // --- router ---
  routerHost: str('GEO_SFU_ROUTER_HOST', 'router', '127.0.0.1', 'Address the router listens on.'),
  routerPort: int('GEO_SFU_ROUTER_PORT', 'router', 8080, 0, 65_535, 'Port the router listens on (0 = any free port).'),
  routerMetricsPort: str('GEO_SFU_ROUTER_METRICS_PORT', 'router', '', 'Serve GET /metrics on a listener of its own at this port (on GEO_SFU_ROUTER_HOST; 0 = any free port) and not on the main port, so the main port can be public and metrics stay internal. Empty: /metrics on the main port.', /^(|0|[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])$/),
  trustProxy: str('GEO_SFU_TRUST_PROXY', 'router', 'false', "fastify `trustProxy`: `false`, `true`, a hop count, or a comma-separated list of proxy addresses/CIDRs. Decides whether X-Forwarded-For gives the client's IP."),
  adminToken: str('GEO_SFU_ADMIN_TOKEN', 'all', '', 'Bearer token for admin routes (cordon, capacity override, rooms listing). Kept only as its SHA-256 hash. Empty: the embedded launcher generates and prints one.'),
  adminTokenHash: str('GEO_SFU_ADMIN_TOKEN_HASH', 'all', '', 'The admin token given by its SHA-256 instead (`printf %s "$TOKEN" | sha256sum`, 64 hex digits), so the token itself never reaches the router or agents.', /^([0-9a-f]{64})?$/),
  apiKey: str('GEO_SFU_API_KEY', 'router', '', 'API key for server-side callers of /allocate; only these may pass `clientIp` in the body. The router keeps only its SHA-256 hash and removes the variable from its environment at start. Empty (and no GEO_SFU_API_KEY_HASHES): the embedded launcher generates and prints one; a standalone router then has no API key.'),
  apiKeyHashes: str('GEO_SFU_API_KEY_HASHES', 'router', '', 'API keys given by their SHA-256 instead (`printf %s "$KEY" | sha256sum`), comma-separated 64-hex digests: the key itself never reaches the router; several allow rotating keys without downtime.', /^([0-9a-f]{64}(,[0-9a-f]{64})*)?$/),
  grantSecrets: str('GEO_SFU_GRANT_SECRETS', 'router', '', "Keys the application's backend signs grants with, `kid:secret,...` (≥ 32 chars each); grants let browsers call /allocate without an API key. Empty: grants are not accepted."),
  grantIssuer: str('GEO_SFU_GRANT_ISSUER', 'router', '', 'Required `iss` of grants. Empty: any issuer.'),
  grantAudience: str('GEO_SFU_GRANT_AUDIENCE', 'router', 'geo-sfu', 'Required `aud` of grants.'),
  demoGrants: bool('GEO_SFU_DEMO_GRANTS', 'router', false, 'Serve POST /demo/grant, which hands anyone a short-lived grant for the room and participant they name (for the /demo page, which has no application backend). Development only: the embedded default turns it on, production mode refuses it. Signs with the first GEO_SFU_GRANT_SECRETS key (the embedded launcher generates one).'),
  demoGrantTtlS: int('GEO_SFU_DEMO_GRANT_TTL_S', 'router', 60, 10, 3_600, 'Lifetime of a demo grant, seconds (the SDK asks for a fresh one before every /allocate).'),
  demoGrantsPerMinute: int('GEO_SFU_DEMO_GRANTS_PER_MINUTE', 'router', 30, 1, 10_000, 'Demo grants per minute per client IP.'),
  requireAuth: bool('GEO_SFU_REQUIRE_AUTH', 'router', false, '/allocate requires the API key or a grant. Off in the embedded default for development; production mode turns it on.'),
  nodeCallsPerMinute: int('GEO_SFU_NODE_CALLS_PER_MINUTE', 'router', 12_000, 0, 10_000_000, "Signed /v1/nodes/* calls (register, heartbeat, join/leave reports, room-nodes) per minute per node id, counted after the signature verifies (never per IP: many agents may share an address); more get 429. 0 = no limit."),
  eventsMaxSubscribers: int('GEO_SFU_EVENTS_MAX_SUBSCRIBERS', 'router', 200, 0, 1_000_000, 'Dashboard /events streams open at once; more get 503. 0 = no limit.'),
  eventsMaxPerIp: int('GEO_SFU_EVENTS_MAX_PER_IP', 'router', 10, 0, 1_000_000, 'Dashboard /events streams open at once per client IP; more get 429. 0 = no limit.'),
  eventsSlowReaderMs: int('GEO_SFU_EVENTS_SLOW_READER_MS', 'router', 10_000, 100, 600_000, 'An /events subscriber whose connection stays unable to take more data this long is dropped (its buffered snapshots discarded).'),
  rateLimitPerMinute: int('GEO_SFU_RATE_LIMIT_PER_MINUTE', 'router', 600, 0, 10_000_000, '/allocate calls allowed per minute per grant participant or, without a credential, per client IP; 0 = no limit (for the API key too).'),
  apiKeyRateLimitPerMinute: int('GEO_SFU_API_KEY_RATE_LIMIT_PER_MINUTE', 'router', 60_000, 0, 100_000_000, "/allocate calls allowed per minute with the API key (all of an application's servers together: they allocate for every participant); 0 = no limit."),
  corsOrigins: str('GEO_SFU_CORS_ORIGINS', 'router', '', "Origins allowed to call the router from a browser (the SDK's pages), comma-separated; `*` for any; empty: none."),
  tlsCertFile: str('GEO_SFU_TLS_CERT_FILE', 'all', '', 'PEM certificate: the router and agents serve HTTPS (the agents also WSS signaling) when set with GEO_SFU_TLS_KEY_FILE; agents then advertise https:// URLs.'),
  tlsKeyFile: str('GEO_SFU_TLS_KEY_FILE', 'all', '', 'PEM private key for GEO_SFU_TLS_CERT_FILE.'),
  tlsCaFile: str('GEO_SFU_TLS_CA_FILE', 'all', '', "PEM CA certificate(s) trusted on top of the system's for the router's and agents' outgoing HTTPS (agent→router calls, router→agent probes, agent↔agent probes and cascade calls, webhooks): set it when the listeners' certificates come from an internal CA."),
  joinTokenTtlMs: int('GEO_SFU_JOIN_TOKEN_TTL_MS', 'router', 120_000, 5_000, HOUR_MS, 'Lifetime of a join token returned by /allocate.'),
  allocationTtlMs: int('GEO_SFU_ALLOCATION_TTL_MS', 'router', 30_000, 1_000, HOUR_MS, 'An allocation not followed by a join within this time expires and its capacity reservation is released.'),
  sessionOverlapMs: int('GEO_SFU_SESSION_OVERLAP_MS', 'router', 10_000, 0, 300_000, 'When a newer allocation of a participant joins (a move, a failover, an `excludeNodeIds` re-allocation), its older sessions on other nodes are closed this long after that join (`removed`, reason `replaced`): the overlap make-before-break moves need. 0: at once.'),
  kickMemoryMs: int('GEO_SFU_KICK_MEMORY_MS', 'router', 24 * HOUR_MS, 1_000, 30 * 24 * HOUR_MS, "How long an admin removal (`DELETE /rooms/:r/participants/:p`) is remembered: meanwhile /allocate refuses that participant's grants issued at or before it (`403 KICKED`). Set it at least to the longest grant lifetime your backend issues."),
  heartbeatIntervalMs: int('GEO_SFU_HEARTBEAT_INTERVAL_MS', 'all', 1_000, 100, 60_000, 'How often agents send heartbeats (load and inter-region RTTs) to the router.'),
  suspectAfterMs: int('GEO_SFU_SUSPECT_AFTER_MS', 'router', 1_500, 200, 120_000, 'A node with no heartbeat for this long is suspect (still routable, not preferred).'),
  deadAfterMs: int('GEO_SFU_DEAD_AFTER_MS', 'router', 3_000, 300, 300_000, 'A node with no heartbeat for this long is dead: it gets no participants.'),
  forgetDeadAfterMs: int('GEO_SFU_FORGET_DEAD_AFTER_MS', 'router', 600_000, 1_000, 24 * HOUR_MS, 'A dead node is removed from the registry after this long.'),
  probeIntervalMs: int('GEO_SFU_PROBE_INTERVAL_MS', 'all', 1_000, 50, 60_000, 'Interval between latency probes (router→agent and agent→agent).'),
  probePeersPerRegion: int('GEO_SFU_PROBE_PEERS_PER_REGION', 'router', 3, 1, 1_000, "How many live nodes of each region (its own included) an agent probes: the router's heartbeat answer lists that many per region, not every node, so probes and heartbeat work per node do not grow with the fleet. The inter-region matrix keeps, per region pair, the best RTT measured among the pairs probed."),
  probeRotateMs: int('GEO_SFU_PROBE_ROTATE_MS', 'router', 600_000, 1_000, 24 * HOUR_MS, "How long an agent keeps probing the same peers of a region before the router moves its window on to the next ones (each pair of nodes is measured in turn; a new peer's smoothed RTT starts over)."),
  probeTimeoutMs: int('GEO_SFU_PROBE_TIMEOUT_MS', 'all', 2_000, 50, 60_000, 'A probe without an answer in this time counts as lost.'),
  rttEwmaAlpha: num('GEO_SFU_RTT_EWMA_ALPHA', 'all', 0.2, 0.01, 1, 'Weight of a new RTT sample in the smoothed RTT (EWMA); jitter uses the same weight over |sample − previous sample|.'),
  lossWindow: int('GEO_SFU_LOSS_WINDOW', 'all', 20, 2, 1_000, 'Number of recent probes over which loss is computed.'),
  maxCpu: num('GEO_SFU_MAX_CPU', 'router', 0.7, 0.05, 1, "CPU fraction at which a node's stress reaches 1 (the guide scales at 70%)."),
  maxMemory: num('GEO_SFU_MAX_MEMORY', 'router', 0.8, 0.05, 1, "Memory fraction at which a node's stress reaches 1 (the guide's 80%)."),
  maxRoomParticipants: int('GEO_SFU_MAX_ROOM_PARTICIPANTS', 'all', 100, 0, 1_000_000, "Participants one room may hold (allocated or joined, across its nodes): /allocate refuses the next newcomer with `409 ROOM_FULL`, atomically in the room store (a participant already in the room allocating again keeps its place). Agents size the signaling request burst from it. 0 = no limit."),
  maxParticipantsPerNode: int('GEO_SFU_MAX_PARTICIPANTS_PER_NODE', 'all', 100, 1, 100_000, 'Participants at which a node\'s stress reaches 1 (the guide\'s 100 per SFU); an agent may advertise less.'),
  marginMs: num('GEO_SFU_MARGIN_MS', 'router', 0, 0, 500, "Keep a newcomer in a region already in the room unless a new region lowers the newcomer's mean one-way delay to the others by more than this. 0 = pure delay minimisation."),
  placementStrategy: oneOf('GEO_SFU_PLACEMENT_STRATEGY', 'router', ['min-delay', 'first-joiner', 'nearest'], 'min-delay', 'min-delay: each newcomer gets the edge minimising the room\'s mean pairwise delay; first-joiner: the room lives where its first participant is best served (LiveKit OSS style); nearest: each participant on its own nearest region.'),
  rebalance: bool('GEO_SFU_REBALANCE', 'router', true, "Live rebalancing: after joins and leaves the router re-optimises the room's edges and tells participants to move (make-before-break) when that lowers the room's mean pairwise delay enough."),
  rebalanceDebounceMs: int('GEO_SFU_REBALANCE_DEBOUNCE_MS', 'router', 2_000, 0, 600_000, 'A room is rebalanced this long after its last join or leave (a burst of joins gives one decision).'),
  rebalanceMinRoomGainMs: num('GEO_SFU_REBALANCE_MIN_ROOM_GAIN_MS', 'router', 1, 0, 500, "Rebalance only when the room's mean pairwise one-way delay drops by more than this."),
  rebalanceMinPersonGainMs: num('GEO_SFU_REBALANCE_MIN_PERSON_GAIN_MS', 'router', 2, 0, 500, "Move a participant only when its own mean one-way delay to the others drops by at least this."),
  rebalanceWindowMs: int('GEO_SFU_REBALANCE_WINDOW_MS', 'router', 120_000, 0, 24 * HOUR_MS, 'A participant moved by rebalancing is not moved again within this.'),
  rebalancePlanTtlMs: int('GEO_SFU_REBALANCE_PLAN_TTL_MS', 'router', 20_000, 1_000, HOUR_MS, "How long /allocate keeps a moved participant's planned edge for it; a room with a plan in flight is not rebalanced again meanwhile."),
  geoBaseRttMs: num('GEO_SFU_GEO_BASE_RTT_MS', 'router', 5, 0, 500, 'Geo model: RTT = base + msPerKm × great-circle km (calibrated on public inter-region RTTs).'),
  geoMsPerKm: num('GEO_SFU_GEO_MS_PER_KM', 'router', 0.0125, 0.001, 1, 'Geo model: RTT milliseconds per km of great-circle distance (fibre at 2/3 c with route inflation ≈ 1.25).'),
  defaultClientRttMs: num('GEO_SFU_DEFAULT_CLIENT_RTT_MS', 'router', 100, 0, 10_000, 'RTT assumed to every region for a client with no measurements and no locatable IP.'),
  roomIdleTtlMs: int('GEO_SFU_ROOM_IDLE_TTL_MS', 'router', 300_000, 1_000, 7 * 24 * HOUR_MS, 'An empty room (no participants, no pending allocations) is forgotten after this long.'),
  iceServers: str('GEO_SFU_ICE_SERVERS', 'router', '[]', 'STUN/TURN servers returned by /allocate, JSON `[{"urls":[...], "regions":[...]}]`; `regions` (optional) tags where a server is: a room with a region policy gets only servers whose every tagged region it allows (untagged: none).'),
  turnSecret: str('GEO_SFU_TURN_SECRET', 'router', '', "coturn's `static-auth-secret`: /allocate then returns time-limited TURN credentials (REST API scheme) for the edge region's TURN servers. Empty: no TURN credentials."),
  turnUrls: str('GEO_SFU_TURN_URLS', 'router', '{}', 'TURN servers per region, JSON `{ "us-west": ["turn:turn-usw.example.com:3478"], "*": [...] }` (`*`: regions without their own).'),
  turnAnyRegions: str('GEO_SFU_TURN_ANY_REGIONS', 'router', '', 'Regions the `*` TURN servers of GEO_SFU_TURN_URLS are in, comma-separated: a room with a region policy gets them only when every one of these regions is allowed (docs/region-policy.md). Empty: never for such rooms. (GEO_SFU_ICE_SERVERS entries are tagged with their own `regions`.)', /^([a-z0-9][a-z0-9-]{0,31}(,[a-z0-9][a-z0-9-]{0,31})*)?$/),
  turnTtlSeconds: int('GEO_SFU_TURN_TTL_S', 'router', 3_600, 60, 7 * 24 * 3_600, 'Lifetime of the TURN credentials /allocate returns.'),
  redisUrl: str('REDIS_URL', 'router', '', 'Redis URL for shared room state and registry (router replicas). Empty (and no GEO_SFU_REDIS_SENTINELS): in-memory state (single router).'),
  redisSentinels: str('GEO_SFU_REDIS_SENTINELS', 'router', '', 'Redis behind Sentinel, instead of REDIS_URL (setting both is an error): `host:port,host:port,...` of the sentinels. The router asks them for the primary of GEO_SFU_REDIS_SENTINEL_NAME and follows a failover without restarting (docs/high-availability.md).', /^(|[^,:\s]+:\d{1,5}(,[^,:\s]+:\d{1,5})*)$/),
  redisSentinelName: str('GEO_SFU_REDIS_SENTINEL_NAME', 'router', 'geo-sfu', 'The master group name the sentinels monitor (`sentinel monitor <name> ...`).', /^[A-Za-z0-9._-]{1,64}$/),
  redisSentinelPassword: str('GEO_SFU_REDIS_SENTINEL_PASSWORD', 'router', '', "Password of the sentinels (their `requirepass`). Empty: none."),
  redisPassword: str('GEO_SFU_REDIS_PASSWORD', 'router', '', 'Password of the Redis data nodes behind Sentinel (with REDIS_URL the URL carries it). Empty: none.'),
  redisTls: bool('GEO_SFU_REDIS_TLS', 'router', false, 'TLS to the Redis data nodes behind Sentinel (with REDIS_URL: a `rediss://` URL), verified against the system CAs and GEO_SFU_TLS_CA_FILE.'),
  redisSentinelTls: bool('GEO_SFU_REDIS_SENTINEL_TLS', 'router', false, 'TLS to the sentinels themselves.'),
  redisMinReplicasAck: int('GEO_SFU_REDIS_MIN_REPLICAS_ACK', 'router', 0, 0, 16, "After the script that pins a room and records an allocation, the router sends `WAIT <n> <GEO_SFU_REDIS_TIMEOUT_MS / 2>` on the same connection, so the allocation is answered only once n replicas have it (or the wait ran out): a failover then loses it only if the sentinels promote a replica that had not acknowledged it. A wait that runs out with fewer acknowledgements still serves the allocation (it is on the primary) and counts it in geo_sfu_redis_replica_ack_shortfalls. 0: no WAIT (docs/high-availability.md measures both)."),
  redisKeyPrefix: str('GEO_SFU_REDIS_PREFIX', 'router', 'geo-sfu:', 'Prefix of every Redis key this deployment writes.'),
  redisTimeoutMs: int('GEO_SFU_REDIS_TIMEOUT_MS', 'router', 500, 10, 60_000, 'A Redis command that does not answer in this time fails (so /allocate never hangs on Redis).'),
  degradedAllocation: bool('GEO_SFU_DEGRADED_ALLOCATION', 'router', true, "While Redis is unreachable, /allocate still places participants of a room this router knows (its last view of the room: home, epoch, nodes) on a node already serving the room, in a region already part of it: no new pin, region or re-home. Such allocations are journaled on local disk (GEO_SFU_JOURNAL_DIR) and written to Redis (idempotently, by allocation id) as soon as it is back, before anything else. Off: every /allocate answers 503 while Redis is away."),
  journalDir: str('GEO_SFU_JOURNAL_DIR', 'router', '', "Folder of the degraded journal (GEO_SFU_DEGRADED_ALLOCATION with REDIS_URL): each allocation made while Redis is away is appended to a file here and fsynced before it is answered; at start a router adopts and replays the files that dead routers of its deployment (same GEO_SFU_REDIS_PREFIX) left here, its own previous run included. Give each router replica a persistent volume (a Kubernetes StatefulSet) for the journal to outlive the pod. Empty: `geo-sfu-journal` in the OS temporary folder (survives a process restart on the same host, not a new container)."),
  journalMaxBytes: int('GEO_SFU_JOURNAL_MAX_BYTES', 'router', 64 * 1024 * 1024, 64 * 1024, 16 * 1024 * 1024 * 1024, 'Largest degraded journal file: past it the file is compacted to the allocations still waiting for Redis, and a degraded allocation that would not fit is refused (503). An allocation takes about 400 bytes (its participant record as JSON).'),
  degradedSeatsPerNode: int('GEO_SFU_DEGRADED_SEATS_PER_NODE', 'router', 20, 1, 100_000, 'Most participants one router places on one node while Redis is away, and never more than the node had free at the router\'s last registry read. Each router replica has its own budget, so a node is overbooked by at most (replicas − 1) × this.'),
  leaderLeaseMs: int('GEO_SFU_LEADER_LEASE_MS', 'router', 3_000, 300, 60_000, 'Router replicas sharing Redis run background duties (allocation expiry, re-homing, scaling, alert webhooks) on the one holding a Redis lease of this length, renewed every GEO_SFU_LEADER_RENEW_MS: when the leader dies, another router takes over within about this time.'),
  databaseUrl: str('DATABASE_URL', 'router', '', 'PostgreSQL URL for the durable session log. Empty: in-memory session log.'),
  pgSchema: str('GEO_SFU_PG_SCHEMA', 'router', 'public', 'PostgreSQL schema holding geo-sfu tables.', /^[a-z_][a-z0-9_]{0,62}$/),
  sessionLogBatchSize: int('GEO_SFU_SESSION_LOG_BATCH_SIZE', 'router', 200, 1, 10_000, 'Session-log rows written per INSERT.'),
  sessionLogFlushMs: int('GEO_SFU_SESSION_LOG_FLUSH_MS', 'router', 200, 10, 60_000, 'Session-log buffer flush interval.'),
  sessionLogBufferMax: int('GEO_SFU_SESSION_LOG_BUFFER_MAX', 'router', 100_000, 100, 10_000_000, 'Rows kept while PostgreSQL is away; past this the oldest are dropped and counted.'),
  scalingWindowMs: int('GEO_SFU_SCALING_WINDOW_MS', 'router', 30_000, 1_000, 24 * HOUR_MS, 'A scaling condition must hold this long before the scaling manager acts on it.'),
  scaleOutStress: num('GEO_SFU_SCALE_OUT_STRESS', 'router', 0.8, 0.1, 1, "Scale out a region when its nodes' mean stress stays at or above this for the window."),
  scaleInStress: num('GEO_SFU_SCALE_IN_STRESS', 'router', 0.3, 0, 0.9, "Scale in a region with several nodes when its nodes' mean stress stays below this for the window (hysteresis: must be well under the scale-out level)."),
  scalingCooldownMs: int('GEO_SFU_SCALING_COOLDOWN_MS', 'router', 300_000, 0, 24 * HOUR_MS, 'After a scaling decision for a region, no other decision for it before this long (no flapping).'),
  addRegionRttMs: num('GEO_SFU_ADD_REGION_RTT_MS', 'router', 150, 10, 10_000, "Advise adding a region when clients' median RTT to the region they were placed in stays above this (more nodes would not lower it)."),
  scalingWebhookUrl: str('GEO_SFU_SCALING_WEBHOOK_URL', 'router', '', 'When set, each scaling decision is POSTed here, signed like agent calls (cluster secret) and retried with backoff.'),
  alertLossRatio: num('GEO_SFU_ALERT_LOSS_RATIO', 'router', 0.05, 0, 1, "Quality alert when a participant's packet loss, or a cascade link's (what a node receives from another), stays above this fraction (the guide's 5%)."),
  alertRttMs: num('GEO_SFU_ALERT_RTT_MS', 'router', 200, 1, 10_000, "Quality alert when a participant's RTT, or a cascade link's (the two nodes' probe RTT), stays above this (the guide's 200 ms)."),
  alertJitterMs: num('GEO_SFU_ALERT_JITTER_MS', 'router', 30, 1, 10_000, "Quality alert when the jitter of what a cascade link carries stays above this, ms (participants' jitter raises none). 30 ms is the usual ceiling for real-time media (receivers' jitter buffers grow past it); ±20 ms on a link (docs/benchmarks.md's worst impaired case) reads 12–14 ms (RFC 3550 jitter, test/cascade/link-alerts.test.ts), ±60 ms reads 35–47 ms."),
  alertWindowMs: int('GEO_SFU_ALERT_WINDOW_MS', 'router', 10_000, 0, HOUR_MS, 'A quality condition must hold this long to raise an alert, and be gone this long to clear it.'),
  alertWebhookUrl: str('GEO_SFU_ALERT_WEBHOOK_URL', 'router', '', 'When set, alerts raised and cleared are POSTed here, signed with the cluster secret and retried.'),
  appWebhookUrls: str('GEO_SFU_APP_WEBHOOK_URLS', 'router', '', "Application webhooks (docs/webhooks.md): room and participant events are POSTed to each of these URLs (comma-separated), signed with GEO_SFU_APP_WEBHOOK_SECRETS, at least once, in order per room. Empty: no application events are raised."),
  appWebhookSecrets: str('GEO_SFU_APP_WEBHOOK_SECRETS', 'router', '', 'Keys application webhooks are signed with, `kid:secret,...` (≥ 32 chars each): the first signs, the key id travels in the signature header, so the application can rotate keys. Never the cluster secret.'),
  appWebhookMaxAttempts: int('GEO_SFU_APP_WEBHOOK_MAX_ATTEMPTS', 'router', 25, 1, 1_000_000, "Attempts at an application webhook event before it goes to the dead-letter stream (the room's next events are held behind it until then)."),
  appWebhookMaxAgeMs: int('GEO_SFU_APP_WEBHOOK_MAX_AGE_MS', 'router', 3_600_000, 1_000, 7 * 24 * HOUR_MS, 'An application webhook event still undelivered this long after it was queued goes to the dead-letter stream at its next failure: the longest receiver outage that loses nothing.'),
  appWebhookRetryMs: int('GEO_SFU_APP_WEBHOOK_RETRY_MS', 'router', 1_000, 10, 600_000, 'First delay before an application webhook event is tried again; it doubles with each failure up to GEO_SFU_APP_WEBHOOK_RETRY_MAX_MS.'),
  appWebhookRetryMaxMs: int('GEO_SFU_APP_WEBHOOK_RETRY_MAX_MS', 'router', 300_000, 10, HOUR_MS, 'Longest delay between two attempts at an application webhook event.'),
  appWebhookTimeoutMs: int('GEO_SFU_APP_WEBHOOK_TIMEOUT_MS', 'router', 5_000, 100, 120_000, 'A receiver that has not answered an application webhook delivery within this failed that attempt.'),
  appWebhookPollMs: int('GEO_SFU_APP_WEBHOOK_POLL_MS', 'router', 250, 10, 60_000, "How often each router looks for rooms with events due (events it queued itself are picked up at once); also the cadence of room_finished checks."),
  appWebhookConcurrency: int('GEO_SFU_APP_WEBHOOK_CONCURRENCY', 'router', 32, 1, 10_000, 'Rooms whose events one router delivers at once (one event in flight per room).'),
  p2pFallback: bool('GEO_SFU_P2P_FALLBACK', 'router', false, "When no region can take a small room (every candidate dead, cordoned, draining or at stress ≥ 1), /allocate answers `mode: \"p2p\"`: the participants connect directly (full mesh), signaling relayed by the router, and move to an SFU once a region can take the room. Off (the default, since a client without P2P support cannot use such an answer): /allocate answers 503 with Retry-After. The embedded default turns it on outside production mode (its /demo page speaks P2P)."),
  p2pMaxParticipants: int('GEO_SFU_P2P_MAX_PARTICIPANTS', 'router', 4, 2, 8, 'Largest P2P fallback room (a full mesh sends every stream N − 1 times); the next participant gets 503 with Retry-After.'),
  p2pLeaseMs: int('GEO_SFU_P2P_LEASE_MS', 'router', 15_000, 1_000, HOUR_MS, "A P2P participant's place in its room lasts this long unless its relay connection renews it (renewed every GEO_SFU_P2P_CHECK_INTERVAL_MS), so a router replica that dies does not leave ghosts."),
  p2pCheckIntervalMs: int('GEO_SFU_P2P_CHECK_INTERVAL_MS', 'router', 1_000, 100, 60_000, 'How often the relay renews its P2P participants and checks whether a region can take their room now (then it tells them to move to the SFU).'),
  p2pRelayMessagesPerSecond: int('GEO_SFU_P2P_RELAY_MESSAGES_PER_SECOND', 'router', 50, 1, 10_000, 'Signaling messages one relay connection may send per second (bursts up to twice this); more are refused with RATE_LIMITED.'),
  // router cadences: how often the router's background work runs
  registryRefreshMs: int('GEO_SFU_REGISTRY_REFRESH_MS', 'router', 250, 10, 60_000, "The router re-reads the node registry (nodes, heartbeats, inter-region RTTs) from its store this often, or every GEO_SFU_HEARTBEAT_INTERVAL_MS when that is shorter; placement reads the last copy."),
  rehomeIntervalMs: int('GEO_SFU_REHOME_INTERVAL_MS', 'router', 500, 10, 60_000, 'How often the leader looks for nodes that died and moves the home of their rooms to a live node of the room.'),
  reconcileIntervalMs: int('GEO_SFU_RECONCILE_INTERVAL_MS', 'router', 30_000, 1_000, HOUR_MS, "With Redis: how often the leader reconciles the rooms and node counts in Redis with the agents' inventories of their sessions (and at once after a Redis failover is seen): participants Redis lost are re-created, those no node serves are dropped, counts recounted, a second home's participants and an overbooked node's newest are told to move."),
  redisIdentityCheckMs: int('GEO_SFU_REDIS_IDENTITY_CHECK_MS', 'router', 1_000, 100, 60_000, "With Redis: how often each router checks which server holds the data (the primary's run_id). A change (a failover, a restart, data lost) starts a reconcile, and for GEO_SFU_ALLOCATION_TTL_MS after it a join report of an allocation Redis does not know re-creates it instead of answering \"not current\"."),
  journalReplayIntervalMs: int('GEO_SFU_JOURNAL_REPLAY_INTERVAL_MS', 'router', 250, 10, 60_000, 'While allocations made with Redis away (GEO_SFU_DEGRADED_ALLOCATION) wait to be written there, the router tries this often, even with no new /allocate.'),
  expirySweepIntervalMs: int('GEO_SFU_EXPIRY_SWEEP_INTERVAL_MS', 'router', 1_000, 10, 60_000, 'How often the leader releases allocations not joined within GEO_SFU_ALLOCATION_TTL_MS, or every half of that TTL when shorter.'),
  scalingIntervalMs: int('GEO_SFU_SCALING_INTERVAL_MS', 'router', 1_000, 10, 60_000, "How often the leader's scaling manager looks at the regions' stress and clients' RTTs."),
  alertIntervalMs: int('GEO_SFU_ALERT_INTERVAL_MS', 'router', 1_000, 10, 60_000, "How often the leader's quality monitor looks at the participants' loss and RTT and the cascade links' loss, RTT and jitter."),
  eventsIntervalMs: int('GEO_SFU_EVENTS_INTERVAL_MS', 'router', 1_000, 100, 60_000, 'Dashboard /events: one snapshot this often to every subscriber (computed only while someone listens).'),
  leaderRenewMs: int('GEO_SFU_LEADER_RENEW_MS', 'router', 0, 0, 60_000, 'A router renews (or tries to take) the leader lease this often; must be well under GEO_SFU_LEADER_LEASE_MS. 0 = a third of the lease (at least 50 ms).'),
  roomNodesPushSpacingMs: int('GEO_SFU_ROOM_NODES_PUSH_SPACING_MS', 'router', 25, 0, 1_000, "Least time between the starts of two room node-set pushes from this router to one agent: the rooms that change meanwhile go in the next push together, so a router allocating hundreds of participants a second sends each agent at most 1000 / this pushes a second (each a signed HTTP call), not one per room changed. A change after a quiet spell is pushed at once. 0: the next push leaves as soon as the last is answered."),
  routerCallTimeoutMs: int('GEO_SFU_ROUTER_CALL_TIMEOUT_MS', 'router', 2_000, 50, 60_000, "The router's calls to agents (rebalancing moves, room node-set pushes) fail after this; neither waits for the other side beyond it."),
  // --- agent ---
  agentId: str('GEO_SFU_AGENT_ID', 'agent', '', 'Node id of this agent (unique in the deployment). Empty: `<region>-<random>`.'),
  agentRegion: str('GEO_SFU_AGENT_REGION', 'agent', '', 'Region this agent serves (a catalog id). Required for a standalone agent.'),
  agentHost: str('GEO_SFU_AGENT_HOST', 'agent', '127.0.0.1', 'Address the agent listens on (HTTP + signaling).'),
  agentPort: int('GEO_SFU_AGENT_PORT', 'agent', 0, 0, 65_535, 'Port the agent listens on (0 = any free port).'),
  agentMetricsPort: str('GEO_SFU_AGENT_METRICS_PORT', 'agent', '', 'Serve GET /metrics on a listener of its own at this port (on GEO_SFU_AGENT_HOST; 0 = any free port) and not on the main port, so the main port can be public and metrics stay internal. Empty: /metrics on the main port.', /^(|0|[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])$/),
  agentPublicUrl: str('GEO_SFU_AGENT_PUBLIC_URL', 'agent', '', 'URL clients and other agents use to reach this agent. Empty: derived from host and port.'),
  routerUrl: str('GEO_SFU_ROUTER_URL', 'agent', 'http://127.0.0.1:8080', 'URL of the router (or its load balancer) the agent registers with.'),
  agentCpuCores: num('GEO_SFU_AGENT_CPU_CORES', 'agent', 0, 0, 1_024, "CPU cores this agent may use; its load is its own process's and mediasoup workers' CPU time over this. 0 = the host's core count."),
  agentMemoryMb: int('GEO_SFU_AGENT_MEMORY_MB', 'agent', 4_096, 64, 1_048_576, "Memory this agent may use (MiB); its memory load is its own and its workers' resident size over this."),
  peerRoutes: str('GEO_SFU_PEER_ROUTES', 'agent', '{}', 'JSON `{ "<nodeId>": "<baseUrl>" }`: reach these peers through another URL than the one they registered (private interconnects; the embedded launcher\'s WAN emulation).'),
  sfuWorkers: int('GEO_SFU_SFU_WORKERS', 'agent', 0, 0, 256, 'mediasoup workers this agent runs (one per core is the norm). 0 = one per core available.'),
  rtcListenIp: str('GEO_SFU_RTC_LISTEN_IP', 'agent', '127.0.0.1', 'Address the SFU listens on for WebRTC media (UDP/TCP), and for pipes to other regions.'),
  rtcAnnouncedAddress: str('GEO_SFU_RTC_ANNOUNCED_ADDRESS', 'agent', '', 'Public address announced in ICE candidates when the listen address is not reachable as such (NAT, 0.0.0.0). Empty: the listen address.'),
  rtcMinPort: int('GEO_SFU_RTC_MIN_PORT', 'agent', 40_000, 1_024, 65_535, 'Lowest UDP/TCP port the SFU uses for media (open this range in firewalls).'),
  rtcMaxPort: int('GEO_SFU_RTC_MAX_PORT', 'agent', 49_999, 1_024, 65_535, 'Highest UDP/TCP port the SFU uses for media.'),
  consumersPerWorker: int('GEO_SFU_CONSUMERS_PER_WORKER', 'agent', 500, 10, 100_000, "Consumers one mediasoup worker carries at about 85% CPU (see the SFU benchmark); past 80% of it a room spreads to another worker's router."),
  pipeEnableSrtp: bool('GEO_SFU_PIPE_SRTP', 'agent', true, 'Encrypt media on pipe transports between regions (SRTP).'),
  keyFrameRequestDelayMs: int('GEO_SFU_KEYFRAME_REQUEST_DELAY_MS', 'agent', 350, 0, 5_000, "Least time between two key frame requests the SFU sends to a client's video producer; requests within it (new consumers, new cascade links) are merged and sent when it ends. Above libwebrtc's 300 ms, a request is sent when the browser takes it; below, a browser that just sent a key frame ignores it and the viewer waits a second for mediasoup's retry. 0: each at once."),
  keyFramesAhead: bool('GEO_SFU_KEYFRAMES_AHEAD', 'agent', true, "Ask for a joining client's first key frames of other regions' video when its transport is ICE-connected, instead of when its DTLS handshake has ended: the key frame crosses the inter-region link meanwhile (sfu/ RoomRouterOptions.keyFramesAhead). Off: mediasoup asks when the transport connects."),
  pipeEnableRtx: bool('GEO_SFU_PIPE_RTX', 'agent', true, 'Retransmit lost packets on pipe transports between regions (RTX/NACK).'),
  pipeFecShare: num('GEO_SFU_PIPE_FEC_SHARE', 'agent', 0.23, 0, 1, "Pipe conditioner (region-agent/cascade/conditioner.ts): the most a cascade link spends on FEC, as a share of its bytes. Each audio and video stream's consecutive packets form groups, each closed as soon as this budget pays for it (a video group at a frame's end, an audio one on its time: GEO_SFU_PIPE_FEC_GROUP_MS), by a repair symbol over it and the group before (a sliding-window Reed-Solomon code), so the far end rebuilds a lost packet from the next symbol and two from the next two, without a round trip (0.23: a symbol every three or four packets of 15 fps video at 190 kbit/s; with the retransmissions of what the symbols cannot repair, a lossy link carries about 1.25 × its bytes. Fewer freezes cost bytes: measured at that rate with 1 % loss ±10 ms, 0.35 and 1.33 × its bytes left none in the worst stream, 0.23 one freeze in 15 s; docs/benchmarks.md). Retransmissions and RTCP are not protected. The share follows the loss the far end reports over a minute: all of it from 0.5 % loss up, in proportion below, none on a link found clean, and none on a link shorter than GEO_SFU_PIPE_FEC_MIN_RTT_MS. 0 = no FEC. The conditioner runs when this or GEO_SFU_PIPE_REORDER_MAX_MS is on; a link between a node that runs it and one that does not carries no FEC and holds nothing on the side without it."),
  pipeFecGroupMs: int('GEO_SFU_PIPE_FEC_GROUP_MS', 'agent', 100, 1, 1_000, 'Pipe conditioner: a video group\'s repair symbol goes at the latest this long after its first packet, borrowing up to one symbol ahead of GEO_SFU_PIPE_FEC_SHARE (bounds how late a rebuild comes on a slow stream); else at the first end of a frame the budget pays for. An audio group\'s goes twice this long after its first packet (ten Opus packets at 100 ms: its symbols come from the same budget).'),
  pipeFecMinRttMs: int('GEO_SFU_PIPE_FEC_MIN_RTT_MS', 'agent', 40, 0, 10_000, "Pipe conditioner: a cascade link whose round trip (measured by the conditioners themselves, from the echo of their loss reports) is shorter carries no FEC: a lost packet's retransmission, and a second one when that is lost too, come back within 2 × this + the reordering allowance (GEO_SFU_PIPE_REORDER_MAX_MS), before a frame that late counts as a freeze (Chrome: 150 ms), so FEC would buy nothing there (libwebrtc's hybrid NACK/FEC likewise protects no video below a low round trip). A link is protected until its first round trip is measured (about a second). 0 = FEC on every link."),
  pipeVideoBufferMs: int('GEO_SFU_PIPE_VIDEO_BUFFER_MS', 'agent', 150, 0, 4_000, "Pipe conditioner: the least jitter buffer target (`RTCRtpReceiver.jitterBufferTarget`, set by the SDK) asked of browsers for video piped in over a lossy cascade link (3 or more media packets lost in the last minute, or too few seen yet to tell) whose round trip is not under GEO_SFU_PIPE_FEC_MIN_RTT_MS; the link's round trip when that is longer (as the conditioners measure it; told again when it moves by 20 ms or more). A browser measures its round trip to its own edge, not the link's, so it waits for none of the link's repair: this covers a loss that waits for a FEC symbol (a group or two of frames), the round trip one that waits for a retransmission (Chrome counts a freeze about 150 ms past the buffer's time). Measured on the sample profile's links (docs/benchmarks.md): the worst stream froze 0.0 % of the time at 1 % loss ±10 ms and 1.7 % at 3 % ±20 ms (mean 0.5 %), against 2.5 % and 4.8 % (mean 2.2 %) with no target, and 0.0 % and 2.2–4.1 % with 150 ms alone (before audio was protected too). Browsers keep audio in sync, so it delays the far participant's audio as much. 0 = the browsers' own choice."),
  pipeReorderMaxMs: int('GEO_SFU_PIPE_REORDER_MAX_MS', 'agent', 60, 0, 1_000, "Pipe conditioner: a video stream's packets reach the pipe transport in sequence order (audio's as they come: its jitter buffer reorders); those behind a gap wait until it fills (late packet or FEC rebuild) or for a reordering allowance (1.5 × how late packets came on the link lately + 3 ms; 20 ms before any came late), at most this; so mediasoup NACKs only packets not merely reordered, and the browsers do not see the reordering. A gap still open then is asked for at once and filled by whichever comes first, its rebuild or its retransmission. Must be > 0 when GEO_SFU_PIPE_FEC_SHARE is. 0 = no hold."),
  signalingConnectionsPerMinute: int('GEO_SFU_SIGNALING_CONNECTIONS_PER_MINUTE', 'agent', 300, 0, 10_000_000, 'socket.io signaling connection attempts (join or resume) an agent accepts per minute per client IP; more are refused with `RATE_LIMITED`. 0 = no limit (what the tests, the soak and the benchmarks set: they connect many times from one address).'),
  maxTransportsPerPeer: int('GEO_SFU_MAX_TRANSPORTS_PER_PEER', 'agent', 4, 0, 100_000, 'WebRTC transports one participant may hold on the SFU (a client needs a send and a recv transport; the rest is slack for an ICE restart gone wrong); the next is refused with `TOO_MANY_TRANSPORTS`. 0 = no limit.'),
  maxProducersPerPeer: int('GEO_SFU_MAX_PRODUCERS_PER_PEER', 'agent', 8, 0, 100_000, 'Producers (audio, video) one participant may hold (camera, microphone and a screen share with its audio, twice over); the next is refused with `TOO_MANY_PRODUCERS`. 0 = no limit.'),
  maxConsumersPerPeer: int('GEO_SFU_MAX_CONSUMERS_PER_PEER', 'agent', 200, 0, 1_000_000, 'Consumers one participant may hold: a full room (GEO_SFU_MAX_ROOM_PARTICIPANTS, 100) × 2 kinds; the next is refused with `TOO_MANY_CONSUMERS`. 0 = no limit.'),
  maxDataProducersPerPeer: int('GEO_SFU_MAX_DATA_PRODUCERS_PER_PEER', 'agent', 4, 0, 100_000, 'Data producers (data channels sent) one participant may hold; the next is refused with `TOO_MANY_DATA_PRODUCERS`. 0 = no limit.'),
  maxDataConsumersPerPeer: int('GEO_SFU_MAX_DATA_CONSUMERS_PER_PEER', 'agent', 200, 0, 1_000_000, 'Data consumers one participant may hold (two data channels from each other participant of a full room); the next is refused with `TOO_MANY_DATA_CONSUMERS`. 0 = no limit.'),
  signalingRequestsPerSecond: int('GEO_SFU_SIGNALING_REQUESTS_PER_SECOND', 'agent', 50, 0, 1_000_000, "Signaling requests one connection may send per second (a token bucket refilled at this rate); more are answered `RATE_LIMITED` and not run. The bucket holds 4 × GEO_SFU_MAX_ROOM_PARTICIPANTS + 32 requests (no room limit: GEO_SFU_MAX_PARTICIPANTS_PER_NODE instead), so the SDK's join of a full room (consume + resumeConsumer for each audio and video producer of every other participant, plus its own ~10 set-up requests) fits in one burst. 0 = no limit."),
  resumeGraceMs: int('GEO_SFU_RESUME_GRACE_MS', 'agent', 30_000, 0, HOUR_MS, 'A client whose signaling connection dropped may resume its session within this time, even after its join token expired.'),
  drainDeadlineMs: int('GEO_SFU_DRAIN_DEADLINE_MS', 'agent', 30_000, 0, 24 * HOUR_MS, 'On SIGTERM an agent stops taking rooms and exits when empty or after this long.'),
  // --- agent cadences ---
  agentCallTimeoutMs: int('GEO_SFU_AGENT_CALL_TIMEOUT_MS', 'agent', 0, 0, 600_000, "Timeout of an agent's control-plane calls (to the router, and to other agents for the cascade). 0 = twice GEO_SFU_HEARTBEAT_INTERVAL_MS, at least 1 s: long enough for a busy router, short enough that a stuck call costs a couple of heartbeats."),
  agentRegisterRetryMs: int('GEO_SFU_AGENT_REGISTER_RETRY_MS', 'agent', 250, 10, 600_000, 'First delay before an agent tries its registration again; it doubles (with jitter) up to GEO_SFU_AGENT_REGISTER_RETRY_MAX_MS.'),
  agentRegisterRetryMaxMs: int('GEO_SFU_AGENT_REGISTER_RETRY_MAX_MS', 'agent', 10_000, 10, 600_000, 'Longest delay between two registration attempts of an agent.'),
  agentDrainCheckMs: int('GEO_SFU_AGENT_DRAIN_CHECK_MS', 'agent', 250, 10, 60_000, 'How often a draining agent checks whether its last participant has left.'),
  drainMoveLeadMs: int('GEO_SFU_DRAIN_MOVE_LEAD_MS', 'agent', 5_000, 0, HOUR_MS, 'A draining agent tells its clients to move (`moved`, reason `draining`) this long before GEO_SFU_DRAIN_DEADLINE_MS, and at most a fifth of the deadline before it, so they reconnect elsewhere before it closes.'),
  joinReportAttempts: int('GEO_SFU_JOIN_REPORT_ATTEMPTS', 'agent', 3, 1, 100, "Attempts of a participant's `joined` or `left` report to the router before the agent gives it up (a 4xx answer is not tried again)."),
  joinReportRetryMs: int('GEO_SFU_JOIN_REPORT_RETRY_MS', 'agent', 200, 0, 60_000, 'Delay before the n-th retry of a `joined` or `left` report: n times this.'),
  joinRecheckHeartbeats: int('GEO_SFU_JOIN_RECHECK_HEARTBEATS', 'agent', 5, 1, 10_000, 'A session admitted while the router could not answer its `joined` report (fail open) is reported again after this many heartbeat intervals.'),
  signalingPingIntervalMs: int('GEO_SFU_SIGNALING_PING_INTERVAL_MS', 'agent', 5_000, 100, 600_000, 'socket.io ping interval of signaling connections. With GEO_SFU_SIGNALING_PING_TIMEOUT_MS it bounds how long a silently dead connection (a closed laptop, a lost network) goes unnoticed: 10 s by default, a third of GEO_SFU_RESUME_GRACE_MS; meanwhile and until it resumes or the grace ends, the dashboard shows the participant "reconnecting".'),
  signalingPingTimeoutMs: int('GEO_SFU_SIGNALING_PING_TIMEOUT_MS', 'agent', 5_000, 100, 600_000, 'A signaling connection that does not answer a ping within this is dropped (its session then waits GEO_SFU_RESUME_GRACE_MS for a resume).'),
  signalingFlushMs: int('GEO_SFU_SIGNALING_FLUSH_MS', 'agent', 50, 0, 10_000, 'After a final `moved` or `removed`, how long the client has to receive it before the agent disconnects it.'),
  signalingCloseWaitMs: int('GEO_SFU_SIGNALING_CLOSE_WAIT_MS', 'agent', 1_000, 0, 60_000, 'On close, how long an agent waits for the router to hear the `left` reports of the sessions it ends.'),
  cascadeReconcileMs: int('GEO_SFU_CASCADE_RECONCILE_MS', 'agent', 10_000, 100, HOUR_MS, "How often an agent asks the router for the node sets of its rooms and reconciles its cascade links with them: a safety net, as the router pushes a room's node set when it changes and answers a join with it (a set older than the one held is ignored)."),
  cascadeSyncIntervalMs: int('GEO_SFU_CASCADE_SYNC_INTERVAL_MS', 'agent', 1_000, 50, 60_000, "Each cascade link pushes its side's producers this often (also the link's heartbeat)."),
  cascadeStaleAfterMs: int('GEO_SFU_CASCADE_STALE_AFTER_MS', 'agent', 4_000, 100, 600_000, 'A cascade link whose pushes have gone unanswered this long is torn down and set up again.'),
  cascadeStallChecks: int('GEO_SFU_CASCADE_STALL_CHECKS', 'agent', 2, 1, 1_000, 'Syncs in a row in which a piped-in producer received no bytes while its origin sent some before a cascade link counts as stalled (and is set up again).'),
  cascadeRetryMs: int('GEO_SFU_CASCADE_RETRY_MS', 'agent', 500, 10, 600_000, 'A cascade link whose set-up failed is tried again after twice this, the delay doubling with each failure up to GEO_SFU_CASCADE_RETRY_MAX_MS.'),
  cascadeRetryMaxMs: int('GEO_SFU_CASCADE_RETRY_MAX_MS', 'agent', 4_000, 10, 600_000, 'Longest delay before a failed cascade link set-up is tried again.'),
  cascadeDebounceMs: int('GEO_SFU_CASCADE_DEBOUNCE_MS', 'agent', 20, 0, 10_000, "After a participant leaves a room here, the agent reconciles the room's cascade links this long after (a burst of leaves gives one reconcile)."),
  cascadePrewarmMs: int('GEO_SFU_CASCADE_PREWARM_MS', 'agent', 30_000, 0, HOUR_MS, "When the router's node set for a room names this node before any of the room's participants has joined here (the push that follows an allocation), the agent opens the room and links it to the room's other nodes at once, so the remote streams are piped in before the participant asks for them; a room opened so and still without a participant this long after is closed (as it is at once when a newer set no longer names this node). 0 = rooms open at the first join, as before."),
  // --- launcher (embedded default) ---
  wanProfile: str('GEO_SFU_WAN_PROFILE', 'launcher', '', 'Path of a WAN profile JSON (`interRegionRttMs`; optional `interRegionLossPct` and `interRegionJitterMs` for the cascade media, `clientRttMs`, and `clientLossPct` and `clientJitterMs` for clients\' media): the launcher puts delaying loopback proxies between agents (and before the probe URLs clients see), lossy, jittery UDP relays on the cascade and, for a region with client impairments, in front of its agents\' WebRTC ports, so the regions behave as if far apart.'),
  agentsPerRegion: int('GEO_SFU_AGENTS_PER_REGION', 'launcher', 1, 1, 16, 'Agents the embedded launcher starts per region.'),
  workerSource: oneOf('GEO_SFU_WORKER_SOURCE', 'setup', ['offline', 'prebuilt'], 'offline', "How `npm run setup` gets the mediasoup worker: `offline` builds it from npm + Debian packages (no GitHub needed), `prebuilt` takes mediasoup's normal download."),
  cacheDir: str('GEO_SFU_CACHE_DIR', 'setup', '', 'Where the built mediasoup worker is cached, outside the clone. Empty: `~/.cache/geo-sfu`.'),
  production: bool('GEO_SFU_PRODUCTION', 'all', false, "Production mode: refuse to start with generated or missing secrets; /allocate needs a credential; GET /rooms/:id needs the admin token or a grant for the room; an agent's GET /status needs the admin token (docs/security.md: which ports to expose)."),
} as const satisfies Record<string, Spec>;

export type ConfigKey = keyof typeof CONFIG_SPEC;
type ValueOf<S> = S extends IntSpec | NumberSpec ? number : S extends BoolSpec ? boolean : S extends EnumSpec<infer T> ? T : string;
export type RawConfig = { readonly [K in ConfigKey]: ValueOf<(typeof CONFIG_SPEC)[K]> };
