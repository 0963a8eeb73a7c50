import t from 'tap';
import { ConfigError, defaultRouters, defaultShards, loadConfig } from '../src/config.js';
import { fnv1a, shardOf } from '../src/hash.js';

t.test('defaults need no environment at all', async (t) => {
  const c = loadConfig({});
  t.equal(c.port, 8080);
  t.equal(c.adminPort, 9090);
  t.equal(c.store, 'embedded');
  t.equal(c.shards, defaultShards(), 'one shard per core, less the router thread');
  t.equal(c.adminToken, null);
  t.equal(c.reservationTtlMs, 60_000);
});

t.test('a bad value stops the start with a message naming the variable', async (t) => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ PACER_PORT: 'eighty' }, /PACER_PORT must be an integer/],
    [{ PACER_PORT: '70000' }, /PACER_PORT/],
    [{ PACER_SHARDS: '0' }, /PACER_SHARDS/],
    [{ PACER_ROUTERS: '0' }, /PACER_ROUTERS must be an integer from 1 to 64 \(got "0"\)/],
    [{ PACER_ROUTERS: '65' }, /PACER_ROUTERS/],
    [{ PACER_ROUTERS: 'two' }, /PACER_ROUTERS must be an integer/],
    [{ PACER_PORT: '9000', PACER_ADMIN_PORT: '9000' }, /both 9000/],
    [{ PACER_ADMIN_TOKEN: 'short' }, /PACER_ADMIN_TOKEN must be at least 16/],
    [{ PACER_STORE: 'mongo' }, /PACER_STORE must be/],
    [{ PACER_STORE: 'redis' }, /needs PACER_REDIS_URL/],
    [{ PACER_REDIS_URL: 'localhost:6379' }, /redis:\/\//],
    [{ PACER_DATABASE_URL: 'mysql://x' }, /postgres:\/\//],
    [{ PACER_RESERVATION_TTL_MS: '10' }, /PACER_RESERVATION_TTL_MS/],
    [{ PACER_COUNTER_TTL_SECONDS: '3600' }, /48-hour dedupe window/],
    [{ PACER_LOG_LEVEL: 'verbose' }, /PACER_LOG_LEVEL must be one of debug, info, warn, error \(got "verbose"\)/],
    [{ PACER_LOG_LEVEL: 'INFO' }, /PACER_LOG_LEVEL/],
  ];
  for (const [env, message] of bad) {
    t.throws(() => loadConfig(env), message, JSON.stringify(env));
    t.throws(() => loadConfig(env), ConfigError);
  }
});

t.test('router threads: one below 8 cores, then half the cores, and the shards get the rest', async (t) => {
  t.same([1, 2, 4, 7, 8, 16, 64].map((c) => defaultRouters(c)), [1, 1, 1, 1, 4, 8, 32]);
  t.same([1, 2, 4, 8, 16].map((c) => defaultShards(c)), [1, 1, 3, 4, 8]);
  t.equal(defaultShards(2, 2), 1, 'never fewer than one shard');
  t.equal(loadConfig({}).routers, defaultRouters());
  const two = loadConfig({ PACER_ROUTERS: '2' });
  t.equal(two.routers, 2);
  t.equal(two.shards, defaultShards(undefined, 2), 'the shard default leaves the routers their cores');
});

t.test('the log level defaults to info and accepts each of debug, info, warn, error', async (t) => {
  t.equal(loadConfig({}).logLevel, 'info');
  for (const level of ['debug', 'info', 'warn', 'error']) t.equal(loadConfig({ PACER_LOG_LEVEL: level }).logLevel, level);
});

t.test('a Redis URL selects the Redis store unless PACER_STORE says otherwise', async (t) => {
  t.equal(loadConfig({ PACER_REDIS_URL: 'redis://127.0.0.1:6379' }).store, 'redis');
  t.equal(loadConfig({ PACER_REDIS_URL: 'redis://127.0.0.1:6379', PACER_STORE: 'memory' }).store, 'memory');
});

t.test('each start gets a new instance ID for its batch IDs', async (t) => {
  t.not(loadConfig({}).instanceId, loadConfig({}).instanceId);
});

t.test('the shard hash is stable and spreads similar IDs evenly', async (t) => {
  // Reference values of 32-bit FNV-1a: the hash must never change, or campaigns would move.
  t.equal(fnv1a(''), 0x811c9dc5);
  t.equal(fnv1a('a'), 0xe40c292c);
  t.equal(fnv1a('foobar'), 0xbf9cf968);
  const shards = 4;
  const counts = new Array<number>(shards).fill(0);
  for (let i = 0; i < 40_000; i++) counts[shardOf(`c${i}`, shards)]!++;
  for (const n of counts) t.ok(Math.abs(n - 10_000) < 600, `a shard got ${n} of 40,000 (even share 10,000)`);
});

t.test('PACER_REDIS_CLUSTER names the seed nodes of a Redis Cluster and selects the Redis store', async (t) => {
  const c = loadConfig({ PACER_REDIS_CLUSTER: '10.0.0.1:7000, redis-b.internal:7001,[::1]:7002' });
  t.equal(c.store, 'redis');
  t.equal(c.redisUrl, null);
  t.same(c.redisCluster, [{ host: '10.0.0.1', port: 7000 }, { host: 'redis-b.internal', port: 7001 }, { host: '::1', port: 7002 }]);
  t.equal(loadConfig({}).redisCluster, null, 'unset: no cluster');
  for (const [raw, message] of [
    ['10.0.0.1', /PACER_REDIS_CLUSTER has "10.0.0.1", not a host:port/],
    ['a:7000,,b:7000', /PACER_REDIS_CLUSTER has "", not a host:port/],
    ['a:0', /not a host:port/],
    ['a:65536', /not a host:port/],
    ['a b:7000', /not a host:port/],
    ['a:7000,a:7000', /names a:7000 twice/],
    [Array.from({ length: 65 }, (_, i) => `h${i}:7000`).join(','), /at most 64 seeds/],
  ] as const) {
    t.throws(() => loadConfig({ PACER_REDIS_CLUSTER: raw }), message, raw.slice(0, 40));
  }
  t.throws(() => loadConfig({ PACER_REDIS_CLUSTER: 'a:7000', PACER_REDIS_URL: 'redis://a:6379' }), /both set/);
});
