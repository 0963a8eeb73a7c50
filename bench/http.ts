import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultRouters, defaultShards } from '../src/config.js';
import { dropRedisPrefix } from '../test/helpers/services.js';
import type { LoadResult } from './lib/load.js';
import { format, summariseDir, type ThreadProfile } from './lib/cpuprofile.js';
import { gitCommit, root, waitForLine } from './lib/process.js';
import { threadTicks, tickUs } from './lib/thread-cpu.js';
import { writeTable } from './table.js';
import { allocatorEnv } from '../src/allocator.js';

/**
 * npm run bench:http [-- --duration S --tool wrk|autocannon --campaigns N --shards N --connections N
 *                        --latency-connections N --store memory|embedded|redis
 *                        --cpu-prof [--cpu-prof-dir DIR]]
 *
 * In one run, on this machine: a bare uWebSockets.js handler (bench/baseline.ts) and the pacer with
 * N campaigns, each driven by the same load from a separate process. Peak throughput with the chosen
 * tool (median of --rounds alternating runs), then the pacer's decision latency at half its peak
 * rate (autocannon -R), and the baseline's at the same rate for comparison. Last line: one JSON
 * object, also saved in bench/results/.
 *
 * --cpu-prof starts the pacer with `node --cpu-prof --cpu-prof-dir=DIR` (default: a temporary
 * directory): every thread writes a profile when the pacer exits, and the top functions by self
 * time of the router (the main thread) and of each worker are printed and kept in the result
 * (`cpuProfile`). The sampler costs the pacer some throughput, so a profiled run's ratio is not
 * the figure to publish: profile in one run, measure the ratio in another.
 */
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    tool: { type: 'string' },
    campaigns: { type: 'string', default: '1000' },
    shards: { type: 'string' },
    connections: { type: 'string', default: '64' },
    'latency-connections': { type: 'string', default: '12' },
    store: { type: 'string', default: 'memory' },
    rounds: { type: 'string', default: '3' },
    'cpu-prof': { type: 'boolean', default: false },
    'cpu-prof-dir': { type: 'string' },
  },
});
// This machine's throughput varies ±15% from one run to the next (a shared VM): each round runs the
// baseline and the pacer back to back, alternating which goes first, and the medians are reported.
const rounds = Number(values.rounds);
/** With --store redis, this run's keys live under their own prefix and are removed afterwards. */
const redisPrefix = `bench-http-${Date.now().toString(36)}`;
const duration = Number(values.duration);
const campaigns = Number(values.campaigns);
const connections = Number(values.connections);
// A rate-limited autocannon with 64 connections cannot sustain 40k req/s on this machine and then
// measures its own queueing; the latency runs use fewer keep-alive connections (both servers alike).
const latencyConnections = Number(values['latency-connections']);
const haveWrk = spawnSync('wrk', ['--version']).error === undefined;
const tool = values.tool ?? (haveWrk ? 'wrk' : 'autocannon');
if (tool !== 'wrk' && tool !== 'autocannon') throw new Error('--tool must be wrk or autocannon');
if (tool === 'wrk' && !haveWrk) throw new Error('wrk is not installed (apt-get install wrk), or use --tool autocannon');
const shards = values.shards === undefined ? defaultShards() : Number(values.shards);
const cpuProf = values['cpu-prof'] === true;
const cpuProfDir = cpuProf ? (values['cpu-prof-dir'] ?? mkdtempSync(join(tmpdir(), 'pacer-cpuprof-'))) : null;
const loadBefore = Math.round(loadavg()[0]! * 100) / 100;

type Load = LoadResult;

