/**
 * The API tests against the default configuration: the embedded store (PGlite in the data
 * directory holds configuration, history and counters), as `npm start` runs with no services.
 */
process.env.TEST_PACER_STORE = 'embedded';
delete process.env.TEST_PACER_REDIS_URL;
delete process.env.TEST_PACER_DATABASE_URL;
await import('./api.test.js');
