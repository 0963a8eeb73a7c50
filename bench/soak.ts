import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchPacer, type BenchStore, benchToken, createCampaigns, hasBulkRoute, type RunningPacer } from './lib/pacer.js';
import { gitCommit, root } from './lib/process.js';
import { mb, procStatus } from './lib/smaps.js';
import { writeTable } from './table.js';
import { allocatorEnv } from '../src/allocator.js';

/**
 * npm run soak [-- --minutes M --store memory|embedded|redis-postgres --campaigns N --rate OPS]
 *
 * Steady mixed load for M minutes against one pacer (dist/src/main.js as a child process, default
 * store redis-postgres: a Redis key prefix and a PostgreSQL database of this run's own). Creates N
 * ASAP campaigns without a breaker (so every decision reserves) through the bulk route, then runs
 * bench/lib/soak-load.ts in its own process: decisions with reservations, spends settling them
 * (some resent as duplicates), releases, a budget change a minute, a new campaign a second, at
 * about OPS operations a second in all. Every 10 s it reads the pacer's VmRSS (/proc/PID/status)
 * and the admin port's /metrics (`nodejs_eventloop_lag_p99_seconds` of every thread, a window since
 * the previous scrape, since prom-client resets it on every collect); every second it times a
 * GET /healthz round trip. At the end it checks, for every campaign, that the pacer's
 * `settledMicros` equals the sum of the distinct spends it acknowledged "applied", and that its
 * budget equals the starting one plus the acknowledged adds. Prints a summary on stderr and a last
 * line of one JSON object, also saved in bench/results/soak-<date>.json.
 */
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    store: { type: 'string', default: 'redis-postgres' },
    campaigns: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '2000' },
    shards: { type: 'string' },
    save: { type: 'boolean', default: true },
  },
  allowNegative: true,
});
const minutes = Number(values.minutes);
const store = values.store as BenchStore;
const n = Number(values.campaigns);
const rate = Number(values.rate);
if (!['memory', 'embedded', 'redis-postgres'].includes(store)) throw new Error('--store must be memory, embedded or redis-postgres');
if (!(minutes > 0)) throw new Error('--minutes must be positive');
if (!Number.isSafeInteger(n) || n < 1) throw new Error('--campaigns must be a positive integer');
if (!(rate > 0)) throw new Error('--rate must be positive');
const say = (s: string): void => void process.stderr.write(`soak ${new Date().toISOString().slice(11, 19)} ${s}\n`);
const budgetMicros = 1_000_000_000_000;
const sampleMs = 10_000;


interface Sample {
  atS: number;
  rssMb: number;
  /** p99 event-loop delay per thread over the window since the previous scrape, ms. */
  lagP99MsByThread: Record<string, number>;
  /** nodejs_heap_size_used_bytes of every thread, MB (garbage not yet collected included). */
  heapUsedMbByThread: Record<string, number>;
}

/** `nodejs_eventloop_lag_p99_seconds{thread="…"}` of every thread in ms, and `nodejs_heap_size_used_bytes` in MB. */
async function threadReadings(adminUrl: string): Promise<{ lag: Record<string, number>; heap: Record<string, number> }> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const byThread = (name: string, scale: number): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
      const thread = /thread="([^"]*)"/.exec(m[1]!)?.[1] ?? 'unknown';
      out[thread] = Math.round(Number(m[2]) * scale * 100) / 100;
    }
    return out;
  };
  return { lag: byThread('nodejs_eventloop_lag_p99_seconds', 1000), heap: byThread('nodejs_heap_size_used_bytes', 1 / 1048576) };
}

const percentile = (xs: number[], q: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
/** Median of a reading over the samples taken in [fromS, toS). */
function windowMedian(samples: Sample[], fromS: number, toS: number, read: (s: Sample) => number | undefined): number | null {
  return percentile(samples.filter((s) => s.atS >= fromS && s.atS < toS).map(read).filter((x): x is number => x !== undefined), 0.5);
}
const round2 = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100);

interface LoadResult {
  ops: number;
  opsPerS: number;
  errors: number;
  overload503: number;
  dupApplied: number;
  skipped: number;
  errorSamples: string[];
  appliedMicros: Record<string, number>;
  budgetAddMicros: Record<string, number>;
  newCampaigns: string[];
  [k: string]: unknown;
}

