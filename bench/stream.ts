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
 * npm run bench:stream [-- --duration S --campaigns N --store memory|embedded|redis-postgres
 *                          --shards N --connections N --rounds N --tool wrk|autocannon]
 *
 * Batched decisions over WebSocket /v1/stream at 1, 10, 100 and 500 operations per frame against
 * the HTTP figure of the same run (POST /v1/decide, bench/lib/load.ts: wrk when installed), on one
 * pacer with N EVEN campaigns. Every load generator runs in its own process (the stream's is
 * bench/lib/stream-load.ts). Each round measures HTTP, then each batch size; the figures are the
 * medians over the rounds. The 1-minute load average before and after is recorded: this machine is
 * shared. Last line: {decisionsPerS: {…by batch}, httpDecisionsPerS, ratio100, …}, also saved in
 * bench/results/stream-*.json.
 */
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    campaigns: { type: 'string', default: '1000' },
    store: { type: 'string', default: 'memory' },
    shards: { type: 'string' },
    connections: { type: 'string', default: '4' },
    'http-connections': { type: 'string', default: '64' },
    rounds: { type: 'string', default: '1' },
    tool: { type: 'string' },
    batches: { type: 'string', default: '1,10,100,500' },
  },
});
const duration = Number(values.duration);
const campaigns = Number(values.campaigns);
const rounds = Number(values.rounds);
const batches = values.batches!.split(',').map(Number);
const store = values.store as BenchStore;
const haveWrk = spawnSync('wrk', ['--version']).error === undefined;
const tool = values.tool ?? (haveWrk ? 'wrk' : 'autocannon');
const say = (s: string): void => void process.stderr.write(`bench:stream ${s}\n`);


const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};


interface StreamLoad {
  batch: number;
  window: number;
  decisionsPerS: number;
  decisions: number;
  errors: number;
  errorCodes: Record<string, number>;
}

// The commit measured: read at the start, before anything can change the worktree.
const measuredCommit = gitCommit() ?? 'unknown';
const loadBefore = Math.round(loadavg()[0]! * 100) / 100;
const bench = new BenchPacer(store, values.shards !== undefined ? { shards: Number(values.shards) } : {});
const pacer = await bench.start();
try {
  await createCampaigns(pacer.adminUrl, campaigns, { prefix: 'bench-', concurrency: 32, bulk: await hasBulkRoute(pacer.adminUrl) });
  const wsUrl = pacer.url.replace('http://', 'ws://') + '/v1/stream';
  say(`${tool} over HTTP, stream at ${batches.join(', ')} per frame, ${duration} s each, ${rounds} round(s), ${campaigns} campaigns, store ${store}`);
  // Warm-up: JIT and connection set-up on both paths.
  await runLoad<LoadResult>('load.js', ['--tool', tool, '--url', pacer.url, '--duration', '2', '--connections', values['http-connections']!, '--campaigns', String(campaigns)]);
  await runLoad<StreamLoad>('stream-load.js', ['--url', wsUrl, '--batch', '100', '--duration', '2', '--campaigns', String(campaigns)]);
  const http: LoadResult[] = [];
  const stream = new Map<number, StreamLoad[]>(batches.map((b) => [b, []]));
  for (let r = 0; r < rounds; r++) {
    const h = await runLoad<LoadResult>('load.js', [
      '--tool', tool, '--url', pacer.url, '--duration', String(duration), '--connections', values['http-connections']!, '--campaigns', String(campaigns),
    ]);
    http.push(h);
    say(`round ${r + 1}: HTTP ${Math.round(h.rps)} decisions/s (non-2xx ${h.non2xx}, errors ${h.errors})`);
    for (const b of batches) {
      const s = await runLoad<StreamLoad>('stream-load.js', [
        '--url', wsUrl, '--batch', String(b), '--duration', String(duration), '--connections', values.connections!, '--campaigns', String(campaigns),
      ]);
      stream.get(b)!.push(s);
      say(`round ${r + 1}: stream ×${b} ${s.decisionsPerS} decisions/s (window ${s.window} frames, errors ${s.errors} ${JSON.stringify(s.errorCodes)})`);
    }
  }
  const httpDecisionsPerS = median(http.map((h) => Math.round(h.rps)));
  const decisionsPerS = Object.fromEntries(batches.map((b) => [String(b), median(stream.get(b)!.map((s) => s.decisionsPerS))]));
  const result = {
    decisionsPerS,
    httpDecisionsPerS,
    ratio100: decisionsPerS['100'] === undefined ? null : Math.round((decisionsPerS['100'] / httpDecisionsPerS) * 100) / 100,
    httpTool: tool,
    httpConnections: Number(values['http-connections']),
    streamConnections: Number(values.connections),
    streamErrors: [...stream.values()].flat().reduce((s, x) => s + x.errors, 0),
    httpNon2xx: http.reduce((s, h) => s + h.non2xx + h.errors, 0),
    rounds,
    durationS: duration,
    campaigns,
    store,
    shards: values.shards !== undefined ? Number(values.shards) : null,
    commit: measuredCommit,
    loadAvgBefore: loadBefore,
    loadAvgAfter: Math.round(loadavg()[0]! * 100) / 100,
    cpus: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown'}`,
    node: process.version,
    date: new Date().toISOString(),
  };
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results', `stream-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
  writeTable();
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  await bench.stop(pacer);
  await bench.cleanup();
}
