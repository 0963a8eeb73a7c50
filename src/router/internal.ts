import { limits } from '../../shards/limits.js';
import { ApiError } from '../http/errors.js';
import { log } from '../log.js';
import type { RouterMetrics } from '../metrics.js';

/**
 * What a router handler does with an exception it did not expect: count it in
 * pacer_internal_errors_total, log it (the route, the error's class and its stack frames, never the
 * message, which may quote the client's input, and never the body), and answer INTERNAL. Logging
 * is throttled per route so that a client repeating one bad input cannot flood the log.
 */
const lastLogMs = new Map<string, number>();
const suppressed = new Map<string, number>();
const stackFramesMax = 6;

export const internalError = new ApiError('INTERNAL', 'the pacer failed to handle this request; it changed nothing and the pacer keeps serving');

export function reportInternal(metrics: RouterMetrics, route: string, err: unknown): void {
  try {
    metrics.internal(route);
    const now = Date.now();
    if (now - (lastLogMs.get(route) ?? -Infinity) < limits.internalErrorLogIntervalMs) {
      suppressed.set(route, (suppressed.get(route) ?? 0) + 1);
      return;
    }
    lastLogMs.set(route, now);
    const skipped = suppressed.get(route) ?? 0;
    suppressed.delete(route);
    log('error', 'internal error in a router handler', { route, error: errorName(err), at: frames(err), suppressedSinceLast: skipped });
  } catch {
    // Reporting must never be the next exception.
  }
}

/** An error as it may be logged: its class and stack frames, without its message. */
export function describeError(err: unknown): { error: string; at: string[] } {
  return { error: errorName(err), at: frames(err) };
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

/** The stack frames without the first line (the message). */
function frames(err: unknown): string[] {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return [];
  return err.stack
    .split('\n')
    .filter((l) => l.startsWith('    at '))
    .slice(0, stackFramesMax)
    .map((l) => l.trim());
}
