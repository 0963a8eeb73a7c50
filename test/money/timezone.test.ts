import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { campaignKeys } from '../../src/store/redis.js';
import { createCampaign, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * A time-zone change mid-day never moves money, with the real Redis and PostgreSQL: today's spend
 * is carried into the new zone's day on top of what that day already holds, in memory and in the
 * store, so the new day cannot reach its budget plus today's spend, before or after a restart.
 */
const db = await createDatabase('money_tz');
const prefix = uniqueName('pacer-money-tz');
const dataDir = mkdtempSync(join(tmpdir(), 'pacer-money-tz-'));
const redis = new Redis(redisUrl);
t.teardown(async () => {
  redis.disconnect();
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
});
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };

/** A zone whose local date differs from UTC's right now: UTC+14 late in the UTC day, UTC−11 early. */
function otherDateZone(): string {
  return new Date().getUTCHours() >= 10 ? 'Pacific/Kiritimati' : 'Pacific/Pago_Pago';
}

t.test("a time-zone change carries today's spend into the new day, and a restart keeps it", async (t) => {
  let p = await startPacer({ env, dataDir });
  const id = 'tz-move';
  const base = { id, dailyBudgetMicros: 1_000, strategy: 'ASAP', breaker: { enabled: false } };
  await createCampaign(p, base);
  t.equal((await post(p.url, '/v1/spend', { campaignId: id, eventId: 'before', amountMicros: 600 })).body.status, 'applied');

  const zone = otherDateZone();
  const newDay = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  // The new zone's date already holds spend (the UTC day of that date, for a zone behind UTC).
  await redis.set(campaignKeys(prefix, id).day(newDay), '300');

  await createCampaign(p, { ...base, timezone: zone });
  let s = await status(p, id);
  t.equal(s.day, newDay, `the campaign now lives on ${zone}'s date`);
  t.equal(s.settledMicros, 900, "the new day holds its stored 300 and today's carried 600");
  t.equal((await post(p.url, '/v1/decide', { campaignId: id, bidMicros: 200, requestId: 'q-big' })).body.reason, 'BUDGET_EXHAUSTED', 'no budget + today');
  t.equal((await post(p.url, '/v1/decide', { campaignId: id, bidMicros: 100, requestId: 'q-fits' })).body.allow, true);
  t.equal((await post(p.url, '/v1/spend', { campaignId: id, eventId: 'after', amountMicros: 100, requestId: 'q-fits' })).body.status, 'applied');
  t.equal(Number(await redis.get(campaignKeys(prefix, id).day(newDay))), 1_000, 'the store holds the same total under the new key');

  t.equal(await p.stop(), 0);
  p = await startPacer({ env, dataDir });
  t.teardown(() => p.stop());
  s = await status(p, id);
  t.equal(s.day, newDay);
  t.equal(s.settledMicros, 1_000, 'after the restart the acknowledged spend of the new day is all there');
  t.equal((await post(p.url, '/v1/decide', { campaignId: id, bidMicros: 1, requestId: 'q-more' })).body.reason, 'BUDGET_EXHAUSTED');
});
