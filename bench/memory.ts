import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProcessInspector, topBySelfSize } from './lib/inspector.js';
import { BenchPacer, type BenchStore, createCampaigns, hasBulkRoute, type RunningPacer } from './lib/pacer.js';
import { limits } from '../shards/limits.js';
import { gitCommit, root } from './lib/process.js';
import { mb, procStatus, smapsBreakdown } from './lib/smaps.js';
import { writeTable } from './table.js';

/**
 * npm run bench:memory [-- --campaigns N --store memory|embedded|redis-postgres --shards N
 *                          --concurrency N --snapshots DIR --restart --observe S --no-allocator-env]
 *
 * Resident memory of the whole pacer process (all threads): started as a child process
 * (dist/src/main.js, with the inspector on a loopback port so that every thread's V8 heap can be
 * read), measured idle, then after creating N campaigns (the bulk route when the build has it,
 * else one POST /v1/campaigns each) and driving one decision with a reservation and one spend that
 * settles it for each (POST /v1/decide/batch, /v1/spend/batch, 1,000 per request; the campaigns
 * are ASAP without a breaker so that every decision reserves). A reading between creation and
 * traffic gives what a configured campaign without traffic costs (`perCampaignBytesConfigured`). Before each reading every thread
 * collects its garbage (`rssMbBeforeGc` is the reading before that); RSS is VmRSS of /proc/PID/status, and smaps says where
 * it sits (WebAssembly memory, malloc, other anonymous memory, the node binary, files). Each thread
 * also says its V8 heap used and committed and its ArrayBuffer memory outside the heap
 * (`arrayBuffersMbByThread`: the shard's and the catalogue's typed-array columns, buffers).
 * --snapshots DIR also writes a heap snapshot per thread after the readings and prints its largest
 * groups (a snapshot's own allocations stay resident, so --restart's reading comes after them).
 * The pacer runs with the allocator setting npm start and the image use (src/allocator.ts);
 * --no-allocator-env runs it with glibc's defaults (`allocatorEnv` in the result says which).
 * --restart (persistent stores) stops the pacer and measures the time until ready again with the N
 * campaigns stored.
 * --observe S then repeats the run as an outside observer would see it: a second pacer started
 * without the inspector (whose sessions and forced collections change what they measure), the same
 * N campaigns and traffic, and VmRSS read every second for S seconds after the traffic, with no
 * thread asked to collect (`observed`: the reading right after the traffic, at 10 and 30 s, at the
 * end, and the lowest and highest).
 * Last line: one JSON object, also saved in bench/results/memory-*.json.
 */
const { values } = parseArgs({
  options: {
    campaigns: { type: 'string', default: '1000000' },
    store: { type: 'string', default: 'embedded' },
    shards: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    snapshots: { type: 'string' },
    restart: { type: 'boolean', default: false },
    observe: { type: 'string' },
    save: { type: 'boolean', default: true },
    'allocator-env': { type: 'boolean', default: true },
  },
  allowNegative: true,
});
const n = Number(values.campaigns);
const store = values.store as BenchStore;
if (!['memory', 'embedded', 'redis-postgres'].includes(store)) throw new Error('--store must be memory, embedded or redis-postgres');
if (!Number.isSafeInteger(n) || n < 0) throw new Error('--campaigns must be a non-negative integer');
const observeSeconds = values.observe === undefined ? null : Number(values.observe);
if (observeSeconds !== null && (!Number.isSafeInteger(observeSeconds) || observeSeconds < 1)) throw new Error('--observe must be a positive whole number of seconds');
const say = (s: string): void => void process.stderr.write(`bench:memory ${s}\n`);

interface Reading {
  /** Before any thread was asked to collect garbage. */
  rssMbBeforeGc: number;
  rssMb: number;
  hwmMb: number;
  threads: number;
  smaps: { wasmMb: number; mallocHeapMb: number; anonMb: number; nodeBinaryMb: number; otherFilesMb: number };
  heapMbByThread: Record<string, number>;
  /** What each thread's V8 heap has committed (used plus free space in its pages). */
  heapTotalMbByThread: Record<string, number>;
  /** Each thread's ArrayBuffer memory outside its V8 heap (typed-array columns, buffers). */
  arrayBuffersMbByThread: Record<string, number | null>;
  /** What V8 has malloc'd for each thread outside its heap (remembered sets, compiler zones). */
  mallocedMbByThread: Record<string, number | null>;
}

