import { installThreadGuard } from './thread-guard.js';

/**
 * The admin thread's entry point (main.ts starts the admin worker here): the uncaught-exception
 * policy first, then the admin thread itself, unchanged (src/admin/worker.ts).
 */
installThreadGuard('admin');
await import('./admin/worker.js');
