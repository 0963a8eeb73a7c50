import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadResult } from './lib/load.js';
import { BenchPacer, type BenchStore, createCampaigns, hasBulkRoute } from './lib/pacer.js';
import { gitCommit, root, runLoad } from './lib/process.js';
import { writeTable } from './table.js';

/**
 * npm run bench:latency [-- --duration S --campaigns N --store memory|embedded|redis-postgres
 *                           --fractions 0.25,0.5,0.8 --batch N --transports http,stream]
 *
 * Decision latency at fixed rates, open loop (bench/lib/open-loop.ts, in its own process): a
 * decision's latency runs from the moment the schedule meant to send it, so a stall counts in full.
 * On one pacer with N EVEN campaigns it first measures each transport's peak (HTTP: wrk through
 * bench/lib/load.ts, 64 connections; stream: bench/lib/stream-load.ts, --batch decisions per frame,
 * closed loop), then runs the open-loop generator at each fraction of that peak. Prints one JSON
 * line per (transport, rate), then the whole result as the last line, saved in
 * bench/results/latency-*.json; the README table is regenerated from those files.
 */
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    'peak-duration': { type: 'string', default: '10' },
    campaigns: { type: 'string', default: '1000' },
    store: { type: 'string', default: 'memory' },
    shards: { type: 'string' },
    fractions: { type: 'string', default: '0.25,0.5,0.8' },
    batch: { type: 'string', default: '100' },
    transports: { type: 'string', default: 'http,stream' },
    'no-save': { type: 'boolean', default: false },
  },
});
const duration = Number(values.duration);
const peakDuration = Number(values['peak-duration']);
const campaigns = Number(values.campaigns);
const fractions = values.fractions!.split(',').map(Number);
const batch = Number(values.batch);
const transports = values.transports!.split(',');
const store = values.store as BenchStore;
const say = (s: string): void => void process.stderr.write(`bench:latency ${s}\n`);
if (spawnSync('wrk', ['--version']).error !== undefined) throw new Error('bench:latency measures the HTTP peak with wrk (apt-get install wrk)');


interface OpenLoopResult {
  transport: string;
  rate: number;
  achievedRate: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
  errors: number;
  unanswered: number;
  sendLagP99Ms: number | null;
  generatorCpuPct: number;
  [k: string]: unknown;
}

const load1m = (): number => Math.round(loadavg()[0]! * 100) / 100;
const loadBefore = load1m();
const pacer = new BenchPacer(store, values.shards === undefined ? {} : { shards: Number(values.shards) });
const running = await pacer.start();
const rows: (OpenLoopResult & { fraction: number; peak: number })[] = [];
const peaks: Record<string, number> = {};
try {
  await createCampaigns(running.adminUrl, campaigns, { prefix: 'bench-', concurrency: 16, bulk: await hasBulkRoute(running.adminUrl) });
  say(`${campaigns} campaigns, store ${store}; load average ${loadBefore}`);
  for (const transport of transports) {
    // The peak, closed loop, after a short warm-up.
    let peak: number;
    if (transport === 'http') {
      const args = ['--tool', 'wrk', '--url', running.url, '--connections', '64', '--campaigns', String(campaigns)];
      await runLoad<LoadResult>('load.js', [...args, '--duration', '2']);
      peak = (await runLoad<LoadResult>('load.js', [...args, '--duration', String(peakDuration)])).rps;
    } else if (transport === 'stream') {
      const args = ['--url', `${running.url.replace('http', 'ws')}/v1/stream`, '--batch', String(batch), '--campaigns', String(campaigns)];
      peak = (await runLoad<{ decisionsPerS: number }>('stream-load.js', [...args, '--duration', String(peakDuration)])).decisionsPerS;
    } else throw new Error(`unknown transport ${transport}`);
    peaks[transport] = Math.round(peak);
    say(`${transport}: peak ${Math.round(peak)} decisions/s`);
    for (const fraction of fractions) {
      const rate = Math.round(peak * fraction);
      const r = await runLoad<OpenLoopResult>('open-loop.js', [
        '--transport', transport, '--url', running.url, '--rate', String(rate), '--duration', String(duration),
        '--batch', String(batch), '--campaigns', String(campaigns),
      ]);
      const row = { ...r, fraction, peak: Math.round(peak), loadAvg1m: load1m() };
      rows.push(row);
      process.stdout.write(JSON.stringify(row) + '\n');
    }
  }
} finally {
  await pacer.stop(running);
  await pacer.cleanup();
}

const result = {
  bench: 'latency',
  store,
  campaigns,
  durationS: duration,
  batch,
  peaks,
  rows,
  commit: gitCommit(),
  loadAvg1mBefore: loadBefore,
  loadAvg1mAfter: load1m(),
  cpus: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown'}`,
  node: process.version,
  date: new Date().toISOString(),
};
if (!values['no-save']) {
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results', `latency-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
  writeTable();
}
process.stdout.write(JSON.stringify(result) + '\n');