function load(url: string, opts: { tool: string; duration: number; rate?: number }): Load {
  const conns = opts.rate === undefined ? connections : latencyConnections;
  const args = [join(root, 'dist/bench/lib/load.js'), '--tool', opts.tool, '--url', url, '--duration', String(opts.duration),
    '--connections', String(conns), '--campaigns', String(campaigns)];
  if (opts.rate !== undefined) args.push('--rate', String(Math.round(opts.rate)));
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`load generator failed: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Load;
}

interface OpenLoop {
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  errors: number;
  unanswered: number;
  sendLagP99Ms: number | null;
}

function openLoop(url: string, rate: number): OpenLoop {
  const args = [join(root, 'dist/bench/lib/open-loop.js'), '--transport', 'http', '--url', url, '--rate', String(Math.round(rate)),
    '--duration', String(duration), '--campaigns', String(campaigns)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`open-loop generator failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OpenLoop;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function startBaseline(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(root, 'dist/bench/baseline.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await waitForLine(child.stdout!, (l) => l.startsWith('{"port"'), 10_000);
  return { child, url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}` };
}

async function startPacer(): Promise<{ child: ChildProcess; url: string; adminUrl: string; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pacer-bench-'));
  const token = 'bench-admin-token-0123456789';
  if (cpuProfDir !== null) mkdirSync(cpuProfDir, { recursive: true });
  const nodeArgs = cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`];
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'dist/src/main.js')], {
    env: {
      ...allocatorEnv,
      ...process.env,
      PACER_HOST: '127.0.0.1',
      PACER_PORT: '0',
      PACER_ADMIN_PORT: '0',
      PACER_SHARDS: String(shards),
      PACER_DATA_DIR: dataDir,
      PACER_ADMIN_TOKEN: token,
      PACER_STORE: values.store!,
      PACER_LOG_LEVEL: 'warn',
      ...(values.store === 'redis'
        ? { PACER_REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', PACER_REDIS_KEY_PREFIX: redisPrefix }
        : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  const line = await waitForLine(child.stdout!, (l) => l.startsWith('pacer ready:'), 60_000);
  const m = /http:\/\/[^:]+:(\d+) \(admin :(\d+)\)/.exec(line)!;
  const url = `http://127.0.0.1:${m[1]}`;
  const adminUrl = `http://127.0.0.1:${m[2]}`;
  // The campaigns the load cycles through: EVEN with a budget the load cannot exhaust in the run.
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  for (let i = 0; i < campaigns; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, campaigns - i) }, (_, k) =>
        fetch(`${adminUrl}/v1/campaigns`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ id: `bench-${i + k}`, dailyBudgetMicros: 1_000_000_000_000, strategy: 'EVEN' }),
        }).then(async (r) => {
          if (r.status !== 201 && r.status !== 200) throw new Error(`create failed: ${r.status} ${await r.text()}`);
        }),
      ),
    );
  }
  return { child, url, adminUrl, dataDir };
}

const uwsNative = spawnSync(process.execPath, ['-e', "import('uWebSockets.js').then(m => process.stdout.write(String(typeof m.default.getParts === 'function')))"], {
  cwd: root,
  encoding: 'utf8',
}).stdout === 'true';
if (!uwsNative) process.stderr.write('warning: uWebSockets.js is not running natively; these figures are not this project\'s\n');

process.stderr.write(`bench:http — ${tool}, ${duration}s per run, ${connections} connections, ${campaigns} campaigns, ${shards} shards\n`);

