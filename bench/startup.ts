import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { dayBounds } from '../shards/time/zone.js';
import { PostgresSql } from '../src/store/sql.js';
import { RedisCounterStore } from '../src/store/redis.js';
import { redisUrl } from '../test/helpers/services.js';
import { adminPost, BenchPacer, benchToken } from './lib/pacer.js';
import { gitCommit, root } from './lib/process.js';
import { mb, procStatus } from './lib/smaps.js';

/**
 * npm run bench:startup [-- --campaigns N --spend]
 *
 * Startup with N campaigns stored, in the production configuration (Redis + PostgreSQL, a database
 * and key prefix of this run's own): the time from spawning dist/src/main.js until it is ready
 * (/readyz 200: every campaign loaded on its shard with its counters), the CPU the process used
 * by then, the pacer's own account of each step (the 'campaign configuration loaded' log line:
 * spool replay, reading the catalogue, loading the shards, the stored profiles) and resident
 * memory once ready. The campaigns are made quickly: one is created through the admin API and
 * copied N − 1 times in SQL under new IDs (same configuration, as the API stored it). With
 * --spend each also gets a settled spend today and a live reservation in Redis, written through
 * the counter store the shards use, so that startup loads real counters.
 * Last line: one JSON object, also saved in bench/results/startup-*.json.
 */
const { values } = parseArgs({
  options: {
    campaigns: { type: 'string', default: '1000000' },
    spend: { type: 'boolean', default: false },
    save: { type: 'boolean', default: true },
  },
  allowNegative: true,
});
const n = Number(values.campaigns);
if (!Number.isSafeInteger(n) || n < 1) throw new Error('--campaigns must be a positive integer');
const say = (s: string): void => void process.stderr.write(`bench:startup ${s}\n`);

const bench = new BenchPacer('redis-postgres', { env: { PACER_CAMPAIGNS_MAX: String(Math.max(n, 1_000_000)) } });
let pacer = await bench.start();
try {
  const r = await adminPost(pacer.adminUrl, '/v1/campaigns', { id: 'startup-0000000', dailyBudgetMicros: 1_000_000_000, strategy: 'EVEN' });
  if (r.status !== 201 && r.status !== 200) throw new Error(`creating the template campaign failed: ${r.status} ${await r.text()}`);
  await bench.stop(pacer);

  const sql = new PostgresSql(bench.databaseUrl!);
  const t0 = performance.now();
  // In slices: each statement must finish inside the store's statement deadline.
  for (let from = 1; from < n; from += 50_000) {
    await sql.query(
      `INSERT INTO campaigns (id, config, version, created_at, updated_at)
       SELECT 'startup-' || lpad(i::text, 7, '0'), jsonb_set(t.config, '{id}', to_jsonb('startup-' || lpad(i::text, 7, '0'))), t.version, t.created_at, t.updated_at
       FROM campaigns t, generate_series($1::int, $2::int) AS i WHERE t.id = 'startup-0000000'`,
      [from, Math.min(n - 1, from + 49_999)],
    );
  }
  await sql.close();
  say(`${n} campaigns stored in ${Math.round(performance.now() - t0)} ms`);

  if (values.spend) {
    const redis = new Redis(redisUrl);
    const store = new RedisCounterStore(redis, { prefix: bench.keyPrefix, counterTtlSeconds: 86_400, label: 'bench' });
    const now = Date.now();
    const day = dayBounds('UTC', now).key;
    const t1 = performance.now();
    for (let i = 0; i < n; i += 1000) {
      const ids = Array.from({ length: Math.min(1000, n - i) }, (_, k) => `startup-${String(i + k).padStart(7, '0')}`);
      await store.apply({
        batchId: `startup-bench-${i}`,
        atMs: now,
        campaigns: ids.map((id) => ({
          campaignId: id,
          day,
          events: [{ eventId: `e-${id}`, amountMicros: 1_000, requestId: '' }],
          reservationsAdded: [{ requestId: `r-${id}`, amountMicros: 500, expiresAtMs: now + 3_600_000 }],
          reservationsRemoved: [],
        })),
      });
    }
    await store.close();
    say(`a spend and a reservation per campaign written to Redis in ${Math.round(performance.now() - t1)} ms`);
  }

  const loadBefore = loadavg()[0]!;
  pacer = await bench.start();
  const rssMbReady = mb(procStatus(pacer.child.pid!).vmRssKb);
  const readyz = await fetch(`${pacer.url}/readyz`);
  say(`ready in ${pacer.readyMs} ms, ${pacer.readyCpuMs} ms of CPU, steps ${JSON.stringify(pacer.startupMs)}, ${rssMbReady} MB; /readyz ${readyz.status}`);
  await readyz.arrayBuffer();
  // One campaign's status: with --spend it must show the stored spend and reservation.
  const probe = `startup-${String(n - 1).padStart(7, '0')}`;
  const st = (await (await fetch(`${pacer.adminUrl}/v1/campaigns/${probe}/status`, { headers: { authorization: `Bearer ${benchToken}` } })).json()) as { settledMicros?: number; reservedMicros?: number };
  const countersLoaded = values.spend ? st.settledMicros === 1_000 && st.reservedMicros === 500 : st.settledMicros === 0;
  say(`${probe}: settled ${st.settledMicros}, reserved ${st.reservedMicros}: counters ${countersLoaded ? 'as stored' : 'NOT as stored'}`);
  const result = {
    bench: 'startup',
    campaigns: n,
    store: 'redis-postgres',
    withSpend: values.spend,
    readyMs: pacer.readyMs,
    readyCpuMs: pacer.readyCpuMs,
    startupMs: pacer.startupMs,
    rssMbReady,
    readyzStatus: readyz.status,
    countersLoaded,
    commit: gitCommit(),
    node: process.version,
    date: new Date().toISOString(),
    loadAvg1mBefore: Math.round(loadBefore * 100) / 100,
    loadAvg1mAfter: Math.round(loadavg()[0]! * 100) / 100,
  };
  if (values.save) {
    const dir = join(root, 'bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `startup-${result.date.replace(/[:.]/g, '-')}.json`), `${JSON.stringify(result, null, 2)}\n`);
  }
  console.log(JSON.stringify(result));
} finally {
  await bench.stop(pacer).catch(() => undefined);
  await bench.cleanup();
}
