import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { limits } from '../shards/limits.js';
import { type Level, logLevels } from './log.js';
import { profileHalfLifeDaysDefault } from './profile/fit.js';

/**
 * The process configuration, read once from the environment at startup and passed to every thread.
 * A bad value stops the start with an error that names the variable, the value and the fix.
 */
export interface PacerConfig {
  host: string;
  port: number;
  adminPort: number;
  shards: number;
  /** PACER_ROUTERS: uWS router threads sharing PACER_PORT (1: the router runs on the main thread). */
  routers: number;
  dataDir: string;
  /** null: generated on first start and kept in dataDir. */
  adminToken: string | null;
  reservationTtlMs: number;
  flushIntervalMs: number;
  shardInFlightMax: number;
  /** Open WebSocket stream connections past which new ones are refused (503 TOO_MANY_CONNECTIONS). */
  streamConnectionsMax: number;
  /** Where counters go: 'embedded' (default), 'redis' (PACER_REDIS_URL set) or 'memory'. */
  store: 'embedded' | 'redis' | 'memory';
  redisUrl: string | null;
  /**
   * PACER_REDIS_CLUSTER: the seed nodes of a Redis Cluster (host:port, comma-separated); null for a
   * single Redis (PACER_REDIS_URL). The client learns every other node from the seeds.
   */
  redisCluster: RedisNode[] | null;
  /**
   * PACER_REDIS_WAIT_REPLICAS: replicas that must acknowledge a flush or a lease grant (Redis WAIT
   * after the write, on the same node connection) before it counts; 0 (default) waits for none.
   * See src/store/redis.ts NotReplicatedError and docs/storage.md, "Replication and WAIT".
   */
  redisWaitReplicas: number;
  /**
   * First part of every Redis key (`<prefix>:{campaignId}:…`): pacers (or test runs) with different
   * prefixes can share a Redis. Two pacers with the same prefix share counters but not budgets
   * (ARCHITECTURE.md, "Several instances").
   */
  redisKeyPrefix: string;
  databaseUrl: string | null;
  /** Redis keys of daily counters expire this long after their last write (≥ 48 h). */
  counterTtlSeconds: number;
  /** Per-minute history is kept this many days. */
  historyRetentionDays: number;
  /** How often the admin collects the shards' summaries and writes the minute history. */
  historyFlushMs: number;
  /** Unique per process start: prefixes batch IDs so that they never repeat across restarts. */
  instanceId: string;
  /** Client-driven memory (shards/limits.ts): live reservations per campaign and per shard. */
  reservationsPerCampaignMax: number;
  reservationsPerShardMax: number;
  /** Applied event IDs each shard remembers to answer resends without a store round trip. */
  eventIdsRememberedMax: number;
  /** Campaigns the admin accepts; creating one more is answered 409 TOO_MANY_CAMPAIGNS. */
  campaignsMax: number;
  /** PACER_LOG_LEVEL: the least severe level written (src/log.ts reads it in every thread). */
  logLevel: Level;
  /** PACER_PROFILE_HALF_LIFE_DAYS: half-life of the decay of the traffic profile fit (src/profile/fit.ts). */
  profileHalfLifeDays: number;
  /**
   * PACER_LEASES: on, every campaign decides within a budget lease of the Redis store, so that
   * several instances can share every budget (ARCHITECTURE.md, "Budget leases"); off, this
   * instance caps from its own memory. Default off: a single instance needs no lease, and with
   * leases a campaign's first decision on an instance waits for its first grant (answered
   * LEASE_EMPTY meanwhile). On is refused without a Redis store: there is nothing to lease from.
   */
  leases: boolean;
  /**
   * PACER_INSTANCE_NAME: this instance's name in the instance registry (src/store/instances.ts),
   * stable across restarts so that a restarted instance replaces its own entry instead of waiting
   * for it to expire. Default: the host name and the data directory.
   */
  instanceName: string;
}

export interface RedisNode {
  host: string;
  port: number;
}

/** Seed nodes a PACER_REDIS_CLUSTER list may name: a seed list, not the whole cluster. */
const redisClusterSeedsMax = 64;

/**
 * Parses PACER_REDIS_CLUSTER: `host:port,host:port,…`, hosts a DNS name or an IPv4 address (IPv6
 * in brackets), ports 1-65535, no duplicates.
 */
export function parseRedisCluster(raw: string): RedisNode[] {
  const fix = 'set it to host:port pairs separated by commas, for example 10.0.0.1:7000,10.0.0.2:7000';
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length > redisClusterSeedsMax) {
    throw new ConfigError(`PACER_REDIS_CLUSTER names ${parts.length} nodes; at most ${redisClusterSeedsMax} seeds are accepted (the client finds the rest)`);
  }
  const seen = new Set<string>();
  return parts.map((part) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]{1,253}):(\d{1,5})$/.exec(part);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || port < 1 || port > 65535) {
      throw new ConfigError(`PACER_REDIS_CLUSTER has ${JSON.stringify(part.slice(0, 80))}, not a host:port; ${fix}`);
    }
    if (seen.has(part)) throw new ConfigError(`PACER_REDIS_CLUSTER names ${part} twice; ${fix}`);
    seen.add(part);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

