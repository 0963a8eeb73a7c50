import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadResult } from './lib/load.js';
import { adminPost, BenchPacer, type RunningPacer } from './lib/pacer.js';
import { gitCommit, root } from './lib/process.js';

/**
 * npm run bench:routers [-- --routers 1,2 --rounds 3 --duration 10 --connections 64 --tool wrk]
 *
 * The pacer with each PACER_ROUTERS value of --routers, all started at once (same shards, same
 * 1,000 EVEN campaigns, memory store) and driven in turn with the same load from a separate
 * process (bench/lib/load.ts: POST /v1/decide), in alternating order round after round, so that a
 * noisy machine moves every configuration alike; medians per configuration. While one runs the
 * others are idle. Also reads each router and shard thread's event-loop utilisation over every
 * run (pacer_event_loop_utilization_ratio), to show which thread saturates. Last line: one JSON
 * object, also saved in bench/results/.
 */
const { values } = parseArgs({
  options: {
    routers: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    campaigns: { type: 'string', default: '1000' },
    shards: { type: 'string', default: '1' },
    tool: { type: 'string', default: 'wrk' },
  },
});
const routerCounts = values.routers!.split(',').map(Number);
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const campaigns = Number(values.campaigns);

function load(url: string): LoadResult {
  const args = [join(root, 'dist/bench/lib/load.js'), '--tool', values.tool!, '--url', url, '--duration', String(duration),
    '--connections', values.connections!, '--campaigns', String(campaigns)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`load generator failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as LoadResult;
}

/** Event-loop utilisation per thread since the previous read (the gauge resets at each scrape). */
async function utilisation(p: RunningPacer): Promise<Record<string, number>> {
  const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^pacer_event_loop_utilization_ratio\{thread="([^"]+)"\} (\S+)$/gm)) {
    out[m[1]!] = Math.round(Number(m[2]) * 100) / 100;
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const benches = routerCounts.map(
  (n) => new BenchPacer('memory', { shards: Number(values.shards), env: { PACER_ROUTERS: String(n) } }),
);
const pacers: RunningPacer[] = [];
for (const b of benches) pacers.push(await b.start());
for (const p of pacers) {
  for (let i = 0; i < campaigns; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, campaigns - i) }, (_, k) =>
        adminPost(p.adminUrl, '/v1/campaigns', { id: `bench-${i + k}`, dailyBudgetMicros: 1_000_000_000_000, strategy: 'EVEN' }),
      ),
    );
  }
}
const loadBefore = loadavg();
process.stderr.write(`bench:routers — ${values.tool}, ${duration}s per run, routers ${routerCounts.join(' vs ')}, load ${loadBefore.map((x) => x.toFixed(1)).join(' ')}\n`);
const rps: number[][] = routerCounts.map(() => []);
const elu: Record<string, number>[][] = routerCounts.map(() => []);
for (let r = 0; r < rounds; r++) {
  const order = routerCounts.map((_, i) => i);
  if (r % 2 === 1) order.reverse();
  for (const i of order) {
    await utilisation(pacers[i]!);
    const result = load(pacers[i]!.url);
    elu[i]!.push(await utilisation(pacers[i]!));
    rps[i]!.push(Math.round(result.rps));
    process.stderr.write(`round ${r + 1}: ${routerCounts[i]} routers ${Math.round(result.rps)} req/s (non-2xx ${result.non2xx}, errors ${result.errors}) ${JSON.stringify(elu[i]![r])}\n`);
  }
}
for (let i = 0; i < pacers.length; i++) {
  await benches[i]!.stop(pacers[i]!);
  await benches[i]!.cleanup();
}

const result = {
  tool: values.tool,
  routers: routerCounts,
  rps: routerCounts.map((_, i) => median(rps[i]!)),
  rpsByRound: rps,
  eluByRound: elu,
  shards: Number(values.shards),
  campaigns,
  rounds,
  durationS: duration,
  connections: Number(values.connections),
  loadavgBefore: loadBefore.map((x) => Math.round(x * 10) / 10),
  loadavgAfter: loadavg().map((x) => Math.round(x * 10) / 10),
  commit: gitCommit(),
  cpus: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown'}`,
  node: process.version,
  date: new Date().toISOString(),
};
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results', `routers-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
process.stdout.write(JSON.stringify(result) + '\n');
