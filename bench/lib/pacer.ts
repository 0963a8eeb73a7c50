import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, dropRedisPrefix, redisUrl, type TestDatabase, uniqueName } from '../../test/helpers/services.js';
import { root } from './process.js';
import { allocatorEnv } from '../../src/allocator.js';

/**
 * The pacer as benchmarks run it: the compiled dist/src/main.js as a child process on free ports,
 * with the chosen store. `redis-postgres` is the production configuration: counters in Redis under
 * a key prefix of this run's own, configuration in a PostgreSQL database of this run's own (the
 * tests' helpers create both and drop them afterwards), so other users of the machine's services
 * are not disturbed. `start()` can be called again after `stop()` on the same data (restart).
 */
export type BenchStore = 'memory' | 'embedded' | 'redis-postgres';
export const benchToken = 'bench-admin-token-0123456789';

export interface RunningPacer {
  child: ChildProcess;
  url: string;
  adminUrl: string;
  /** The inspector's WebSocket URL when started with inspect. */
  inspectorUrl: string | null;
  /** From spawn to the "pacer ready" line (every shard up, configuration loaded). */
  readyMs: number;
  /** The pacer's own account of its startup steps, in ms (null when its log did not say). */
  startupMs: Record<string, number> | null;
  /** CPU time (user + system, all threads) the process had used when it was ready: steadier than readyMs on a shared machine. */
  readyCpuMs: number | null;
}

export class BenchPacer {
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'pacer-bench-'));
  private readonly redisPrefix = uniqueName('bench');
  private database: TestDatabase | null = null;

  constructor(
    readonly store: BenchStore,
    private readonly opts: { shards?: number; inspect?: boolean; env?: Record<string, string>; allocatorDefaults?: boolean } = {},
  ) {}

  /** The PostgreSQL database of this run (redis-postgres, after the first start). */
  get databaseUrl(): string | null {
    return this.database?.url ?? null;
  }

  /** The Redis key prefix of this run (redis-postgres). */
  get keyPrefix(): string {
    return this.redisPrefix;
  }

  async start(): Promise<RunningPacer> {
    if (this.store === 'redis-postgres' && this.database === null) this.database = await createDatabase('bench');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      // The pacer as npm start runs it (src/allocator.ts), unless the bench asks for glibc's defaults.
      ...(this.opts.allocatorDefaults === true ? {} : allocatorEnv),
      PACER_HOST: '127.0.0.1',
      PACER_PORT: '0',
      PACER_ADMIN_PORT: '0',
      PACER_DATA_DIR: this.dataDir,
      PACER_ADMIN_TOKEN: benchToken,
      // info: the startup log line 'campaign configuration loaded' carries the time of each step.
      PACER_LOG_LEVEL: 'info',
      PACER_STORE: this.store === 'redis-postgres' ? 'redis' : this.store,
      ...(this.opts.shards !== undefined ? { PACER_SHARDS: String(this.opts.shards) } : {}),
      ...(this.store === 'redis-postgres'
        ? { PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: this.redisPrefix, PACER_DATABASE_URL: this.database!.url }
        : {}),
      ...this.opts.env,
      // BENCH_PACER_ENV: extra variables for the pacer, `K=V K=V` (e.g. other glibc malloc settings).
      ...Object.fromEntries(
        (process.env.BENCH_PACER_ENV ?? '')
          .split(' ')
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
    };
    // BENCH_NODE_ARGS: extra node options for the pacer (e.g. --cpu-prof --cpu-prof-dir=DIR, every thread).
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const args = [...nodeArgs, ...(this.opts.inspect ? ['--inspect=127.0.0.1:0'] : []), join(root, 'dist/src/main.js')];
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pacer not ready in 30 min:\n${stderr}`)), 1_800_000);
      let settled = false;
      const check = (): void => {
        // Later output must not run this again: it would take stop()'s 'exit' listener away.
        if (settled) return;
        const m = /pacer ready: http:\/\/[^:]+:(\d+) \(admin :(\d+)\)/.exec(stdout);
        const insp = /Debugger listening on (ws:\/\/\S+)/.exec(stderr);
        if (m === null || (this.opts.inspect && insp === null)) return;
        settled = true;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({
          child,
          url: `http://127.0.0.1:${m[1]}`,
          adminUrl: `http://127.0.0.1:${m[2]}`,
          inspectorUrl: insp?.[1] ?? null,
          readyMs: Math.round(performance.now() - t0),
          startupMs: startupSteps(stderr),
          readyCpuMs: cpuMsOf(child.pid!),
        });
      };
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        check();
      });
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
        check();
      });
      child.once('exit', (code) => reject(new Error(`pacer exited ${code}:\n${stderr}`)));
    });
  }

  /** SIGTERM, and waits for the graceful exit. */
  async stop(p: RunningPacer): Promise<void> {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`the pacer had already stopped (exit ${p.child.exitCode}, signal ${p.child.signalCode})`);
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGTERM');
    await exited;
  }

  /** Removes the data directory, the Redis keys and the database of this run. */
  async cleanup(): Promise<void> {
    rmSync(this.dataDir, { recursive: true, force: true });
    if (this.store === 'redis-postgres') {
      await dropRedisPrefix(redisUrl, this.redisPrefix);
      await this.database?.drop();
    }
  }
}