export class ConfigError extends Error {
  readonly code = 'PACER_ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Router threads: one below 8 cores, then half the cores. A router thread costs a core of its own
 * under load, and on a small machine that core is better spent on a shard (on this 2-core machine a
 * second router's median was 0.31 and 0.62 of one router's: bench/README.md, "Several router threads"). On a
 * larger one the router is what saturates first over HTTP (busy about three times as long as the
 * shard per request), while the stream's batched frames make the shards the bottleneck: half and
 * half stays within a factor of two of the best split for either (ARCHITECTURE.md, "Several
 * router threads on one port").
 */
export function defaultRouters(cores: number = availableParallelism()): number {
  return cores < 8 ? 1 : Math.floor(cores / 2);
}

/**
 * One shard per core, less the cores the router threads need: the router is the busiest thread,
 * and a shard that shares its core costs it wake-ups. On 2 cores, two shards served no more than
 * one in bench:http (bench/README.md).
 */
export function defaultShards(cores: number = availableParallelism(), routers: number = defaultRouters(cores)): number {
  return Math.max(1, cores - routers);
}

function int(env: Env, name: string, fallback: number, min: number, max: number, fix: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)}); ${fix}`);
  }
  return n;
}

export function loadConfig(env: Env = process.env): PacerConfig {
  const port = int(env, 'PACER_PORT', 8080, 0, 65535, 'set it to a free TCP port, 0 picks one');
  const adminPort = int(env, 'PACER_ADMIN_PORT', 9090, 0, 65535, 'set it to a free TCP port, 0 picks one');
  if (port !== 0 && port === adminPort) {
    throw new ConfigError(`PACER_PORT and PACER_ADMIN_PORT are both ${port}; give the admin API its own port`);
  }
  const routers = int(env, 'PACER_ROUTERS', defaultRouters(), 1, 64,
    'one router thread per two cores is a good start on 8 cores or more, one below (all of them share PACER_PORT)');
  const shards = int(env, 'PACER_SHARDS', defaultShards(availableParallelism(), routers), 1, 256,
    'one per core besides the router threads is a good start');
  const token = env.PACER_ADMIN_TOKEN;
  if (token !== undefined && token !== '' && (token.length < 16 || /\s/.test(token))) {
    throw new ConfigError('PACER_ADMIN_TOKEN must be at least 16 characters without spaces; unset it to generate one');
  }
  const redisUrl = env.PACER_REDIS_URL || null;
  const redisCluster = env.PACER_REDIS_CLUSTER ? parseRedisCluster(env.PACER_REDIS_CLUSTER) : null;
  if (redisUrl !== null && redisCluster !== null) {
    throw new ConfigError('PACER_REDIS_URL and PACER_REDIS_CLUSTER are both set; set PACER_REDIS_URL for one Redis or PACER_REDIS_CLUSTER for a Redis Cluster, not both');
  }
  const databaseUrl = env.PACER_DATABASE_URL || null;
  const storeRaw = env.PACER_STORE || (redisUrl !== null || redisCluster !== null ? 'redis' : 'embedded');
  if (storeRaw !== 'embedded' && storeRaw !== 'redis' && storeRaw !== 'memory') {
    throw new ConfigError(`PACER_STORE must be embedded, redis or memory (got ${JSON.stringify(storeRaw)})`);
  }
  if (storeRaw === 'redis' && redisUrl === null && redisCluster === null) {
    throw new ConfigError('PACER_STORE=redis needs PACER_REDIS_URL, for example redis://127.0.0.1:6379 (or PACER_REDIS_CLUSTER for a Redis Cluster)');
  }
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError(`PACER_REDIS_URL must start with redis:// or rediss:// (got ${JSON.stringify(redisUrl)})`);
  }
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`PACER_DATABASE_URL must start with postgres:// (got ${JSON.stringify(databaseUrl)})`);
  }
  const redisKeyPrefix = env.PACER_REDIS_KEY_PREFIX || 'pacer';
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(redisKeyPrefix)) {
    throw new ConfigError(`PACER_REDIS_KEY_PREFIX must be 1-64 of A-Z a-z 0-9 . _ : - (got ${JSON.stringify(redisKeyPrefix)}); braces would break the hash tags`);
  }
  const logLevel = env.PACER_LOG_LEVEL || 'info';
  if (!logLevels.includes(logLevel as Level)) {
    throw new ConfigError(`PACER_LOG_LEVEL must be one of ${logLevels.join(', ')} (got ${JSON.stringify(logLevel)}); unset it for info`);
  }
  const leasesRaw = env.PACER_LEASES || 'off';
  if (leasesRaw !== 'on' && leasesRaw !== 'off') {
    throw new ConfigError(`PACER_LEASES must be on or off (got ${JSON.stringify(leasesRaw.slice(0, 40))}); set it to on when several instances serve the same campaigns, off (the default) for one`);
  }
  if (leasesRaw === 'on' && storeRaw !== 'redis') {
    throw new ConfigError(`PACER_LEASES=on needs a Redis store (PACER_REDIS_URL or PACER_REDIS_CLUSTER), but PACER_STORE is ${storeRaw}; leases are granted by Redis, so set a Redis store or PACER_LEASES=off`);
  }
  const redisWaitReplicas = int(env, 'PACER_REDIS_WAIT_REPLICAS', 0, 0, limits.redisWaitReplicasMax,
    'the replicas each Redis master must have acknowledged a flush or lease grant on: 1 with one replica per master, 0 (the default) for a Redis without replicas');
  if (redisWaitReplicas > 0 && storeRaw !== 'redis') {
    throw new ConfigError(`PACER_REDIS_WAIT_REPLICAS=${redisWaitReplicas} needs a Redis store (PACER_REDIS_URL or PACER_REDIS_CLUSTER), but PACER_STORE is ${storeRaw}; unset it or set a Redis store`);
  }
  const dataDir = resolve(env.PACER_DATA_DIR || './data');
  const instanceName = env.PACER_INSTANCE_NAME || `${hostname()}:${dataDir}`;
  if (instanceName.length > 200 || /[|\u0000-\u001f]/.test(instanceName)) {
    throw new ConfigError(`PACER_INSTANCE_NAME must be 1-200 characters without | or control characters (got ${JSON.stringify(instanceName.slice(0, 40))}); unset it for the host name and data directory`);
  }
  return {
    instanceName,
    redisWaitReplicas,
    leases: leasesRaw === 'on',
    host: env.PACER_HOST || '0.0.0.0',
    port,
    adminPort,
    shards,
    routers,
    dataDir,
    adminToken: token || null,
    reservationTtlMs: int(env, 'PACER_RESERVATION_TTL_MS', limits.reservationTtlMs, 100, 86_400_000,
      'a reservation should outlive the slowest win notice you expect'),
    flushIntervalMs: int(env, 'PACER_FLUSH_INTERVAL_MS', limits.flushIntervalMs, 0, 10_000,
      'spend is acknowledged after its flush, so this bounds acknowledgement latency'),
    shardInFlightMax: int(env, 'PACER_SHARD_INFLIGHT_MAX', limits.shardInFlightMax, 1, 1_000_000,
      'requests past it are answered 503 at once'),
    streamConnectionsMax: int(env, 'PACER_STREAM_CONNECTIONS_MAX', limits.streamConnectionsMax, 1, 1_000_000,
      'stream connections past it are refused with 503 TOO_MANY_CONNECTIONS'),
    store: storeRaw,
    redisUrl,
    redisCluster,
    redisKeyPrefix,
    databaseUrl,
    counterTtlSeconds: int(env, 'PACER_COUNTER_TTL_SECONDS', 3 * 86_400, 2 * 86_400, 400 * 86_400,
      'daily counters and event IDs must outlive the 48-hour dedupe window'),
    historyRetentionDays: int(env, 'PACER_HISTORY_RETENTION_DAYS', 90, 1, 3650, 'minute history grows with it'),
    historyFlushMs: int(env, 'PACER_HISTORY_FLUSH_MS', limits.historyFlushMs, 100, 60_000,
      'history rows are written this often; shorter costs more database round trips'),
    instanceId: `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
    reservationsPerCampaignMax: int(env, 'PACER_RESERVATIONS_PER_CAMPAIGN_MAX', limits.reservationsPerCampaignMax, 1, 10_000_000,
      'a reserving decide past it is denied RESERVATIONS_FULL'),
    reservationsPerShardMax: int(env, 'PACER_RESERVATIONS_PER_SHARD_MAX', limits.reservationsPerShardMax, 1, 100_000_000,
      'a reserving decide past it is denied RESERVATIONS_FULL; each live reservation costs about 230 bytes'),
    eventIdsRememberedMax: int(env, 'PACER_EVENT_IDS_REMEMBERED_MAX', limits.eventIdsRememberedMax, 0, 10_000_000,
      'older event IDs are left to the store to deduplicate; each costs about 150 bytes'),
    campaignsMax: int(env, 'PACER_CAMPAIGNS_MAX', limits.campaignsMax, 1, limits.campaignsMax,
      `at most ${limits.campaignsMax} (per-campaign state is ~1 KiB)`),
    logLevel: logLevel as Level,
    profileHalfLifeDays: int(env, 'PACER_PROFILE_HALF_LIFE_DAYS', profileHalfLifeDaysDefault, 1, 365,
      'a shorter half-life follows a change of traffic sooner and a noisy week more'),
  };
}
