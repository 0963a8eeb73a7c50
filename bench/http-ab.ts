import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadResult } from './lib/load.js';
import { root, waitForLine } from './lib/process.js';

/**
 * node dist/bench/http-ab.js --dist DIR [--dist DIR …] [--baseline] [--rounds N --duration S --connections N]
 *
 * An A/B of pacer builds under the same wrk load (bench/lib/load.ts, its own process): each --dist
 * is a compiled tree (the `dist` of this checkout, or of another commit: `git archive C | tar -x -C
 * /tmp/c`, `npx tsc -p .` there with node_modules, package.json and dashboard/ beside its dist), all
 * started at once (1 shard, memory store, 1,000 EVEN campaigns), then driven in turn, the order
 * reversed every round. For each run it prints req/s and the CPU time per request (user + system,
 * from /proc/PID/task/TID/stat) of the whole process, of its main (router) thread and of every other
 * thread that used CPU; then the median of each over the rounds. On a machine shared with others
 * the CPU per request of the router thread is the figure to compare (a wall-clock ratio moves with
 * the neighbours' load); a difference smaller than the spread between rounds is no difference.
 * Nothing is saved: bench/README.md quotes the output it uses, with the command.
 */
const { values } = parseArgs({
  options: {
    dist: { type: 'string', multiple: true },
    baseline: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
  },
});
const loadJs = join(root, 'dist/bench/lib/load.js');
const token = 'bench-admin-token-0123456789';

interface Target {
  name: string;
  child: ChildProcess;
  url: string;
  dataDir: string | null;
}

async function startPacer(dist: string): Promise<Target> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pacer-ab-'));
  const child = spawn(process.execPath, [join(dist, 'src/main.js')], {
    env: {
      ...process.env,
      PACER_HOST: '127.0.0.1',
      PACER_PORT: '0',
      PACER_ADMIN_PORT: '0',
      PACER_SHARDS: '1',
      PACER_DATA_DIR: dataDir,
      PACER_ADMIN_TOKEN: token,
      PACER_STORE: 'memory',
      PACER_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await waitForLine(child.stdout!, (l) => l.startsWith('pacer ready:'), 60_000);
  const m = /http:\/\/[^:]+:(\d+) \(admin :(\d+)\)/.exec(line)!;
  const adminUrl = `http://127.0.0.1:${m[2]}`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  for (let i = 0; i < 1000; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, k) =>
        fetch(`${adminUrl}/v1/campaigns`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ id: `bench-${i + k}`, dailyBudgetMicros: 1_000_000_000_000, strategy: 'EVEN' }),
        }).then(async (r) => {
          if (r.status !== 201 && r.status !== 200) throw new Error(`create failed: ${r.status} ${await r.text()}`);
        }),
      ),
    );
  }
  return { name: dist, child, url: `http://127.0.0.1:${m[1]}`, dataDir };
}

async function startBaseline(): Promise<Target> {
  const child = spawn(process.execPath, [join(root, 'dist/bench/baseline.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await waitForLine(child.stdout!, (l) => l.startsWith('{"port"'), 10_000);
  return { name: 'baseline', child, url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`, dataDir: null };
}

/** CPU clock ticks (10 ms) used so far by every thread of a process. */
function ticks(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(f[11]) + Number(f[12]));
  }
  return out;
}

interface Run {
  rps: number;
  non2xx: number;
  processUs: number;
  mainUs: number;
  threads: string;
}

function run(t: Target, duration: string): Run {
  const before = ticks(t.child.pid!);
  const r = spawnSync(process.execPath, [loadJs, '--tool', 'wrk', '--url', t.url, '--duration', duration, '--connections', values.connections!, '--campaigns', '1000'], {
    encoding: 'utf8',
  });
  const after = ticks(t.child.pid!);
  if (r.status !== 0) throw new Error(`load generator failed: ${r.stderr}`);
  const l = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as LoadResult;
  const per = (x: number): number => Math.round(((x * 10_000) / Math.max(1, l.requests)) * 10) / 10;
  let all = 0;
  const threads: string[] = [];
  for (const [tid, v] of after) {
    const d = v - (before.get(tid) ?? 0);
    all += d;
    if (d > 5) threads.push(tid === t.child.pid ? `main ${per(d)}` : String(per(d)));
  }
  const main = (after.get(t.child.pid!) ?? 0) - (before.get(t.child.pid!) ?? 0);
  return { rps: Math.round(l.rps), non2xx: l.non2xx, processUs: per(all), mainUs: per(main), threads: threads.join(', ') };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const targets: Target[] = [];
if (values.baseline) targets.push(await startBaseline());
for (const d of values.dist ?? []) targets.push(await startPacer(d));
for (const t of targets) run(t, '2');
const results = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
process.stdout.write(`load average before: ${loadavg()[0]!.toFixed(2)}\n`);
for (let r = 0; r < Number(values.rounds); r++) {
  const order = r % 2 === 0 ? targets : [...targets].reverse();
  for (const t of order) {
    const m = run(t, values.duration!);
    results.get(t.name)!.push(m);
    process.stdout.write(
      `round ${r + 1} ${t.name}: ${m.rps} req/s (non-2xx ${m.non2xx}), CPU µs/req process ${m.processUs}, threads [${m.threads}], load ${loadavg()[0]!.toFixed(2)}\n`,
    );
  }
}
for (const [name, runs] of results) {
  process.stdout.write(
    `median ${name}: ${Math.round(median(runs.map((x) => x.rps)))} req/s, CPU µs/req process ${median(runs.map((x) => x.processUs)).toFixed(1)}, ` +
      `main thread ${median(runs.map((x) => x.mainUs)).toFixed(1)}\n`,
  );
}
for (const t of targets) {
  const exited = new Promise((r) => t.child.once('exit', r));
  t.child.kill('SIGTERM');
  await exited;
  if (t.dataDir !== null) rmSync(t.dataDir, { recursive: true, force: true });
}