/** The pacer's own decision-latency histogram (pacer_decision_duration_seconds), cumulative. */
async function decisionHistogram(adminUrl: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^pacer_decision_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
    out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/**
 * Upper bounds of p50 and p99 of the decisions between two histogram readings: the smallest bucket
 * bound that holds the quantile (server side: request read to answer written, in the router).
 */
function quantiles(before: Map<number, number>, after: Map<number, number>): { p50Ms: number | null; p99Ms: number | null } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const at = (q: number): number | null => {
    if (total === 0) return null;
    for (const b of bounds) {
      if ((after.get(b)! - (before.get(b) ?? 0)) / total >= q) return Number.isFinite(b) ? Math.round(b * 1e6) / 1e3 : null;
    }
    return null;
  };
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

/** CPU µs per request of the main thread and of all threads, over one load run. */
interface CpuPerRequest {
  mainUs: number;
  processUs: number;
}

function measured(pid: number, run: () => Load): { load: Load; cpu: CpuPerRequest } {
  const before = threadTicks(pid);
  const l = run();
  const after = threadTicks(pid);
  let all = 0;
  for (const [tid, t] of after) all += t - (before.get(tid) ?? 0);
  const main = (after.get(pid) ?? 0) - (before.get(pid) ?? 0);
  const per = (ticks: number): number => Math.round(((ticks * tickUs) / Math.max(1, l.requests)) * 100) / 100;
  return { load: l, cpu: { mainUs: per(main), processUs: per(all) } };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const baseline = await startBaseline();
const pacer = await startPacer();
load(baseline.url, { tool, duration: 2 });
load(pacer.url, { tool, duration: 2 });
const basePeaks: Load[] = [];
const pacerPeaks: Load[] = [];
const baseCpu: CpuPerRequest[] = [];
const pacerCpu: CpuPerRequest[] = [];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ['baseline', 'pacer'] : ['pacer', 'baseline'];
  for (const who of order) {
    if (who === 'baseline') {
      const m = measured(baseline.child.pid!, () => load(baseline.url, { tool, duration }));
      basePeaks.push(m.load);
      baseCpu.push(m.cpu);
    } else {
      const m = measured(pacer.child.pid!, () => load(pacer.url, { tool, duration }));
      pacerPeaks.push(m.load);
      pacerCpu.push(m.cpu);
    }
  }
  process.stderr.write(
    `round ${r + 1}: baseline ${basePeaks[r]!.rps.toFixed(0)} req/s, pacer ${pacerPeaks[r]!.rps.toFixed(0)} req/s ` +
      `(non-2xx ${pacerPeaks[r]!.non2xx}, errors ${pacerPeaks[r]!.errors}); CPU µs/request: baseline ${baseCpu[r]!.processUs}, ` +
      `pacer ${pacerCpu[r]!.processUs} (router thread ${pacerCpu[r]!.mainUs})\n`,
  );
}
const basePeak = { ...basePeaks[0]!, rps: median(basePeaks.map((x) => x.rps)) };
const pacerPeak = {
  ...pacerPeaks[0]!,
  rps: median(pacerPeaks.map((x) => x.rps)),
  non2xx: pacerPeaks.reduce((s, x) => s + x.non2xx, 0),
  errors: pacerPeaks.reduce((s, x) => s + x.errors, 0),
};
process.stderr.write(`median: baseline ${basePeak.rps.toFixed(0)} req/s, pacer ${pacerPeak.rps.toFixed(0)} req/s\n`);
const halfRate = pacerPeak.rps / 2;
const histBefore = await decisionHistogram(pacer.adminUrl);
const pacerHalf = load(pacer.url, { tool: 'autocannon', duration, rate: halfRate });
const server = quantiles(histBefore, await decisionHistogram(pacer.adminUrl));
process.stderr.write(
  `pacer at ${halfRate.toFixed(0)} req/s: p50 ${pacerHalf.p50Ms} ms, p99 ${pacerHalf.p99Ms} ms (client side); ` +
    `server side p50 ≤ ${server.p50Ms} ms, p99 ≤ ${server.p99Ms} ms\n`,
);
const baseHalf = load(baseline.url, { tool: 'autocannon', duration, rate: halfRate });
process.stderr.write(`baseline at ${halfRate.toFixed(0)} req/s: p50 ${baseHalf.p50Ms} ms, p99 ${baseHalf.p99Ms} ms\n`);
// The same rate open loop (bench/lib/open-loop.ts): latency from each request's intended send time,
// so a stall counts in full; autocannon -R measures from the actual send (see bench/README.md).
const pacerOpen = openLoop(pacer.url, halfRate);
const baseOpen = openLoop(baseline.url, halfRate);
process.stderr.write(
  `open loop at ${halfRate.toFixed(0)} req/s: pacer p50 ${pacerOpen.p50Ms} ms, p99 ${pacerOpen.p99Ms} ms; ` +
    `baseline p50 ${baseOpen.p50Ms} ms, p99 ${baseOpen.p99Ms} ms\n`,
);
await stop(baseline.child);
await stop(pacer.child);
rmSync(pacer.dataDir, { recursive: true, force: true });
if (values.store === 'redis') await dropRedisPrefix(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', redisPrefix);
let cpuProfile: ThreadProfile[] | null = null;
if (cpuProfDir !== null) {
  cpuProfile = summariseDir(cpuProfDir, 20);
  for (const t of cpuProfile) process.stderr.write(format(t) + '\n\n');
  process.stderr.write(`profiles in ${cpuProfDir}\n`);
}

const result = {
  tool,
  baselineRps: Math.round(basePeak.rps),
  pacerRps: Math.round(pacerPeak.rps),
  ratio: Math.round((pacerPeak.rps / basePeak.rps) * 1000) / 1000,
  rounds,
  baselineRpsByRound: basePeaks.map((x) => Math.round(x.rps)),
  pacerRpsByRound: pacerPeaks.map((x) => Math.round(x.rps)),
  // CPU per request at peak (median over the rounds): the whole baseline process, the whole pacer
  // process, and the pacer's router (main) thread alone. Clock-tick resolution (10 ms per run).
  baselineCpuUsPerRequest: median(baseCpu.map((c) => c.processUs)),
  pacerCpuUsPerRequest: median(pacerCpu.map((c) => c.processUs)),
  routerCpuUsPerRequest: median(pacerCpu.map((c) => c.mainUs)),
  pacerP50Ms: pacerHalf.p50Ms,
  pacerP99Ms: pacerHalf.p99Ms,
  campaigns,
  shards,
  // PACER_ROUTERS passes through to the pacer with the rest of the environment.
  routers: process.env.PACER_ROUTERS ? Number(process.env.PACER_ROUTERS) : defaultRouters(),
  uwsNative,
  halfRate: Math.round(halfRate),
  achievedHalfRate: Math.round(pacerHalf.rps),
  pacerServerP50MsAtMost: server.p50Ms,
  pacerServerP99MsAtMost: server.p99Ms,
  baselineP50MsAtHalfRate: baseHalf.p50Ms,
  baselineP99MsAtHalfRate: baseHalf.p99Ms,
  pacerOpenLoopP50MsAtHalfRate: pacerOpen.p50Ms,
  pacerOpenLoopP99MsAtHalfRate: pacerOpen.p99Ms,
  pacerOpenLoopP999MsAtHalfRate: pacerOpen.p999Ms,
  baselineOpenLoopP50MsAtHalfRate: baseOpen.p50Ms,
  baselineOpenLoopP99MsAtHalfRate: baseOpen.p99Ms,
  baselineOpenLoopP999MsAtHalfRate: baseOpen.p999Ms,
  openLoopSendLagP99Ms: [pacerOpen.sendLagP99Ms, baseOpen.sendLagP99Ms],
  pacerNon2xx: pacerPeak.non2xx + pacerHalf.non2xx,
  pacerErrors: pacerPeak.errors + pacerHalf.errors + pacerOpen.errors + pacerOpen.unanswered,
  store: values.store,
  durationS: duration,
  connections,
  latencyConnections,
  cpus: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown'}`,
  node: process.version,
  commit: gitCommit(),
  loadAvg1mBefore: loadBefore,
  loadAvg1mAfter: Math.round(loadavg()[0]! * 100) / 100,
  cpuProfiled: cpuProf,
  cpuProfile,
  date: new Date().toISOString(),
};
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results', `http-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
writeTable();
process.stdout.write(JSON.stringify(result) + '\n');
