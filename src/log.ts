import { threadId } from 'node:worker_threads';

/**
 * Structured log lines (one JSON object per line on stderr), with the thread that wrote them.
 * Logging is for events (start, stop, faults, breaker transitions), never per request.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const threshold = order[(process.env.PACER_LOG_LEVEL as Level) ?? 'info'] ?? order.info;

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < threshold) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, thread: threadId, msg, ...fields });
  process.stderr.write(line + '\n');
}