export async function adminPost(adminUrl: string, path: string, body: unknown): Promise<Response> {
  return fetch(adminUrl + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${benchToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * Whether this build has POST /v1/campaigns/bulk: without it the admin answers 404 (no route) or
 * 405 (the path reads as a campaign ID, which has no POST).
 */
export async function hasBulkRoute(adminUrl: string): Promise<boolean> {
  const r = await adminPost(adminUrl, '/v1/campaigns/bulk', { campaigns: [] });
  await r.arrayBuffer();
  return r.status !== 404 && r.status !== 405;
}

/**
 * Creates campaigns `${prefix}0` … `${prefix}${n - 1}` (a budget no bench exhausts): through the
 * bulk route in chunks when the build has it, else one POST /v1/campaigns each with `concurrency`
 * requests in flight.
 */
export async function createCampaigns(
  adminUrl: string,
  n: number,
  opts: {
    prefix: string;
    concurrency: number;
    bulk: boolean;
    strategy?: 'EVEN' | 'ASAP';
    onProgress?: (done: number) => void;
    /** Called for every 503 answer that is retried. */
    onRetry?: () => void;
  },
): Promise<void> {
  // ASAP without a breaker allows (and so reserves) every bid; EVEN throttles a fresh campaign.
  const config = (i: number): unknown =>
    opts.strategy === 'ASAP'
      ? { id: `${opts.prefix}${i}`, dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } }
      : { id: `${opts.prefix}${i}`, dailyBudgetMicros: 1_000_000_000_000, strategy: 'EVEN' };
  const check = async (r: Response): Promise<void> => {
    if (r.status !== 200 && r.status !== 201) throw new Error(`campaign creation failed: ${r.status} ${(await r.text()).slice(0, 300)}`);
    await r.arrayBuffer();
  };
  if (opts.bulk) {
    const chunk = 1000;
    for (let i = 0; i < n; i += chunk) {
      const ids = Array.from({ length: Math.min(chunk, n - i) }, (_, k) => config(i + k));
      await check(await adminPost(adminUrl, '/v1/campaigns/bulk', { campaigns: ids }));
      opts.onProgress?.(i + ids.length);
    }
    return;
  }
  let next = 0;
  let done = 0;
  // 503 (STORE_UNAVAILABLE, OVERLOADED) says the campaign is saved but its shard could not load
  // its counters in time; resending the same configuration is safe (it replaces it), so retry.
  const create = async (i: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const r = await adminPost(adminUrl, '/v1/campaigns', config(i));
      if (r.status !== 503 || attempt === 10) return check(r);
      await r.arrayBuffer();
      opts.onRetry?.();
      await new Promise((res) => setTimeout(res, 100 * attempt));
    }
  };
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await create(i);
      if (++done % 10_000 === 0) opts.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
}

/** The startupMs of the pacer's 'campaign configuration loaded' log line. */
function startupSteps(stderr: string): Record<string, number> | null {
  for (const line of stderr.split('\n')) {
    if (!line.includes('campaign configuration loaded')) continue;
    try {
      return (JSON.parse(line) as { startupMs?: Record<string, number> }).startupMs ?? null;
    } catch {
      return null;
    }
  }
  return null;
}

/** User + system CPU time of a process so far, in ms (Linux /proc; null elsewhere). */
export function cpuMsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, inside parentheses): utime is the 14th field, stime the 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Math.round(((Number(f[11]) + Number(f[12])) * 1000) / 100);
  } catch {
    return null;
  }
}