async function read(p: RunningPacer): Promise<Reading> {
  const beforeGc = procStatus(p.child.pid!).vmRssKb;
  const insp = await ProcessInspector.connect(p.inspectorUrl!);
  const heaps = await insp.heapByThread();
  insp.close();
  // Let the inspector sessions go before reading resident memory.
  await new Promise((r) => setTimeout(r, 500));
  const st = procStatus(p.child.pid!);
  const sm = smapsBreakdown(p.child.pid!);
  return {
    rssMbBeforeGc: mb(beforeGc),
    rssMb: mb(st.vmRssKb),
    hwmMb: mb(st.vmHwmKb),
    threads: st.threads,
    smaps: { wasmMb: mb(sm.wasmKb), mallocHeapMb: mb(sm.mallocHeapKb), anonMb: mb(sm.anonKb), nodeBinaryMb: mb(sm.nodeBinaryKb), otherFilesMb: mb(sm.otherFilesKb) },
    heapMbByThread: Object.fromEntries(Object.entries(heaps).map(([t, h]) => [t, h.usedMb])),
    heapTotalMbByThread: Object.fromEntries(Object.entries(heaps).map(([t, h]) => [t, h.totalMb])),
    arrayBuffersMbByThread: Object.fromEntries(Object.entries(heaps).map(([t, h]) => [t, h.arrayBuffersMb])),
    mallocedMbByThread: Object.fromEntries(Object.entries(heaps).map(([t, h]) => [t, h.mallocedMb])),
  };
}

/** Heap snapshots of every thread (after the readings: a snapshot's own allocations stay resident). */
async function snapshots(p: RunningPacer, dir: string): Promise<void> {
  const insp = await ProcessInspector.connect(p.inspectorUrl!);
  mkdirSync(dir, { recursive: true });
  for (const t of insp.threads) {
    const file = join(dir, `${store}-${n}-${t}.heapsnapshot`);
    const top = topBySelfSize(await insp.snapshot(t, file), 12);
    say(`heap snapshot ${t} (${file}):\n${top.map((g) => `    ${g.mb} MB  ${g.count}×  ${g.group}`).join('\n')}`);
  }
  insp.close();
}

async function post(url: string, body: unknown): Promise<unknown> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  return r.json();
}

/** One decision (reserving the bid) and one spend settling it, for every campaign, 1,000 per request. */
async function drive(url: string): Promise<{ reserved: number; matched: number }> {
  const run = Date.now().toString(36);
  let reserved = 0;
  let matched = 0;
  const chunk = 1000;
  const inFlight = 4;
  const batches = Array.from({ length: Math.ceil(n / chunk) }, (_, b) => b);
  const one = async (b: number): Promise<void> => {
    const ids = Array.from({ length: Math.min(chunk, n - b * chunk) }, (_, k) => b * chunk + k);
    const d = (await post(`${url}/v1/decide/batch`, {
      requests: ids.map((i) => ({ campaignId: `mem-${i}`, bidMicros: 1500, requestId: `${run}-${i}` })),
    })) as { decisions: { reserved?: boolean }[] };
    reserved += d.decisions.filter((x) => x.reserved === true).length;
    const s = (await post(`${url}/v1/spend/batch`, {
      events: ids.map((i) => ({ campaignId: `mem-${i}`, eventId: `${run}-e${i}`, amountMicros: 1200, requestId: `${run}-${i}` })),
    })) as { results: { matchedReservation?: boolean }[] };
    matched += s.results.filter((x) => x.matchedReservation === true).length;
  };
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < batches.length) await one(batches[next++]!);
  }));
  return { reserved, matched };
}


