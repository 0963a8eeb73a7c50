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
 * test's time). The campaign's zone is the fixed-offset Etc/GMT zone in which it is now about
 * 10:00 local time, so the test sees the same local shape at any hour it runs: every day of the
 * last week the traffic is light (5 decisions a minute) except at 12:00-14:00 local (100).
 * ADAPTIVE then keeps most of today's budget for those two hours, and throttles the light hour it
 * is in well below what EVEN (what a restart without a durable profile would plan) does.
 */
const db = await createDatabase('profiles');
const prefix = uniqueName('pacer-prof');
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };
t.teardown(async () => {
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
});

const id = 'prof-restart-1';
/** The same campaign planned evenly, fed the same traffic: what a forgotten profile would pace like. */
const evenId = 'prof-restart-even';
const budget = 1_500_000_000;
const dayMs = 86_400_000;
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
/** Light hours' share of the day's traffic per hour: 5 / (22 × 5 + 2 × 100). */
const lightShare = 5 / 310;

async function writeHistory(nowMs: number): Promise<void> {
  const today = localDayStart(nowMs);
  const minutes: string[] = [];
  const days: string[] = [];
  const decisions: number[] = [];
  for (let m = today - 7 * dayMs; m < today; m += 60_000) {
    minutes.push(new Date(m).toISOString());
    days.push(new Date(m + eastHours * hourMs).toISOString().slice(0, 10));
    decisions.push(heavy(localHourOf(m)) ? 100 : 5);
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

/**
 * The same traffic each time: 40 rounds of 20 decide calls per campaign, every allowed bid won at
 * 1,000 micros (so the controller leaves its slow start after ten wins and paces by the plan).
 */
async function burst(url: string, label: string, ids: string[]): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await Promise.all(
      ids.flatMap((cid) =>
        Array.from({ length: 20 }, async (_, k) => {
          const requestId = `${label}-${cid}-${i}-${k}`;
          const d = await post(url, '/v1/decide', { campaignId: cid, bidMicros: 1_000, requestId });
          if (d.body.allow === true) await post(url, '/v1/spend', { campaignId: cid, eventId: `w-${requestId}`, requestId, amountMicros: 1_000 });
        }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

t.test('a fitted profile survives a real restart: the first decisions after it are planned and throttled as before', async (t) => {
  t.comment(`zone ${timezone}: now ${localHourOf(Date.now())}:xx local`);
  let pacer = await startPacer({ env });
  await createCampaign(pacer, { id, dailyBudgetMicros: budget, strategy: 'ADAPTIVE', timezone, breaker: { enabled: false } });
  await createCampaign(pacer, { id: evenId, dailyBudgetMicros: budget, strategy: 'EVEN', timezone, breaker: { enabled: false } });
  t.equal((await get(pacer.adminUrl, `/v1/campaigns/${id}/profile`, auth)).body.error.code, 'NO_PROFILE', 'no profile before any fit');
  t.equal((await post(pacer.adminUrl, `/v1/campaigns/${id}/profile/fit`, '', auth)).body.error.code, 'NO_PROFILE', 'nor from an empty history');

  const nowMs = Date.now();
  await writeHistory(nowMs);
  const fit = await post(pacer.adminUrl, `/v1/campaigns/${id}/profile/fit`, '', auth);
  t.equal(fit.status, 200);
  const day = fit.body.days.WED as number[];
  t.ok(day.every((v, h) => Math.abs(v - (heavy(h) ? 100 : 5)) < 1e-9), `opportunities per minute by local hour: ${day.join(' ')}`);
  t.equal(fit.body.hoursUsed, 7 * 24);

  const before = await status(pacer, id);
  // EVEN's plan now, and ADAPTIVE's by the profile: the profile is in force.
  const evenPlan = (budget * (Date.now() - localDayStart(Date.now()))) / dayMs;
  t.ok(before.planMicros < 0.6 * evenPlan, `planned ${before.planMicros} by the profile, EVEN would plan ${Math.round(evenPlan)}`);
  await burst(pacer.url, 'a', [id, evenId]);
  const afterBurst = await status(pacer, id);
  const even = await status(pacer, evenId);
  t.comment(`throttle after the burst: ADAPTIVE ${afterBurst.throttle}, EVEN ${even.throttle}`);
  // The burst left the slow start (throttle 0.1) behind, and the profile shapes the throttle:
  // it keeps the budget for 12:00-14:00, so in this light hour it allows far less than EVEN.
  t.ok(even.throttle > 0.3, `EVEN paces by the money, not the slow start: ${even.throttle}`);
  t.ok(afterBurst.throttle < 0.5 * even.throttle, `ADAPTIVE's throttle ${afterBurst.throttle} is well below EVEN's ${even.throttle}`);
  t.equal(await pacer.stop(), 0);

  pacer = await startPacer({ env });
  t.teardown(() => pacer.stop());
  const stored = await get(pacer.adminUrl, `/v1/campaigns/${id}/profile`, auth);
  t.equal(stored.status, 200);
  t.equal(stored.body.fittedAt, fit.body.fittedAt, 'the stored profile is the one fitted before the restart');
  t.same(stored.body.days, fit.body.days);
  const first = await status(pacer, id);
  // The plan moves with time (and with the spend of the burst, which it does not count): at most
  // a light hour's share of the time between the reads.
  const elapsedShare = ((Date.now() - nowMs) / hourMs) * lightShare;
  t.ok(Math.abs(first.planMicros - before.planMicros) <= budget * elapsedShare + 1, `plan after restart ${first.planMicros}, before ${before.planMicros}`);
  await burst(pacer.url, 'b', [id]);
  const again = await status(pacer, id);
  t.comment(`throttle after the burst: before the restart ${afterBurst.throttle}, after ${again.throttle}`);
  // The same traffic after the restart is throttled as before: by the profile, not as EVEN.
  t.ok(Math.abs(again.throttle - afterBurst.throttle) <= 0.25 * afterBurst.throttle + 0.02, `throttle ${again.throttle} after the restart, ${afterBurst.throttle} before`);
  t.ok(again.throttle < 0.5 * even.throttle, `still well below EVEN's ${even.throttle}`);
});
