import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, waitForLine } from './lib/process.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../test/helpers/services.js';
import { allocatorEnv } from '../src/allocator.js';

/**
 * Onboarding: BENCH_CAMPAIGNS campaigns (default 50,000) created through POST /v1/campaigns/bulk in
 * calls of 1,000, against a pacer started fresh for each configuration store: the embedded default
 * (PGlite in the data directory) and PostgreSQL (a database of its own on the machine's server).
 * A third configuration, redis-postgres, is the production pairing: configuration in PostgreSQL,
 * counters in Redis. Prints one JSON line per store: total seconds, campaigns per second, slowest
 * call, and whether listing them all by cursor returned each exactly once.
 *
 *   npm run bench:bulk                 # embedded, postgres, redis-postgres
 *   BENCH_STORES=embedded npm run bench:bulk
 */
const campaignsTotal = Number(process.env.BENCH_CAMPAIGNS ?? 50_000);
const perCall = 1_000;
const token = 'bench-bulk-token-0123456789';

interface Result {
  store: string;
  campaigns: number;
  seconds: number;
  campaignsPerSecond: number;
  slowestCallMs: number;
  /** Items answered 503 (saved, not serving yet: a counter load missed its deadline) and sent again. */
  retriedItems: number;
  listedOnce: boolean;
  cores: number;
  /** The machine's 1-minute load average at the end: other work on the same cores. */
  loadAverage1m: number;
}

async function startPacer(env: Record<string, string>): Promise<{ adminUrl: string; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pacer-bench-bulk-'));
  const child = spawn(process.execPath, [join(root, 'dist/src/main.js')], {
    env: {
      ...allocatorEnv, PATH: process.env.PATH ?? '', PACER_HOST: '127.0.0.1', PACER_PORT: '0', PACER_ADMIN_PORT: '0',
      PACER_DATA_DIR: dataDir, PACER_ADMIN_TOKEN: token, PACER_STORE: 'embedded', ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const line = await waitForLine(child.stderr!, (l) => l.includes('"msg":"ready"'), 60_000);
  const { adminPort } = JSON.parse(line) as { adminPort: number };
  return {
    adminUrl: `http://127.0.0.1:${adminPort}`,
    stop: async () => {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function send(adminUrl: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(adminUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

/** Lists every campaign by cursor and checks each bulk-created one appears exactly once. */
async function listedOnce(adminUrl: string): Promise<boolean> {
  const seen = new Set<string>();
  let cursor = '';
  for (;;) {
    const page = await send(adminUrl, 'GET', `/v1/campaigns?limit=1000${cursor}`);
    for (const c of page.campaigns as { id: string }[]) {
      if (seen.has(c.id)) return false;
      seen.add(c.id);
    }
    if (page.nextCursor === null) return seen.size === campaignsTotal;
    cursor = `&cursor=${page.nextCursor}`;
  }
}

/**
 * One bulk call, then the items answered 503 again (as an operator's script would: they are saved
 * and a resend replaces them) until every campaign serves. Returns how many items were resent.
 */
async function onboard(adminUrl: string, campaigns: { id: string }[], start: number): Promise<number> {
  let pending = campaigns;
  let resent = 0;
  for (let attempt = 0; attempt < 10; attempt++) {
    const answer = await send(adminUrl, 'POST', '/v1/campaigns/bulk', { campaigns: pending });
    const results = answer.results as { id: string; status: number }[];
    const bad = results.filter((r) => r.status >= 400 && r.status !== 503);
    if (bad.length > 0) throw new Error(`bulk at ${start}: ${JSON.stringify(bad[0])}`);
    const retry = new Set(results.filter((r) => r.status === 503).map((r) => r.id));
    if (retry.size === 0) return resent;
    pending = pending.filter((c) => retry.has(c.id));
    resent += pending.length;
  }
  throw new Error(`bulk at ${start}: ${pending.length} campaigns still not serving after 10 calls`);
}

async function run(store: string, env: Record<string, string>): Promise<Result> {
  const pacer = await startPacer(env);
  try {
    let slowest = 0;
    let retried = 0;
    const started = performance.now();
    for (let start = 0; start < campaignsTotal; start += perCall) {
      const campaigns = Array.from({ length: Math.min(perCall, campaignsTotal - start) }, (_, k) => ({
        id: `onboard-${String(start + k).padStart(7, '0')}`,
        name: `Advertiser ${(start + k) % 997}`,
        dailyBudgetMicros: 50_000_000,
        strategy: 'EVEN',
        timezone: 'America/New_York',
      }));
      const t0 = performance.now();
      retried += await onboard(pacer.adminUrl, campaigns, start);
      slowest = Math.max(slowest, performance.now() - t0);
    }
    const seconds = (performance.now() - started) / 1_000;
    return {
      store, campaigns: campaignsTotal, seconds: Math.round(seconds * 100) / 100,
      campaignsPerSecond: Math.round(campaignsTotal / seconds), slowestCallMs: Math.round(slowest), retriedItems: retried,
      listedOnce: await listedOnce(pacer.adminUrl), cores: cpus().length, loadAverage1m: Math.round(loadavg()[0]! * 10) / 10,
    };
  } finally {
    await pacer.stop();
  }
}

function report(r: Result): void {
  const line = JSON.stringify({ date: new Date().toISOString(), ...r });
  console.log(line);
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, `bench/results/bulk-${r.store}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), `${line}\n`);
}

const stores = (process.env.BENCH_STORES ?? 'embedded,postgres,redis-postgres').split(',');
for (const store of stores) {
  if (store === 'embedded') report(await run('embedded', {}));
  else if (store === 'postgres') {
    const db = await createDatabase('bench_bulk');
    try {
      report(await run('postgres', { PACER_DATABASE_URL: db.url }));
    } finally {
      await db.drop();
    }
  } else if (store === 'redis-postgres') {
    const db = await createDatabase('bench_bulk');
    const prefix = uniqueName('bench-bulk');
    try {
      report(await run(store, { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url }));
    } finally {
      await db.drop();
      await dropRedisPrefix(redisUrl, prefix);
    }
  } else throw new Error(`unknown store ${store}: embedded, postgres or redis-postgres`);
}
