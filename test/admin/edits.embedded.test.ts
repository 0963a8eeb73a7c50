/**
 * test/admin/edits.test.ts against the default configuration, the embedded store (PGlite): there the
 * compare-and-set on the version runs in SQL as well as in the admin.
 */
process.env.TEST_PACER_STORE = 'embedded';
delete process.env.TEST_PACER_REDIS_URL;
delete process.env.TEST_PACER_DATABASE_URL;
await import('./edits.test.js');
