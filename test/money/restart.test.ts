import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { campaignKeys } from '../../src/store/redis.js';
import { auth, createCampaign, get, type Pacer, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, freePort, redisUrl, startOwnRedis, uniqueName } from '../helpers/services.js';

/**
 * Restarts never move money, with the real Redis and PostgreSQL: counters that slipped into Redis
 * beyond the money bounds are loaded, flagged and kept paused instead of crash-looping the shard;
 * a lifetime flight without startAt keeps its earlier days over a restart; and a campaign whose
 * counters cannot be loaded yet answers NOT_READY (a win notice must retry), not UNKNOWN_CAMPAIGN.
 */
const db = await createDatabase('money_restart');
const prefix = uniqueName('pacer-money-restart');
const dataDir = mkdtempSync(join(tmpdir(), 'pacer-money-'));
const redis = new Redis(redisUrl);
t.teardown(async () => {
  redis.disconnect();
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
});
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };
const open = { strategy: 'ASAP', breaker: { enabled: false } };

function dayBefore(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

async function metric(p: Pacer, name: string): Promise<number> {
  const text = (await fetch(`${p.adminUrl}/metrics`, { headers: auth }).then((r) => r.text())) as string;
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  return sum;
}

t.test('stored counters beyond the money bounds are loaded, flagged and kept paused, not crash-looped', async (t) => {
  let p = await startPacer({ env, dataDir });
  await createCampaign(p, { id: 'bad-day', dailyBudgetMicros: 1_000_000, ...open });
  await createCampaign(p, { id: 'bad-life', dailyBudgetMicros: 1_000_000, lifetimeBudgetMicros: 5_000_000, startAt: '2026-01-01T00:00:00Z', ...open });
  await createCampaign(p, { id: 'good', dailyBudgetMicros: 1_000_000, ...open });
  const today = (await status(p, 'bad-day')).day as string;
  t.equal(await p.stop(), 0);

  // What two spends near 2^53 left in Redis before the bounds, and a corrupted flight total.
  await redis.set(campaignKeys(prefix, 'bad-day').day(today), '18014398509481984');
  await redis.hset(campaignKeys(prefix, 'bad-life').days, dayBefore(today), '9007199254740993');

  p = await startPacer({ env, dataDir });
  t.teardown(() => p.stop());
  for (const id of ['bad-day', 'bad-life']) {
    const s = await status(p, id);
    t.equal(s.active, false, `${id} is kept paused`);
    t.equal(s.inactiveReason, 'COUNTERS_OUT_OF_RANGE');
    t.match(s.countersFault, /out of range/, 'the status says why');
    const d = await post(p.url, '/v1/decide', { campaignId: id, bidMicros: 10, requestId: `q-${id}` });
    t.same([d.body.allow, d.body.reason], [false, 'COUNTERS_OUT_OF_RANGE']);
  }
  const refused = await post(p.url, '/v1/spend', { campaignId: 'bad-day', eventId: 'after', amountMicros: 10 });
  t.equal(refused.status, 400, 'a spend on top of the out-of-range day is refused');
  t.equal(refused.body.error.code, 'INVALID_AMOUNT');
  t.equal(await metric(p, 'pacer_counters_out_of_range_total'), 2, 'counted in a metric');
  t.equal((await post(p.url, '/v1/spend', { campaignId: 'good', eventId: 'g1', amountMicros: 10 })).body.status, 'applied', 'other campaigns keep serving');
  t.equal((await get(p.url, '/healthz')).status, 200);
});

t.test('a lifetime campaign without startAt keeps its earlier days over a restart', async (t) => {
  let p = await startPacer({ env, dataDir });
  await createCampaign(p, { id: 'life-open', dailyBudgetMicros: 1_000_000, lifetimeBudgetMicros: 1_000_000, ...open });
  const today = (await status(p, 'life-open')).day as string;
  t.equal(await p.stop(), 0);
  // Yesterday's spend as the shard wrote it before the restart.
  await redis.hset(campaignKeys(prefix, 'life-open').days, dayBefore(today), '600000');

  p = await startPacer({ env, dataDir });
  t.teardown(() => p.stop());
  const s = await status(p, 'life-open');
  t.equal(s.budgetMicros, 400_000, "today's allowance is what the flight has left, not the whole lifetime budget again");
  t.equal((await post(p.url, '/v1/decide', { campaignId: 'life-open', bidMicros: 500_000, requestId: 'too-much' })).body.reason, 'BUDGET_EXHAUSTED');
});

t.test('spend for a campaign whose counters are not loaded yet is answered 503 NOT_READY, then applied', async (t) => {
  const own = await startOwnRedis();
  const ownDb = await createDatabase('money_not_ready');
  t.teardown(async () => {
    await own.destroy();
    await ownDb.drop();
  });
  const p = await startPacer({ env: { PACER_STORE: 'redis', PACER_REDIS_URL: own.url, PACER_DATABASE_URL: ownDb.url } });
  t.teardown(() => p.stop());
  await own.stop();

  const created = await post(p.adminUrl, '/v1/campaigns', { id: 'late', dailyBudgetMicros: 1_000_000, ...open }, auth);
  t.equal(created.status, 503, 'saved, but its counters cannot be loaded while Redis is down');
  const win = await post(p.url, '/v1/spend', { campaignId: 'late', eventId: 'w1', amountMicros: 100 });
  t.equal(win.status, 503);
  t.equal(win.body.error.code, 'NOT_READY');
  t.equal(win.headers.get('retry-after'), '1');
  const d = await post(p.url, '/v1/decide', { campaignId: 'late', bidMicros: 100, requestId: 'q1' });
  t.same([d.status, d.body.allow, d.body.reason], [200, false, 'NOT_READY'], 'a decision is denied NOT_READY');
  const unknown = await post(p.url, '/v1/spend', { campaignId: 'never-created', eventId: 'w1', amountMicros: 100 });
  t.equal(unknown.body.error.code, 'UNKNOWN_CAMPAIGN', 'a campaign nobody created is still unknown');

  await own.start();
  let answer = win;
  const end = Date.now() + 20_000;
  while (answer.status !== 200 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    answer = await post(p.url, '/v1/spend', { campaignId: 'late', eventId: 'w1', amountMicros: 100 });
  }
  t.equal(answer.body.status, 'applied', 'once loaded, the retried win notice is applied');
  t.equal((await status(p, 'late')).settledMicros, 100);
});

t.test('at startup, before its counters are loaded, a known campaign answers NOT_READY, then serves', async (t) => {
  const own = await startOwnRedis();
  const ownDb = await createDatabase('money_startup');
  const ownDir = mkdtempSync(join(tmpdir(), 'pacer-money-startup-'));
  t.teardown(async () => {
    await own.destroy();
    await ownDb.drop();
    rmSync(ownDir, { recursive: true, force: true });
  });
  const ownEnv = { PACER_STORE: 'redis', PACER_REDIS_URL: own.url, PACER_DATABASE_URL: ownDb.url };
  const first = await startPacer({ env: ownEnv, dataDir: ownDir });
  await createCampaign(first, { id: 'boot', dailyBudgetMicros: 1_000_000, ...open });
  t.equal(await first.stop(), 0);
  await own.stop();

  // The process listens at once, but cannot load the campaign while Redis is down.
  const port = await freePort();
  const starting = startPacer({ env: { ...ownEnv, PACER_PORT: String(port) }, dataDir: ownDir });
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 20_000;
  while ((await fetch(`${url}/healthz`).then((r) => r.status, () => 0)) !== 200 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  const win = await post(url, '/v1/spend', { campaignId: 'boot', eventId: 'w1', amountMicros: 100 });
  t.equal(win.status, 503, 'not 404: the exchange keeps the win notice and retries');
  t.equal(win.body.error.code, 'NOT_READY');
  t.equal(win.headers.get('retry-after'), '1');
  t.equal((await post(url, '/v1/decide', { campaignId: 'boot', bidMicros: 100 })).body.reason, 'NOT_READY');

  await own.start();
  const p = await starting;
  t.teardown(() => p.stop());
  t.equal((await post(p.url, '/v1/spend', { campaignId: 'boot', eventId: 'w1', amountMicros: 100 })).body.status, 'applied');
  t.equal((await post(p.url, '/v1/spend', { campaignId: 'never', eventId: 'w1', amountMicros: 100 })).body.error.code, 'UNKNOWN_CAMPAIGN', 'once loaded, unknown is unknown');
});
