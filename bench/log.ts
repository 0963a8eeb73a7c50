import { openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { threadId } from 'node:worker_threads';
import pino from 'pino';

/**
 * npm run bench:log [-- --lines N]
 *
 * What a log line costs the thread that writes it, for the two ways pino writes asynchronously:
 *   destination  pino.destination({ sync: false }): formatting on the calling thread, the write by
 *                libuv (what src/log.ts does, one per thread);
 *   transport    pino.transport: lines cross to an extra worker thread that writes them.
 * Both write to /dev/null, so the figure is the logging call itself. The time is measured until
 * the last line has been handed over (flushed), so buffering does not hide work. Prints one JSON
 * object.
 */
const { values } = parseArgs({ options: { lines: { type: 'string', default: '100000' } } });
const lines = Number(values.lines);

async function run(mode: 'destination' | 'transport'): Promise<{ mode: string; nsPerLine: number; extraThreads: number }> {
  const stream = mode === 'destination'
    ? pino.destination({ fd: openSync('/dev/null', 'w'), sync: false })
    : pino.transport({ target: 'pino/file', options: { destination: '/dev/null' } });
  if (mode === 'transport') await new Promise((r) => stream.once('ready', r));
  const logger = pino({ base: { thread: `t${threadId}` }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
  const started = performance.now();
  for (let i = 0; i < lines; i++) logger.info({ msg: 'admin request', method: 'GET', route: '/v1/campaigns/:id', status: 200, durationMs: 0.4, i });
  await new Promise<void>((resolve) => stream.flush?.(() => resolve()) ?? resolve());
  const ns = ((performance.now() - started) * 1e6) / lines;
  return { mode, nsPerLine: Math.round(ns), extraThreads: mode === 'transport' ? 1 : 0 };
}

const out = [];
for (const mode of ['destination', 'transport'] as const) out.push(await run(mode));
process.stdout.write(`${JSON.stringify({ lines, node: process.version, results: out })}\n`);
// The transport's worker holds the process open; the figures are out.
process.exit(0);
