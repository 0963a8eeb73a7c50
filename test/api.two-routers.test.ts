/**
 * The API tests with two router threads sharing the port (PACER_ROUTERS=2): every answer the
 * documented API gives must be the same whichever router a connection reaches.
 */
process.env.PACER_TEST_ROUTERS = '2';
await import('./api.test.js');
