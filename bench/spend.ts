import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { defaultShards } from '../src/config.js';
// The tests' own redis-server (AOF always, on a free port): outage mode stops and restarts it.
import { dropRedisPrefix, freePort, startOwnRedis } from '../test/helpers/services.js';
import { gitCommit } from './lib/process.js';
import { perOp, startPerfStat } from './lib/perf-stat.js';
import { cpuPerOp, threadTicks } from './lib/thread-cpu.js';
import { ProcessInspector } from './lib/inspector.js';
import { startAllocationProfiles, stopAllocationProfiles } from './lib/alloc-profile.js';
import { allocatorEnv } from '../src/allocator.js';

/**
 * `npm run bench:spend`: spend acknowledgement latency. Starts the pacer with the chosen store,
 * creates campaigns, and drives spend events at a fixed rate from a separate load-generator process
 * (bench/spend-load.ts, over WebSocket, one event per frame). A spend is acknowledged only after its
 * batch reached the store (group commit), so this measures the flush path end to end. After the
 * run it checks that each campaign's settled total equals the sum of its distinct acknowledged
 * events. Prints a table row, then one JSON object as its last line, saved in bench/results/, and
 * regenerates the "Spend acknowledgement" table of bench/README.md.
 *
 * Knobs (env):
 *   BENCH_STORE        redis | embedded | memory       (default redis)
 *   BENCH_REDIS_URL    default redis://127.0.0.1:6379 (a key prefix of this run's own, removed after)
 *   BENCH_DATABASE_URL PostgreSQL for configuration; unset: the embedded database
 *   BENCH_RATE         spend events per second          (default 10000)
 *   BENCH_DURATION_S   measured seconds                 (default 30; 10 in outage mode)
 *   BENCH_WARMUP_S     seconds before measuring         (default 2)
 *   BENCH_CAMPAIGNS    campaigns                        (default 100)
 *   BENCH_SHARDS       shard workers                    (default: the pacer's, one per core less one)
 *   BENCH_CONNECTIONS  WebSocket connections            (default 4)
 *   BENCH_DUP_SHARE    share of events resent           (default 0.02)
 *   BENCH_DECIDE_RATE  decisions per second alongside   (default 0; 1000 in outage mode)
 *   BENCH_OUTAGE_MS    > 0: run a redis-server of the bench's own and stop it this long mid-run,
 *                      reporting latency before, during and after the outage (default 0)
 *   BENCH_SAVE         0: do not save the result or touch the README (default 1)
 *   BENCH_ALLOC_PROFILE DIR: start the pacer with the inspector and write an allocation profile of
 *                      the router (main) and of every shard over the measured window to DIR (each
 *                      thread's THREAD.heapprofile, and the top allocating functions printed as JSON
 *                      on stderr with bytes per event); implies BENCH_SAVE=0, the inspector costs time
 *   BENCH_ALLOC_SURVIVORS 1: the profile leaves out what young-generation collections freed (what
 *                      is promoted, see bench/lib/alloc-profile.ts)
 * `--table` only regenerates the README tables from bench/results/.
 */
const root = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();
const env = process.env;
const outageMs = Number(env.BENCH_OUTAGE_MS ?? 0);
const knobs = {
  store: env.BENCH_STORE ?? 'redis',
  rate: Number(env.BENCH_RATE ?? 10_000),
  // 30 s at 10,000/s reaches the steady state of a long run: past the shard's 100,000 remembered
  // event IDs (limits.eventIdsRememberedMax), where they start to be forgotten.
  durationS: Number(env.BENCH_DURATION_S ?? (outageMs > 0 ? 10 : 30)),
  warmupS: Number(env.BENCH_WARMUP_S ?? 2),
  campaigns: Number(env.BENCH_CAMPAIGNS ?? 100),
  shards: Number(env.BENCH_SHARDS ?? defaultShards()),
  connections: Number(env.BENCH_CONNECTIONS ?? 4),
  dupShare: Number(env.BENCH_DUP_SHARE ?? 0.02),
  decideRate: Number(env.BENCH_DECIDE_RATE ?? (outageMs > 0 ? 1_000 : 0)),
};
if (!['redis', 'embedded', 'memory'].includes(knobs.store)) throw new Error('BENCH_STORE must be redis, embedded or memory');
if (outageMs > 0 && knobs.store !== 'redis') throw new Error('BENCH_OUTAGE_MS needs BENCH_STORE=redis');
const token = 'bench-admin-token-0123456789';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function adminPost(adminUrl: string, path: string, body: unknown): Promise<void> {
  const r = await fetch(adminUrl + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status !== 200 && r.status !== 201) throw new Error(`${path}: ${r.status} ${await r.text()}`);
}

