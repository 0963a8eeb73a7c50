import t from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';

/** PACER_LEASES: off by default, on only with a Redis store, anything else refused by name. */
t.test('budget leases are off by default, with or without Redis', async (t) => {
  t.equal(loadConfig({}).leases, false);
  t.equal(loadConfig({ PACER_REDIS_URL: 'redis://127.0.0.1:6379' }).leases, false);
});

t.test('PACER_LEASES=on with a Redis store or a Redis Cluster turns them on', async (t) => {
  t.equal(loadConfig({ PACER_REDIS_URL: 'redis://127.0.0.1:6379', PACER_LEASES: 'on' }).leases, true);
  t.equal(loadConfig({ PACER_REDIS_CLUSTER: '127.0.0.1:7000,127.0.0.1:7001', PACER_LEASES: 'on' }).leases, true);
  t.equal(loadConfig({ PACER_REDIS_URL: 'redis://127.0.0.1:6379', PACER_LEASES: 'off' }).leases, false);
});

t.test('PACER_LEASES=on without a Redis store is a configuration error naming the fix', async (t) => {
  for (const env of [{ PACER_LEASES: 'on' }, { PACER_LEASES: 'on', PACER_STORE: 'memory' }]) {
    let err: unknown = null;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError && /PACER_LEASES=on needs a Redis store/.test(err.message), `refused: ${String(err)}`);
  }
});

t.test('a PACER_LEASES value other than on or off is refused', async (t) => {
  t.throws(() => loadConfig({ PACER_REDIS_URL: 'redis://127.0.0.1:6379', PACER_LEASES: 'yes' }), /PACER_LEASES must be on or off \(got "yes"\)/);
});
