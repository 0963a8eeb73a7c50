import pg from 'pg';
import t from 'tap';
import { auth, createCampaign, get, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * On the real server (Redis counters, PostgreSQL configuration and history):
 * - a new campaign starts from the combined profile of the campaigns like it (same time zone and
 *   schedule) that have fitted profiles, and plans its first decisions by that shape;
 * - GET /v1/campaigns/:id/forecast projects today's spend from the recent spend rate.
 *
 * The history is written straight into campaign_minutes, as in restart.test.ts, in the fixed-offset
 * Etc/GMT zone in which it is now about 10:00 local time: light (5 decisions a minute) except at
 * 12:00-14:00 local (100), every day of the last week; a profile learned from it keeps most of
 * today's budget for those two hours.
 */
t.setTimeout(300_000);
const db = await createDatabase('similar');
const prefix = uniqueName('pacer-sim');
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url, PACER_HISTORY_FLUSH_MS: '200' };
t.teardown(async () => {
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
});

const budget = 1_500_000_000;
const dayMs = 86_400_000;

async function query(sql: string, params: unknown[]): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(sql, params);
  } finally {
    await c.end();
  }
}

const hourMs = 3_600_000;
/** Hours east of UTC of the zone in which it is now 10:xx local time. */
const eastHours = (() => {
  let k = (10 - new Date().getUTCHours() + 24) % 24;
  if (k > 14) k -= 24;
  return k;
})();
const timezone = eastHours === 0 ? 'Etc/GMT' : eastHours > 0 ? `Etc/GMT-${eastHours}` : `Etc/GMT+${-eastHours}`;
const localHourOf = (ms: number): number => Math.floor((((ms + eastHours * hourMs) % dayMs) + dayMs) % dayMs / hourMs);
const localDayStart = (ms: number): number => Math.floor((ms + eastHours * hourMs) / dayMs) * dayMs - eastHours * hourMs;
const heavy = (h: number): boolean => h === 12 || h === 13;

async function writeWeek(id: string, nowMs: number): Promise<void> {
  const today = localDayStart(nowMs);
  const minutes: string[] = [];
  const days: string[] = [];
  const decisions: number[] = [];
  for (let m = today - 7 * dayMs; m < today; m += 60_000) {
    minutes.push(new Date(m).toISOString());
    days.push(new Date(m + eastHours * hourMs).toISOString().slice(0, 10));
    decisions.push(heavy(localHourOf(m)) ? 100 : 5);
  }
  await query(
    `INSERT INTO campaign_minutes (campaign_id, minute, day, decisions, allowed, budget_micros, throttle, breaker_state)
     SELECT $1, m, d, n, n, $5, 1, 'CLOSED' FROM unnest($2::timestamptz[], $3::date[], $4::bigint[]) AS u(m, d, n)`,
    [id, minutes, days, decisions, budget],
  );
}

