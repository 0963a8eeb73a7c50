import t from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';

/** PACER_REDIS_WAIT_REPLICAS: 0 by default, an integer within bounds, only with a Redis store. */
const redis = { PACER_REDIS_URL: 'redis://127.0.0.1:6379' };

t.test('PACER_REDIS_WAIT_REPLICAS defaults to 0 and takes an integer', async (t) => {
  t.equal(loadConfig(redis).redisWaitReplicas, 0, 'a single Redis waits for no replica by default');
  t.equal(loadConfig({ ...redis, PACER_REDIS_WAIT_REPLICAS: '1' }).redisWaitReplicas, 1);
  t.equal(loadConfig({ PACER_REDIS_CLUSTER: '127.0.0.1:7000,127.0.0.1:7001', PACER_REDIS_WAIT_REPLICAS: '2' }).redisWaitReplicas, 2);
  t.equal(loadConfig({}).redisWaitReplicas, 0, 'the embedded store: 0');
});

t.test('a bad PACER_REDIS_WAIT_REPLICAS is a configuration error naming it', async (t) => {
  for (const raw of ['-1', '1.5', 'one', '17']) {
    t.throws(() => loadConfig({ ...redis, PACER_REDIS_WAIT_REPLICAS: raw }), /PACER_REDIS_WAIT_REPLICAS must be an integer from 0 to 16/, raw);
  }
  let err: unknown;
  try {
    loadConfig({ PACER_REDIS_WAIT_REPLICAS: '1' });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError && /needs a Redis store/.test(err.message), `without a Redis store: ${String(err)}`);
});
