import { workerData } from 'node:worker_threads';
import { installThreadGuard } from './thread-guard.js';

/**
 * A router thread's entry point (PACER_ROUTERS > 1): like the admin thread it holds a uWS listen
 * socket, so the uncaught-exception policy goes in first (src/thread-guard.ts), then the router.
 */
installThreadGuard(`router-${(workerData as { index: number }).index}`);
await import('./router/worker.js');