/** 40 rounds of 20 decide calls per campaign, every allowed bid won at 1,000 micros (the controller leaves its slow start after ten wins). */
async function burst(ids: string[]): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await Promise.all(
      ids.flatMap((cid) =>
        Array.from({ length: 20 }, async (_, k) => {
          const requestId = `${cid}-${i}-${k}`;
          const d = await post(pacer.url, '/v1/decide', { campaignId: cid, bidMicros: 1_000, requestId });
          if (d.body.allow === true) await post(pacer.url, '/v1/spend', { campaignId: cid, eventId: `w-${requestId}`, requestId, amountMicros: 1_000 });
        }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const pacer = await startPacer({ env });
t.teardown(() => pacer.stop());
const campaign = (id: string, extra: Record<string, unknown> = {}) => ({ id, dailyBudgetMicros: budget, strategy: 'ADAPTIVE', timezone, breaker: { enabled: false }, ...extra });

t.test('a new campaign starts from the profile of campaigns like it, and plans its first decisions by it', async (t) => {
  const nowMs = Date.now();
  for (const id of ['sim-a', 'sim-b']) {
    await createCampaign(pacer, campaign(id));
    await writeWeek(id, nowMs);
    t.equal((await post(pacer.adminUrl, `/v1/campaigns/${id}/profile/fit`, '', auth)).status, 200, `${id} fitted`);
  }
  // Like them: same zone, no schedule. Unlike: another zone, and a dayparted schedule. And the
  // same campaign planned evenly: what it would pace like if it started flat.
  await createCampaign(pacer, campaign('sim-new'));
  await createCampaign(pacer, campaign('sim-other-zone', { timezone: 'UTC' }));
  await createCampaign(pacer, campaign('sim-dayparted', { schedule: [{ days: ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'], start: '00:00', end: '23:00' }] }));
  await createCampaign(pacer, campaign('sim-even', { strategy: 'EVEN' }));

  const p = await get(pacer.adminUrl, '/v1/campaigns/sim-new/profile', auth);
  t.equal(p.status, 200);
  t.equal(p.body.source, 'similar');
  t.equal(p.body.similarCampaigns, 2, 'combined from both campaigns like it');
  const day = p.body.days.WED as number[];
  t.ok(day.every((v, h) => Math.abs(v / day[0]! - (heavy(h) ? 20 : 1)) < 1e-6), `the shape of its likes (5 : 100 at 12:00-14:00): ${day.map((v) => v.toFixed(2)).join(' ')}`);
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/sim-a/profile', auth)).body.source, 'fitted');
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/sim-other-zone/profile', auth)).body.error.code, 'NO_PROFILE', 'another zone is not alike');
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/sim-dayparted/profile', auth)).body.error.code, 'NO_PROFILE', 'another schedule is not alike');

  // Its first decisions are paced by that shape: most of today's budget is kept for 12:00-14:00,
  // so it plans less so far and throttles this light hour well below EVEN on the same traffic.
  const fresh = await status(pacer, 'sim-new');
  const evenPlan = (budget * (Date.now() - localDayStart(Date.now()))) / dayMs;
  t.ok(fresh.planMicros < 0.6 * evenPlan, `planned ${fresh.planMicros} by its likes' shape, EVEN would plan ${Math.round(evenPlan)}`);
  await burst(['sim-new', 'sim-even']);
  const paced = await status(pacer, 'sim-new');
  const flat = await status(pacer, 'sim-even');
  t.comment(`throttle after the burst: started from its likes ${paced.throttle}, EVEN ${flat.throttle}`);
  t.ok(flat.throttle > 0.3, `EVEN left its slow start: ${flat.throttle}`);
  t.ok(paced.throttle < 0.5 * flat.throttle, `throttle ${paced.throttle} by its likes' shape, EVEN's ${flat.throttle}`);

  // Once it has a fitted profile of its own, that is what it shows.
  await writeWeek('sim-new', nowMs);
  await post(pacer.adminUrl, '/v1/campaigns/sim-new/profile/fit', '', auth);
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/sim-new/profile', auth)).body.source, 'fitted');
});

t.test('the forecast projects today\'s spend from the recent rate, by the plan or the profile', async (t) => {
  const id = 'fc-even';
  // A budget that the recent pace (10,000 micros a minute after 1,000,000 spent) uses up halfway through the rest of the day.
  const remainingAtStart = (Math.floor(Date.now() / dayMs) * dayMs + dayMs - Date.now()) / 60_000;
  const dailyBudget = Math.round(1_000_000 + (10_000 * remainingAtStart) / 2);
  // Etc/UTC: no campaign like it has a profile, so nothing shapes it but its plan.
  await createCampaign(pacer, { id, dailyBudgetMicros: dailyBudget, strategy: 'EVEN', timezone: 'Etc/UTC', breaker: { enabled: false } });
  const r = await post(pacer.url, '/v1/spend', { campaignId: id, eventId: 'fc-1', amountMicros: 1_000_000 });
  t.equal(r.status, 200);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  // The last 30 whole minutes of today spent 10,000 micros each (written as the history writer would).
  const nowMs = Date.now();
  const nowMinute = Math.floor(nowMs / 60_000) * 60_000;
  const today = Math.floor(nowMs / dayMs) * dayMs;
  const minutes: string[] = [];
  for (let m = Math.max(today, nowMinute - 30 * 60_000); m < nowMinute; m += 60_000) minutes.push(new Date(m).toISOString());
  await query(
    `INSERT INTO campaign_minutes (campaign_id, minute, day, decisions, allowed, spend_events, settled_micros, budget_micros, throttle, breaker_state)
     SELECT $1, m, $3::date, 10, 10, 1, 10000, $4, 1, 'CLOSED' FROM unnest($2::timestamptz[]) AS u(m)
     ON CONFLICT (campaign_id, minute) DO UPDATE SET settled_micros = 10000`,
    [id, minutes, new Date(today).toISOString().slice(0, 10), dailyBudget],
  );
  const f = await get(pacer.adminUrl, `/v1/campaigns/${id}/forecast`, auth);
  t.equal(f.status, 200);
  t.comment(JSON.stringify(f.body));
  t.equal(f.body.basis, 'plan', 'no profile: the plan shapes the rest of the day');
  t.equal(f.body.spentMicros, 1_000_000, 'today\'s settled spend');
  t.equal(f.body.budgetMicros, dailyBudget);
  t.equal(f.body.recentMinutes, minutes.length);
  if (minutes.length === 0) {
    t.comment('the day began this minute: no recent rate, the plan is the forecast');
    return;
  }
  t.equal(f.body.recentRateMicrosPerMinute, 10_000);
  // EVEN's plan is flat: the rest of the day at 10,000 micros a minute, until the budget is gone.
  t.equal(f.body.expectedSpendMicros, dailyBudget, 'the budget is expected to be spent');
  const at = Date.parse(f.body.asOf) + ((dailyBudget - 1_000_000) / 10_000) * 60_000;
  t.ok(Math.abs(Date.parse(f.body.expectedExhaustionAt) - at) <= 120_000, `runs out at ${f.body.expectedExhaustionAt}, by hand ${new Date(at).toISOString()}`);

  const idle = await get(pacer.adminUrl, '/v1/campaigns/sim-dayparted/forecast', auth);
  t.equal(idle.body.expectedExhaustionAt, null, 'a campaign that spends nothing is not expected to run out');
  t.equal(idle.body.expectedSpendMicros, 0);
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/sim-a/forecast', auth)).body.basis, 'profile', 'with a profile, it shapes the day');
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/nope/forecast', auth)).body.error.code, 'UNKNOWN_CAMPAIGN');
});