/** The pacer's options, with or without the inspector (--observe's second run has none). */
function pacerOptions(inspect: boolean): ConstructorParameters<typeof BenchPacer>[1] {
  return {
    inspect,
    // --no-allocator-env: glibc's malloc with its defaults, not as npm start runs the pacer.
    allocatorDefaults: !values['allocator-env'],
    // PACER_CAMPAIGNS_MAX at its ceiling (limits.campaignsMax, 1,000,000), whatever its default becomes.
    env: { PACER_CAMPAIGNS_MAX: String(limits.campaignsMax) },
    ...(values.shards !== undefined ? { shards: Number(values.shards) } : {}),
  };
}

interface Observed {
  inspector: false;
  seconds: number;
  rssMbIdle: number;
  rssMbAfterTraffic: number;
  rssMbAt10s: number | null;
  rssMbAt30s: number | null;
  rssMbAtEnd: number;
  rssMbMin: number;
  rssMbMax: number;
}

/** --observe: a second run without the inspector, VmRSS only, every second for `seconds`. */
async function observe(seconds: number): Promise<Observed> {
  const outside = new BenchPacer(store, pacerOptions(false));
  const p = await outside.start();
  try {
    const rss = (): number => mb(procStatus(p.child.pid!).vmRssKb);
    await new Promise((r) => setTimeout(r, 1000));
    const rssMbIdle = rss();
    await createCampaigns(p.adminUrl, n, { prefix: 'mem-', concurrency: Number(values.concurrency), bulk: await hasBulkRoute(p.adminUrl), strategy: 'ASAP' });
    await drive(p.url);
    const series: number[] = [rss()];
    for (let s = 1; s <= seconds; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      series.push(rss());
    }
    say(`observed without the inspector: idle ${rssMbIdle} MB, then every second after the traffic: ${series.join(' ')}`);
    return {
      inspector: false,
      seconds,
      rssMbIdle,
      rssMbAfterTraffic: series[0]!,
      rssMbAt10s: series[10] ?? null,
      rssMbAt30s: series[30] ?? null,
      rssMbAtEnd: series[series.length - 1]!,
      rssMbMin: Math.min(...series),
      rssMbMax: Math.max(...series),
    };
  } finally {
    await outside.stop(p);
    await outside.cleanup();
  }
}