function runLoad(p: RunningPacer, ids: string[]): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(join(root, 'dist/bench/lib/soak-load.js'), [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...allocatorEnv,
        PATH: process.env.PATH ?? '',
        BENCH_URL: p.url,
        BENCH_ADMIN_URL: p.adminUrl,
        BENCH_TOKEN: benchToken,
        BENCH_RATE: String(rate),
        BENCH_DURATION_S: String(minutes * 60),
        BENCH_CAMPAIGNS: JSON.stringify(ids),
        BENCH_BUDGET_MICROS: String(budgetMicros),
      },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`soak-load failed (${code}): ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult);
    });
  });
}

interface TotalsCheck {
  checked: number;
  settledMismatches: string[];
  budgetMismatches: string[];
  otherDay: number;
}

/** Every campaign's status against what the generator had acknowledged. */
async function checkTotals(p: RunningPacer, load: LoadResult, day: string): Promise<TotalsCheck> {
  const ids = Object.keys(load.appliedMicros);
  const result: TotalsCheck = { checked: 0, settledMismatches: [], budgetMismatches: [], otherDay: 0 };
  let next = 0;
  const one = async (id: string): Promise<void> => {
    const r = await fetch(`${p.adminUrl}/v1/campaigns/${id}/status`, { headers: { authorization: `Bearer ${benchToken}` } });
    const body = (await r.json()) as { status?: { settledMicros: number; budgetMicros: number; day: string } } & {
      settledMicros?: number;
      budgetMicros?: number;
      day?: string;
    };
    const s = body.status ?? (body as { settledMicros: number; budgetMicros: number; day: string });
    if (r.status !== 200 || typeof s.settledMicros !== 'number') throw new Error(`status of ${id}: ${r.status} ${JSON.stringify(body).slice(0, 300)}`);
    result.checked++;
    if (s.day !== day) result.otherDay++;
    const want = load.appliedMicros[id]!;
    if (s.settledMicros !== want) result.settledMismatches.push(`${id}: settled ${s.settledMicros}, acknowledged ${want}`);
    const wantBudget = budgetMicros + (load.budgetAddMicros[id] ?? 0);
    if (s.budgetMicros !== wantBudget) result.budgetMismatches.push(`${id}: budget ${s.budgetMicros}, expected ${wantBudget}`);
  };
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < ids.length) await one(ids[next++]!);
  }));
  return result;
}

const measuredCommit = gitCommit() ?? 'unknown';
const bench = new BenchPacer(store, values.shards !== undefined ? { shards: Number(values.shards) } : {});
const pacer = await bench.start();
try {
  const pid = pacer.child.pid!;
  say(`${store}: ready in ${pacer.readyMs} ms, ${mb(procStatus(pid).vmRssKb)} MB`);
  const bulk = await hasBulkRoute(pacer.adminUrl);
  const t0 = performance.now();
  await createCampaigns(pacer.adminUrl, n, { prefix: 'soak-', concurrency: 16, bulk, strategy: 'ASAP' });
  say(`created ${n} campaigns in ${Math.round(performance.now() - t0)} ms (${bulk ? 'bulk route' : 'one by one'})`);
  const ids = Array.from({ length: n }, (_, i) => `soak-${i}`);
  const day = new Date().toISOString().slice(0, 10); // the campaigns' zone is UTC

  const samples: Sample[] = [];
  const healthMs: number[] = [];
  let healthErrors = 0;
  const tLoad = performance.now();
  const sample = async (): Promise<void> => {
    const atS = Math.round((performance.now() - tLoad) / 1000);
    const rssMb = mb(procStatus(pid).vmRssKb);
    let lag: Record<string, number> = {};
    let heap: Record<string, number> = {};
    try {
      ({ lag, heap } = await threadReadings(pacer.adminUrl));
    } catch {
      // a scrape that fails is shown as an empty reading; the healthz errors count the outage
    }
    samples.push({ atS, rssMb, lagP99MsByThread: lag, heapUsedMbByThread: heap });
    say(`t=${atS}s rss ${rssMb} MB, event-loop p99 ms ${JSON.stringify(lag)}`);
  };
  await sample();
  const sampler = setInterval(() => void sample(), sampleMs);
  const health = setInterval(() => {
    const t = performance.now();
    fetch(`${pacer.url}/healthz`)
      .then(async (r) => {
        await r.arrayBuffer();
        if (r.status === 200) healthMs.push(performance.now() - t);
        else healthErrors++;
      })
      .catch(() => healthErrors++);
  }, 1000);
  let load: LoadResult;
  try {
    load = await runLoad(pacer, ids);
  } finally {
    clearInterval(sampler);
    clearInterval(health);
  }
  await sample();
  say(`load done: ${JSON.stringify({ ...load, appliedMicros: undefined, budgetAddMicros: undefined, newCampaigns: load.newCampaigns.length })}`);
  const totals = await checkTotals(pacer, load, day);
  const totalsExact = totals.settledMismatches.length === 0 && totals.budgetMismatches.length === 0 && totals.otherDay === 0;
  say(`totals: ${totals.checked} campaigns checked, ${totals.settledMismatches.length} settled mismatches, ${totals.budgetMismatches.length} budget mismatches, ${totals.otherDay} on another day`);
  for (const m of [...totals.settledMismatches, ...totals.budgetMismatches].slice(0, 10)) say(`  ${m}`);

  const after5 = samples.find((s) => s.atS >= 300) ?? null;
  const rssMbStart = samples[0]!.rssMb;
  const rssMbEnd = samples.at(-1)!.rssMb;
  // The first scrape's window holds startup and the campaigns' creation, not the soak: left out.
  const loadSamples = samples.slice(1);
  const lagP99s = loadSamples.flatMap((s) => Object.values(s.lagP99MsByThread));
  const lagThreads = [...new Set(loadSamples.flatMap((s) => Object.keys(s.lagP99MsByThread)))];
  const result = {
    minutes,
    store,
    rssMbStart,
    rssMbAfter5Min: after5?.rssMb ?? null,
    rssMbEnd,
    rssGrowthAfter5MinPct: after5 === null ? null : Math.round(((rssMbEnd - after5.rssMb) / after5.rssMb) * 1000) / 10,
    // The worst 10-second window of any thread during the load. prom-client samples the loop with
    // a 10 ms timer (monitorEventLoopDelay's resolution), so an idle loop already reads about 10 ms.
    eventLoopDelayP99Ms: lagP99s.length === 0 ? null : Math.max(...lagP99s),
    ops: load.ops,
    errors: load.errors,
    overload503: load.overload503,
    totalsExact,
    commit: measuredCommit,
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
    rssMbMax: Math.max(...samples.map((s) => s.rssMb)),
    eventLoopDelayP99MsMedianByThread: Object.fromEntries(
      lagThreads.map((t) => [t, percentile(loadSamples.map((s) => s.lagP99MsByThread[t]).filter((x): x is number => x !== undefined), 0.5)]),
    ),
    healthzRttMs: { p50: round2(percentile(healthMs, 0.5)), p99: round2(percentile(healthMs, 0.99)), max: round2(percentile(healthMs, 1)), errors: healthErrors },
    opsPerS: load.opsPerS,
    rate,
    campaigns: n,
    campaignsCreatedDuringRun: load.newCampaigns.length,
    campaignsChecked: totals.checked,
    settledMismatches: totals.settledMismatches.length,
    budgetMismatches: totals.budgetMismatches.length,
    load: Object.fromEntries(Object.entries(load).filter(([k]) => !['appliedMicros', 'budgetAddMicros', 'newCampaigns'].includes(k))),
    // Single readings swing by tens of MB within a minute: the medians of the minute after minute 5
    // and of the last minute are the steadier pair.
    rssMbMedianMinute5: windowMedian(samples, 300, 360, (s) => s.rssMb),
    rssMbMedianLastMinute: windowMedian(samples, (samples.at(-1)?.atS ?? 0) - 60, Infinity, (s) => s.rssMb),
    heapUsedMbMedianMinute5ByThread: Object.fromEntries(lagThreads.map((t) => [t, windowMedian(samples, 300, 360, (s) => s.heapUsedMbByThread[t])])),
    heapUsedMbMedianLastMinuteByThread: Object.fromEntries(lagThreads.map((t) => [t, windowMedian(samples, (samples.at(-1)?.atS ?? 0) - 60, Infinity, (s) => s.heapUsedMbByThread[t])])),
    rssMbSamples: samples.map((s) => [s.atS, s.rssMb]),
    readyMs: pacer.readyMs,
    node: process.version,
    date: new Date().toISOString(),
  };
  say(
    `summary: ${minutes} min on ${store}: RSS ${rssMbStart} MB at start, ${result.rssMbAfter5Min ?? '-'} MB after 5 min, ${rssMbEnd} MB at the end` +
      ` (growth after 5 min ${result.rssGrowthAfter5MinPct ?? '-'}%); event-loop p99 worst window ${result.eventLoopDelayP99Ms} ms;` +
      ` /healthz p99 ${result.healthzRttMs.p99} ms; ${load.ops} ops (${load.opsPerS}/s), ${load.errors} errors, ${load.overload503} 503s;` +
      ` totals ${totalsExact ? 'exact' : 'NOT exact'}; load average ${result.loadAverage1m}`,
  );
  if (values.save) {
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results', `soak-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
    writeTable();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  await bench.stop(pacer);
  await bench.cleanup();
}