async function main(): Promise<void> {
  // The machine is shared: the load average before and after says how much else was running.
  const loadBefore = Math.round(loadavg()[0]! * 100) / 100;
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-spend-'));
  const prefix = `bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const redis = outageMs > 0 ? await startOwnRedis() : null;
  const redisUrl = redis?.url ?? env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const pacerEnv: Record<string, string> = {
    // The pacer as npm start runs it (src/allocator.ts).
    ...allocatorEnv,
    PATH: env.PATH ?? '',
    PACER_HOST: '127.0.0.1',
    PACER_PORT: '0',
    PACER_ADMIN_PORT: '0',
    PACER_SHARDS: String(knobs.shards),
    PACER_DATA_DIR: dataDir,
    PACER_ADMIN_TOKEN: token,
    PACER_STORE: knobs.store,
  };
  // Other PACER_* settings pass through (PACER_FLUSH_INTERVAL_MS, for instance).
  for (const [k, v] of Object.entries(env)) if (k.startsWith('PACER_') && v !== undefined && !(k in pacerEnv)) pacerEnv[k] = v;
  if (knobs.store === 'redis') Object.assign(pacerEnv, { PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix });
  if (env.BENCH_DATABASE_URL) pacerEnv.PACER_DATABASE_URL = env.BENCH_DATABASE_URL;
  pacerEnv.PACER_LOG_LEVEL = 'info';
  // BENCH_NODE_ARGS: extra node flags for the pacer process (for example --cpu-prof).
  const nodeArgs = (env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const allocDir = env.BENCH_ALLOC_PROFILE ?? '';
  if (allocDir !== '') {
    mkdirSync(allocDir, { recursive: true });
    nodeArgs.push('--inspect=127.0.0.1:0');
  }
  const pacer = spawn(process.execPath, [...nodeArgs, join(root, 'dist/src/main.js')], { env: pacerEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  // BENCH_PACER_STDOUT=file keeps what the pacer writes to stdout (with BENCH_NODE_ARGS=--trace-gc, its GC pauses).
  if (env.BENCH_PACER_STDOUT) pacer.stdout!.pipe(createWriteStream(env.BENCH_PACER_STDOUT));
  else pacer.stdout!.resume();
  let stderr = '';
  const ready = await new Promise<{ port: number; adminPort: number; uwsNative: boolean }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pacer not ready in 60 s:\n${stderr}`)), 60_000);
    pacer.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const line = stderr.split('\n').find((l) => l.includes('"msg":"ready"'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { port: number; adminPort: number; uwsNative: boolean });
      }
    });
    pacer.once('exit', (code) => reject(new Error(`pacer exited ${code}:\n${stderr}`)));
  });
  const inspectorUrl = /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
  const insp = allocDir !== '' && inspectorUrl !== undefined ? await ProcessInspector.connect(inspectorUrl) : null;
  if (allocDir !== '' && insp === null) throw new Error('BENCH_ALLOC_PROFILE: no inspector URL in the pacer\'s stderr');
  const profiled = insp === null ? [] : insp.threads.filter((t) => t === 'main' || t.startsWith('shard-'));
  const url = `http://127.0.0.1:${ready.port}`;
  const adminUrl = `http://127.0.0.1:${ready.adminPort}`;
  const campaigns = Array.from({ length: knobs.campaigns }, (_, i) => `bench-${i}`);
  for (const id of campaigns) {
    await adminPost(adminUrl, '/v1/campaigns', { id, dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  }

  const load = fork(join(root, 'dist/bench/spend-load.js'), [], {
    env: {
      ...env,
      BENCH_URL: url,
      BENCH_RATE: String(knobs.rate),
      BENCH_DURATION_S: String(knobs.durationS),
      BENCH_WARMUP_S: String(knobs.warmupS),
      BENCH_CAMPAIGNS: JSON.stringify(campaigns),
      BENCH_CONNECTIONS: String(knobs.connections),
      BENCH_DUP_SHARE: String(knobs.dupShare),
      BENCH_DECIDE_RATE: String(knobs.decideRate),
    },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let out = '';
  load.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const loadDone = new Promise<void>((resolve) => load.once('exit', () => resolve()));
  await new Promise<void>((resolve) => load.once('message', () => resolve()));
  // CPU of the pacer's threads and of Redis over the load (warm-up included), per event sent.
  const cpuBefore = threadTicks(pacer.pid!);
  const perf = startPerfStat(pacer.pid!);
  const redisCpuBefore = await redisCpuUs(redisUrl);
  const flushesBefore = await flushCount(adminUrl);

  // The allocation profile covers the measured window (the load's warm-up excluded).
  const profileDone = insp === null ? null : (async () => {
    await sleep(knobs.warmupS * 1000);
    await startAllocationProfiles(insp, profiled, env.BENCH_ALLOC_SURVIVORS === '1');
    const t0 = Date.now();
    await sleep(knobs.durationS * 1000 - 500);
    const tops = await stopAllocationProfiles(insp, profiled, allocDir);
    const events = (knobs.rate * (Date.now() - t0)) / 1000;
    for (const t of tops) {
      process.stderr.write(JSON.stringify({ thread: t.thread, bytesPerEvent: Math.round(t.totalBytes / events), top: t.top.map((x) => ({ ...x, bytesPerEvent: Math.round(x.bytes / events) })) }, null, 1) + '\n');
    }
    insp.close();
  })();

  let outage: { startedAtS: number; lastedMs: number; degradedSeen: boolean } | null = null;
  if (redis !== null) {
    // Stop Redis in the middle of the measured window, for outageMs.
    const startAt = knobs.warmupS * 1000 + Math.max(0, (knobs.durationS * 1000 - outageMs) / 2);
    await sleep(startAt);
    await redis.stop();
    load.send({ phase: 'outage' });
    const t0 = Date.now();
    await sleep(Math.min(500, outageMs / 2));
    const readyz = (await (await fetch(`${url}/readyz`)).json()) as { status: string };
    await sleep(Math.max(0, outageMs - (Date.now() - t0)));
    await redis.start();
    load.send({ phase: 'recovered' });
    outage = { startedAtS: startAt / 1000, lastedMs: Date.now() - t0, degradedSeen: readyz.status === 'degraded' };
  }
  await loadDone;
  await profileDone;
  const cpuAfter = threadTicks(pacer.pid!);
  const perfCounts = (await perf?.stop()) ?? null;
  const redisCpuAfter = await redisCpuUs(redisUrl);
  const flushesAfter = await flushCount(adminUrl);
  const line = out.trim().split('\n').at(-1)!;
  const loadResult = JSON.parse(line) as {
    sent: number; achievedRate: number; applied: number; duplicate: number; errors: number; errorCodes: Record<string, number>;
    unanswered: number; distinctEvents: number;
    phases: Record<string, { spend: Record<string, number | null>; decide: Record<string, number | null> }>;
    expectedSettled: Record<string, number>;
  };

  // Exact totals: every campaign's settled spend equals its distinct acknowledged events. With
  // errors (events refused), the refused ones may or may not be counted, so no verdict.
  if (redis !== null) for (let i = 0; i < 200 && !(await isReady(url)); i++) await sleep(100);
  let mismatches = 0;
  for (const c of campaigns) {
    const r = await fetch(`${adminUrl}/v1/campaigns/${c}/status`, { headers: { authorization: `Bearer ${token}` } });
    const s = (await r.json()) as { settledMicros: number };
    if (s.settledMicros !== loadResult.expectedSettled[c]) mismatches++;
  }
  const cpu = cpuPerOp(pacer.pid!, cpuBefore, cpuAfter, loadResult.sent);
  const flushes = flushesAfter === null || flushesBefore === null ? null : flushesAfter - flushesBefore;
  const totalsExact = loadResult.errors === 0 && loadResult.unanswered === 0 ? mismatches === 0 : null;

  // The pacer's own view (pacer_spend_ack_seconds, the whole run): the upper bound of the bucket
  // holding each quantile.
  const serverAck = await serverAckQuantiles(adminUrl);
  pacer.kill('SIGTERM');
  await new Promise((r) => pacer.once('exit', r));
  if (knobs.store === 'redis') await dropRedisPrefix(redisUrl, prefix);
  await redis?.destroy();
  rmSync(dataDir, { recursive: true, force: true });

  const steady = loadResult.phases.steady!;
  const result = {
    bench: 'spend',
    date: new Date().toISOString(),
    store: knobs.store,
    config: env.BENCH_DATABASE_URL ? 'postgres' : knobs.store === 'memory' ? 'memory' : 'embedded',
    rate: knobs.rate,
    achievedRate: loadResult.achievedRate,
    durationS: knobs.durationS,
    shards: knobs.shards,
    campaigns: knobs.campaigns,
    connections: knobs.connections,
    ackP50Ms: steady.spend.p50Ms,
    ackP90Ms: steady.spend.p90Ms,
    ackP99Ms: steady.spend.p99Ms,
    ackP999Ms: steady.spend.p999Ms,
    ackMaxMs: steady.spend.maxMs,
    serverAckP50MsAtMost: serverAck.p50Ms,
    serverAckP99MsAtMost: serverAck.p99Ms,
    acks: steady.spend.n,
    applied: loadResult.applied,
    duplicates: loadResult.duplicate,
    errors: loadResult.errors,
    errorCodes: loadResult.errorCodes,
    unanswered: loadResult.unanswered,
    totalsExact,
    pacerCpuUsPerEvent: cpu.processUs,
    pacerCpuUsPerEventByThread: cpu.byThreadUs,
    redisCpuUsPerEvent: knobs.store === 'redis' && redisCpuBefore !== null && redisCpuAfter !== null ? Math.round(((redisCpuAfter - redisCpuBefore) / Math.max(1, loadResult.sent)) * 100) / 100 : null,
    flushes,
    // Per event sent: the pacer's system calls and context switches (perf stat; null without perf).
    syscallsPerEvent: perOp(perfCounts, loadResult.sent),
    eventsPerFlush: flushes === null || flushes === 0 ? null : Math.round((loadResult.sent / flushes) * 100) / 100,
    outage: outage === null ? null : {
      ...outage,
      during: loadResult.phases.outage ?? null,
      after: loadResult.phases.recovered ?? null,
      decideSteadyP99Ms: steady.decide.p99Ms,
    },
    uwsNative: ready.uwsNative,
    commit: gitCommit(),
    node: process.version,
    cpus: cpus().length,
    loadAvg1mBefore: loadBefore,
    loadAvg1mAfter: Math.round(loadavg()[0]! * 100) / 100,
  };
  const o = result.outage;
  process.stdout.write(
    `spend ack at ${result.rate}/s (${result.store}): p50 ${result.ackP50Ms} ms, p99 ${result.ackP99Ms} ms, ` +
      `max ${result.ackMaxMs} ms, errors ${result.errors}, totals exact: ${String(result.totalsExact)}` +
      (o ? `; outage ${o.lastedMs} ms: ack p99 ${o.during?.spend.p99Ms} ms, decide p99 ${o.during?.decide.p99Ms} ms` : '') + '\n',
  );
  if (env.BENCH_SAVE !== '0' && allocDir === '') {
    const dir = join(root, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const name = `spend-${result.store}${o ? '-outage' : ''}-${result.date.replace(/[:.]/g, '-')}.json`;
    writeFileSync(join(dir, name), JSON.stringify(result, null, 2) + '\n');
    writeSpendTable();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}


/** Redis's own CPU (INFO cpu: user + sys), in µs; null when it cannot be read. Includes whatever else uses that Redis. */
async function redisCpuUs(redisUrl: string): Promise<number | null> {
  const c = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await c.connect();
    const info = await c.info('cpu');
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
    return Number.isFinite(user + sys) ? (user + sys) * 1e6 : null;
  } catch {
    return null;
  } finally {
    c.disconnect();
  }
}

/** Flush batches applied by the counter store so far (pacer_flush_duration_seconds_count, all shards). */
async function flushCount(adminUrl: string): Promise<number | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await fetch(`${adminUrl}/metrics`);
    const text = await r.text();
    if (r.status !== 200) continue;
    let n = 0;
    for (const m of text.matchAll(/^pacer_flush_duration_seconds_count\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
    return n;
  }
  return null;
}

/** Quantiles of pacer_spend_ack_seconds from the admin port's /metrics: bucket upper bounds, ms. */
async function serverAckQuantiles(adminUrl: string): Promise<{ p50Ms: number | null; p99Ms: number | null }> {
  const buckets: [number, number][] = [];
  // A scrape asks every thread within a deadline; on a loaded machine one may miss it: try again.
  for (let attempt = 0; attempt < 5 && buckets.length === 0; attempt++) {
    if (attempt > 0) await sleep(1_000);
    const r = await fetch(`${adminUrl}/metrics`);
    const text = await r.text();
    if (r.status !== 200) continue;
    for (const m of text.matchAll(/^pacer_spend_ack_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
      buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    }
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  const at = (q: number): number | null => {
    if (total === 0) return null;
    const b = buckets.find(([, n]) => n / total >= q);
    return b === undefined || !Number.isFinite(b[0]) ? null : Math.round(b[0] * 1e6) / 1e3;
  };
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function isReady(url: string): Promise<boolean> {
  const r = (await (await fetch(`${url}/readyz`)).json()) as { status: string };
  return r.status === 'ready';
}

/** Regenerates the tables between the spend markers of bench/README.md from bench/results/spend-*.json. */
export function writeSpendTable(): void {
  const dir = join(root, 'bench/results');
  const readme = join(root, 'bench/README.md');
  if (!existsSync(readme)) return;
  const rows = readdirSync(dir)
    .filter((f) => f.startsWith('spend-') && f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, any>);
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
  const steady = rows.filter((r) => r.outage === null);
  const outage = rows.filter((r) => r.outage !== null);
  const t1 = [
    '| date (UTC) | commit | store | config | rate/s | achieved/s | s | shards | campaigns | ack p50 ms | ack p99 ms | ack p99.9 ms | ack max ms | server ack p99 ≤ ms | errors | totals exact | pacer CPU µs/event (main thread: the router; busiest other thread: the shard) | Redis CPU µs/event | events/flush | sendto / futex / context switches per event | load avg before/after |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...steady.map((r) => `| ${String(r.date).slice(0, 16).replace('T', ' ')} | ${cell(r.commit)} | ${r.store} | ${r.config} | ${r.rate} | ${r.achievedRate} | ${r.durationS} | ${r.shards} | ${r.campaigns} | ${cell(r.ackP50Ms)} | ${cell(r.ackP99Ms)} | ${cell(r.ackP999Ms)} | ${cell(r.ackMaxMs)} | ${cell(r.serverAckP99MsAtMost)} | ${r.errors} | ${cell(r.totalsExact)} | ${r.pacerCpuUsPerEvent === undefined ? '' : `${r.pacerCpuUsPerEvent} (${cell(r.pacerCpuUsPerEventByThread?.[0])}, ${r.pacerCpuUsPerEventByThread ? Math.max(...r.pacerCpuUsPerEventByThread.slice(1)) : ''})`} | ${cell(r.redisCpuUsPerEvent)} | ${cell(r.eventsPerFlush)} | ${r.syscallsPerEvent ? `${r.syscallsPerEvent.sendto} / ${r.syscallsPerEvent.futex} / ${r.syscallsPerEvent['context-switches']}` : ''} | ${cell(r.loadAvg1mBefore)} / ${cell(r.loadAvg1mAfter)} |`),
  ].join('\n');
  const t2 = [
    '| date (UTC) | commit | rate/s | outage ms | degraded seen | before: ack p99 ms | during: ack p50 ms | during: ack p99 ms | during: ack max ms | during: decide p99 ms | after: ack p99 ms | errors | totals exact |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...outage.map((r) => `| ${String(r.date).slice(0, 16).replace('T', ' ')} | ${cell(r.commit)} | ${r.rate} | ${r.outage.lastedMs} | ${r.outage.degradedSeen} | ${cell(r.ackP99Ms)} | ${cell(r.outage.during?.spend.p50Ms)} | ${cell(r.outage.during?.spend.p99Ms)} | ${cell(r.outage.during?.spend.maxMs)} | ${cell(r.outage.during?.decide.p99Ms)} | ${cell(r.outage.after?.spend.p99Ms)} | ${r.errors} | ${cell(r.totalsExact)} |`),
  ].join('\n');
  let text = readFileSync(readme, 'utf8');
  for (const [name, content] of [['spend', t1], ['spend-outage', t2]] as const) {
    const begin = `<!-- ${name}:begin -->`;
    const end = `<!-- ${name}:end -->`;
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i >= 0 && j > i) text = `${text.slice(0, i + begin.length)}\n${content}\n${text.slice(j)}`;
  }
  writeFileSync(readme, text);
}

// `node dist/bench/spend.js --table` only regenerates the README table from bench/results.
if (process.argv.includes('--table')) writeSpendTable();
else await main();