// The commit measured: read at the start, before anything can change the worktree.
const measuredCommit = gitCommit() ?? 'unknown';
const loadBefore = Math.round(loadavg()[0]! * 100) / 100;
const bench = new BenchPacer(store, pacerOptions(true));
if (n > limits.campaignsMax) throw new Error(`--campaigns is at most ${limits.campaignsMax} (limits.campaignsMax)`);
let pacer = await bench.start();
let stopped = false;
const readyMs = pacer.readyMs;
try {
  say(`${store}: ready in ${pacer.readyMs} ms`);
  await new Promise((r) => setTimeout(r, 1000));
  const idle = await read(pacer);
  say(`idle: ${idle.rssMb} MB ${JSON.stringify(idle.smaps)} heaps ${JSON.stringify(idle.heapMbByThread)}`);
  const bulk = await hasBulkRoute(pacer.adminUrl);
  const t0 = performance.now();
  let createRetries = 0;
  await createCampaigns(pacer.adminUrl, n, {
    onRetry: () => createRetries++,
    prefix: 'mem-',
    concurrency: Number(values.concurrency),
    bulk,
    strategy: 'ASAP',
    onProgress: (d) => say(`created ${d} campaigns in ${Math.round((performance.now() - t0) / 1000)} s`),
  });
  const createMs = Math.round(performance.now() - t0);
  say(`created ${n} campaigns in ${createMs} ms (${bulk ? 'bulk route' : 'one by one'})`);
  // Configured but without traffic yet: what an idle campaign costs.
  await new Promise((r) => setTimeout(r, 2000));
  const configured = await read(pacer);
  say(`configured, no traffic: ${configured.rssMb} MB heaps ${JSON.stringify(configured.heapMbByThread)} committed ${JSON.stringify(configured.heapTotalMbByThread)}`);
  const t1 = performance.now();
  const traffic = await drive(pacer.url);
  const trafficMs = Math.round(performance.now() - t1);
  say(`drove ${n} decisions and spends in ${trafficMs} ms: ${traffic.reserved} reserved, ${traffic.matched} settled a reservation`);
  await new Promise((r) => setTimeout(r, 2000));
  const loaded = await read(pacer);
  say(`loaded: ${loaded.rssMb} MB ${JSON.stringify(loaded.smaps)} heaps ${JSON.stringify(loaded.heapMbByThread)} committed ${JSON.stringify(loaded.heapTotalMbByThread)} array buffers ${JSON.stringify(loaded.arrayBuffersMbByThread)}`);
  if (values.snapshots !== undefined) await snapshots(pacer, values.snapshots);
  let readyMsRestart: number | null = null;
  let rssMbAfterRestart: number | null = null;
  let startupMsRestart: Record<string, number> | null = null;
  let readyCpuMsRestart: number | null = null;
  if (values.restart && store !== 'memory') {
    await bench.stop(pacer);
    pacer = await bench.start();
    readyMsRestart = pacer.readyMs;
    startupMsRestart = pacer.startupMs;
    readyCpuMsRestart = pacer.readyCpuMs;
    await new Promise((r) => setTimeout(r, 1000));
    rssMbAfterRestart = (await read(pacer)).rssMb;
    say(`restart with ${n} campaigns stored: ready in ${readyMsRestart} ms, ${readyCpuMsRestart} ms of CPU (steps ${JSON.stringify(startupMsRestart)}), ${rssMbAfterRestart} MB`);
  }
  let observed: Observed | null = null;
  if (observeSeconds !== null) {
    // One pacer at a time: the first stops (and its data goes) before the second starts.
    await bench.stop(pacer);
    stopped = true;
    await bench.cleanup();
    observed = await observe(observeSeconds);
  }
  const result = {
    campaigns: n,
    rssMb: loaded.rssMb,
    rssMbIdle: idle.rssMb,
    perCampaignBytes: n === 0 ? null : Math.round(((loaded.rssMb - idle.rssMb) * 1048576) / n),
    heapMbByThread: loaded.heapMbByThread,
    readyMs,
    store,
    heapTotalMbByThread: loaded.heapTotalMbByThread,
    allocatorEnv: values['allocator-env'],
    arrayBuffersMbByThread: loaded.arrayBuffersMbByThread,
    arrayBuffersMbByThreadConfigured: configured.arrayBuffersMbByThread,
    arrayBuffersMbByThreadIdle: idle.arrayBuffersMbByThread,
    mallocedMbByThread: loaded.mallocedMbByThread,
    mallocedMbByThreadIdle: idle.mallocedMbByThread,
    heapMbByThreadIdle: idle.heapMbByThread,
    rssMbConfigured: configured.rssMb,
    perCampaignBytesConfigured: n === 0 ? null : Math.round(((configured.rssMb - idle.rssMb) * 1048576) / n),
    heapMbByThreadConfigured: configured.heapMbByThread,
    rssMbBeforeGc: loaded.rssMbBeforeGc,
    rssMbIdleBeforeGc: idle.rssMbBeforeGc,
    hwmMb: loaded.hwmMb,
    smaps: loaded.smaps,
    smapsIdle: idle.smaps,
    threads: loaded.threads,
    createRoute: bulk ? 'bulk' : 'one-by-one',
    createMs,
    createRetries,
    trafficMs,
    reserved: traffic.reserved,
    settledReservations: traffic.matched,
    readyMsRestart,
    startupMsRestart,
    readyCpuMsRestart,
    rssMbAfterRestart,
    observed,
    commit: measuredCommit,
    loadAvgBefore: loadBefore,
    loadAvgAfter: Math.round(loadavg()[0]! * 100) / 100,
    node: process.version,
    date: new Date().toISOString(),
  };
  if (values.save) {
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results', `memory-${store}-${n}-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
    writeTable();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  if (!stopped) {
    await bench.stop(pacer);
    await bench.cleanup();
  }
}


