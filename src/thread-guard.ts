import { parentPort } from 'node:worker_threads';
import { log } from './log.js';
import { describeError } from './router/internal.js';

/**
 * The uncaught-exception policy inside a worker thread that holds a uWS listen socket (the admin
 * thread, and each router thread when PACER_ROUTERS > 1). Left to Node, such an exception ends the
 * thread with its socket open, and Node then aborts the whole process (exit 134) before the main
 * thread can stop it cleanly. Instead the thread
 * logs the error (class and stack frames, never the message), tells the main thread, and stays up
 * until the main thread's graceful stop asks it to close its socket; the process then exits 71
 * (src/exit-codes.ts). Only the first exception is reported; later ones are logged.
 */
export function installThreadGuard(thread: string): void {
  let reported = false;
  const onEscape = (err: unknown): void => {
    try {
      log('error', 'uncaught exception in a worker thread', { failedThread: thread, ...describeError(err) });
      if (reported) return;
      reported = true;
      parentPort?.postMessage({ type: 'fatal', message: `uncaught exception in ${thread}`, uncaught: true });
    } catch {
      // Reporting must not be the next exception.
    }
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
}
