/**
 * The shadow tests against the default configuration: the embedded store (PGlite holds the shadow
 * configuration and the shadow minute history of migrations/0007_shadow.sql), as `npm start` runs.
 */
process.env.TEST_PACER_STORE = 'embedded';
delete process.env.TEST_PACER_REDIS_URL;
delete process.env.TEST_PACER_DATABASE_URL;
await import('./shadow.test.js');
