import { isMainThread, threadId, workerData } from 'node:worker_threads';
import pino from 'pino';

/**
 * Structured log lines: pino, one JSON object per line on stderr, with the thread that wrote it
 * (`main` is the router, `shard-N`, `admin`). Logging is for events (start, stop, faults, breaker
 * transitions) and the admin access log, never per hot-path request.
 *
 * Each thread has its own logger writing to fd 2 through an asynchronous SonicBoom destination
 * (`sync: false`): a line is formatted on the calling thread and written by libuv, so a slow
 * stderr never blocks the thread. pino registers a flush of the buffer at the thread's exit; the
 * main thread's `process.exit` runs it too. Why not `pino.transport` (a worker thread per logger):
 * ARCHITECTURE.md, "Logging".
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export const logLevels: readonly Level[] = ['debug', 'info', 'warn', 'error'];

/** The thread's name, from what main.ts passes each worker (Node 20 has no threadName). */
function threadName(): string {
  if (isMainThread) return 'main';
  const data = workerData as { index?: unknown; shardPorts?: unknown } | null;
  if (data !== null && typeof data === 'object') {
    if (typeof data.index === 'number') return `shard-${data.index}`;
    if (Array.isArray(data.shardPorts)) return 'admin';
  }
  return `worker-${threadId}`;
}

/** config.ts refuses a bad PACER_LOG_LEVEL before any thread starts; this only falls back. */
function levelFromEnv(): Level {
  const raw = process.env.PACER_LOG_LEVEL;
  return logLevels.includes(raw as Level) ? (raw as Level) : 'info';
}

const destination = pino.destination({ fd: 2, sync: false });
const logger = pino(
  {
    level: levelFromEnv(),
    base: { thread: threadName() },
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  },
  destination,
);

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  // msg goes first among the fields, where the lines have always had it (tools and tests match on it).
  logger[level]({ msg, ...fields });
}
