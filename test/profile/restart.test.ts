import pg from 'pg';
import t from 'tap';
import { auth, createCampaign, get, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * A campaign's traffic profile survives a restart of the real server (Redis counters, PostgreSQL
 * configuration and history): it is fitted from the stored minute history, kept in the database,
 * and sent to the shard at startup, so the first decisions after the restart are paced as before.
 *
 * The history is written straight into campaign_minutes (a week of it cannot be produced in a
 * test's time): before the current UTC hour H the traffic is light (5 decisions a minute), from H
 * on heavy (100), every day of the last week. ADAPTIVE then plans most of today's budget after now,
 * which EVEN (what a restart without a durable profile would plan) does not.
 */
const db = await createDatabase('profiles');
const prefix = uniqueName('pacer-prof');
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };
t.teardown(async () => {
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
});

const id = 'prof-restart-1';
const budget = 1_000_000_000;
const dayMs = 86_400_000;

async function writeHistory(nowMs: number): Promise<void> {
  const today = Math.floor(nowMs / dayMs) * dayMs;
  const split = Math.max(1, new Date(nowMs).getUTCHours());
  const minutes: string[] = [];
  const days: string[] = [];
  const decisions: number[] = [];
  for (let m = today - 7 * dayMs; m < today; m += 60_000) {
    minutes.push(new Date(m).toISOString());
    days.push(new Date(m).toISOString().slice(0, 10));
    decisions.push(new Date(m).getUTCHours() < split ? 5 : 100);
  }
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(
      `INSERT INTO campaign_minutes (campaign_id, minute, day, decisions, allowed, budget_micros, throttle, breaker_state)
       SELECT $1, m, d, n, n, $5, 1, 'CLOSED' FROM unnest($2::timestamptz[], $3::date[], $4::bigint[]) AS u(m, d, n)`,
      [id, minutes, days, decisions, budget],
    );
  } finally {
    await c.end();
  }
}

/** The same burst of traffic each time: decide calls without spend, then the status. */
async function burst(url: string, label: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await Promise.all(
      Array.from({ length: 20 }, (_, k) => post(url, '/v1/decide', { campaignId: id, bidMicros: 1_000, requestId: `${label}-${i}-${k}` })),
    );
  }
}

t.test('a fitted profile survives a real restart: the first decisions after it are planned and throttled as before', async (t) => {
  let pacer = await startPacer({ env });
  await createCampaign(pacer, { id, dailyBudgetMicros: budget, strategy: 'ADAPTIVE', timezone: 'UTC', breaker: { enabled: false } });
  t.equal((await get(pacer.adminUrl, `/v1/campaigns/${id}/profile`, auth)).body.error.code, 'NO_PROFILE', 'no profile before any fit');
  t.equal((await post(pacer.adminUrl, `/v1/campaigns/${id}/profile/fit`, '', auth)).body.error.code, 'NO_PROFILE', 'nor from an empty history');

  const nowMs = Date.now();
  await writeHistory(nowMs);
  const fit = await post(pacer.adminUrl, `/v1/campaigns/${id}/profile/fit`, '', auth);
  t.equal(fit.status, 200);
  const split = Math.max(1, new Date(nowMs).getUTCHours());
  const day = fit.body.days.WED as number[];
  t.ok(Math.abs(day[0]! - 5) < 1e-9 && Math.abs(day[23]! - 100) < 1e-9, `opportunities per minute by hour: ${day.join(' ')}`);
  t.equal(day[split - 1], 5);
  t.equal(day[split], 100);
  t.equal(fit.body.hoursUsed, 7 * 24);

  const before = await status(pacer, id);
  await burst(pacer.url, 'a');
  const afterBurst = await status(pacer, id);
  // EVEN's plan now, and ADAPTIVE's by the profile: the profile is in force.
  const start = Math.floor(Date.now() / dayMs) * dayMs;
  const evenPlan = (budget * (Date.now() - start)) / dayMs;
  t.ok(before.planMicros < 0.85 * evenPlan, `planned ${before.planMicros} by the profile, EVEN would plan ${Math.round(evenPlan)}`);
  t.equal(await pacer.stop(), 0);

  pacer = await startPacer({ env });
  t.teardown(() => pacer.stop());
  const stored = await get(pacer.adminUrl, `/v1/campaigns/${id}/profile`, auth);
  t.equal(stored.status, 200);
  t.equal(stored.body.fittedAt, fit.body.fittedAt, 'the stored profile is the one fitted before the restart');
  t.same(stored.body.days, fit.body.days);
  const first = await status(pacer, id);
  // The plan moves with time only: at most the heavy rate's share of the seconds between the reads.
  const elapsedShare = ((Date.now() - nowMs) / 3_600_000) * (100 / (split * 5 + (24 - split) * 100));
  t.ok(Math.abs(first.planMicros - before.planMicros) <= budget * elapsedShare + 1, `plan after restart ${first.planMicros}, before ${before.planMicros}`);
  await burst(pacer.url, 'b');
  const again = await status(pacer, id);
  t.comment(`throttle after the burst: before the restart ${afterBurst.throttle}, after ${again.throttle}`);
  t.ok(Math.abs(again.throttle - afterBurst.throttle) <= 0.05, `throttle ${again.throttle} after the restart, ${afterBurst.throttle} before`);
});
