import t from 'tap';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from './helpers/services.js';

/**
 * The API tests against Redis (counters) and PostgreSQL (configuration and history), the services
 * of this machine: a key prefix and a database of this file's own, removed afterwards.
 */
const db = await createDatabase('api');
const prefix = uniqueName('pacer-api');
process.env.TEST_PACER_STORE = 'redis';
process.env.TEST_PACER_REDIS_URL = redisUrl;
process.env.TEST_PACER_REDIS_KEY_PREFIX = prefix;
process.env.TEST_PACER_DATABASE_URL = db.url;
await import('./api.test.js');
// Registered after api.test.ts's own teardown (which stops the pacer), so it runs after it.
t.teardown(async () => {
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
});
