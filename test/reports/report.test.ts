import t from 'tap';
import type { MinuteRow } from '../../src/admin/registry.js';
import { simulate } from '../../src/sim/run.js';
import { PostgresSql } from '../../src/store/sql.js';
import { SqlConfigStore } from '../../src/store/sql-config.js';
import { auth, createCampaign, get, startPacer } from '../helpers/server.js';
import { createDatabase } from '../helpers/services.js';

/**
 * The day report and the history over real HTTP, on PostgreSQL: a day the simulator replayed (the
 * production shard under a simulated clock) is written to the minute history as the admin thread
 * would write it, and the report must compute what the simulator computed for the same spend.
 * America/New_York on 2025-11-02 has 25 hours (01:00 twice), on 2025-03-09 23.
 */
const db = await createDatabase('reports');
t.teardown(() => db.drop());
const pacer = await startPacer({ env: { PACER_STORE: 'embedded', PACER_DATABASE_URL: db.url } });
t.teardown(() => pacer.stop());
const sql = new PostgresSql(db.url);
t.teardown(() => sql.close());
const store = new SqlConfigStore(sql);

function minuteRow(campaignId: string, minuteMs: number, day: string, settledMicros: number, budgetMicros: number, wins = 0): MinuteRow {
  return {
    campaignId, minuteMs, day, decisions: wins * 3, allowed: wins * 2, denied: wins, deniedByReason: wins > 0 ? { PACED: wins } : {},
    spendEvents: wins, settledMicros, duplicateEvents: 0, unmatchedEvents: 0, expiredReservations: 0, budgetMicros,
    throttle: 0.5, breakerState: 'CLOSED',
  };
}

const day = '2025-11-02';
const zone = 'America/New_York';
const sim = await simulate({ strategy: 'FRONT_LOADED', timezone: zone, date: day, trafficScale: 0.1, seed: 11, winDelayMs: 2_000 });
const { dayStartMs, dayEndMs } = sim.detail;

t.test('a replayed day\'s report has the simulator\'s delivery ratio, slot pacing error, early exhaustion and trips', async (t) => {
  await createCampaign(pacer, { id: 'replay-1', dailyBudgetMicros: sim.budgetMicros, timezone: zone, strategy: 'FRONT_LOADED', frontLoadedShare: 0.7 });
  const rows: MinuteRow[] = [];
  let before = 0;
  sim.detail.minutes.forEach((m, i) => {
    const spent = m.spent - before;
    before = m.spent;
    rows.push(minuteRow('replay-1', dayStartMs + i * 60_000, day, spent, sim.budgetMicros, spent > 0 ? 1 : 0));
  });
  const breakers = sim.detail.breakerEvents.map((b) => ({ campaignId: 'replay-1', atMs: b.atMs, from: b.from, to: b.to, reason: b.reason }));
  await store.writeHistory(rows, breakers);

  const r = await get(pacer.adminUrl, `/v1/campaigns/replay-1/report?day=${day}`, auth);
  t.equal(r.status, 200);
  const rep = r.body;
  t.equal(rep.day, day);
  t.equal(rep.budgetMicros, sim.budgetMicros);
  t.equal(rep.spentMicros, sim.detail.minutes[sim.detail.minutes.length - 1]!.spent);
  const close = (a: number, b: number, what: string): void => {
    t.ok(Math.abs(a - b) < 1e-9, `${what}: report ${a}, simulator ${b}`);
  };
  close(rep.deliveryRatio, sim.deliveryRatio, 'delivery ratio');
  close(rep.slotNrmse, sim.slotNrmse, 'slot nRMSE');
  close(rep.earlyExhaustionFraction, sim.earlyExhaustionFraction, 'early exhaustion');
  close(rep.maxTrackingError, sim.maxTrackingError, 'max tracking error');
  t.equal(rep.breakerTrips, sim.breakerTrips, 'breaker trips of the day');
  t.equal(rep.hours.length, 25, 'the fall-back day has 25 hours');
  t.equal(sim.detail.hours.length, 25, 'as the simulator\'s slots');
  rep.hours.forEach((h: { planMicros: number; spentMicros: number }, k: number) => {
    t.equal(h.planMicros, Math.round(sim.detail.hours[k]!.planMicros), `hour ${k}: the plan is the shards' curve`);
    t.equal(h.spentMicros, sim.detail.hours[k]!.spentMicros, `hour ${k}: the spend`);
  });
});

t.test('the report\'s hours follow the campaign\'s zone: 01:00 comes twice on a fall-back day', async (t) => {
  const rep = (await get(pacer.adminUrl, `/v1/campaigns/replay-1/report?day=${day}`, auth)).body;
  t.same(rep.hours.slice(0, 4).map((h: { localStart: string }) => h.localStart), [
    '2025-11-02T00:00:00-04:00', '2025-11-02T01:00:00-04:00', '2025-11-02T01:00:00-05:00', '2025-11-02T02:00:00-05:00',
  ]);
  t.equal(rep.start, '2025-11-02T04:00:00.000Z');
  t.equal(rep.end, '2025-11-03T05:00:00.000Z');
  const paced = rep.hours.reduce((n: number, h: { deniedByReason: { PACED?: number } }) => n + (h.deniedByReason.PACED ?? 0), 0);
  t.equal(paced, rep.hours.reduce((n: number, h: { denied: number }) => n + h.denied, 0), 'denials by reason per hour');
  const wins = rep.hours.reduce((n: number, h: { wins: number }) => n + h.wins, 0);
  t.equal(wins, sim.detail.minutes.filter((_m, i) => i === 0 ? _m.spent > 0 : _m.spent > sim.detail.minutes[i - 1]!.spent).length, 'wins per hour sum to the day\'s');
});

t.test('hourly history of a 25-hour and a 23-hour day has 25 and 23 buckets; daily history one per local day', async (t) => {
  const h25 = await get(pacer.adminUrl, `/v1/campaigns/replay-1/history?step=hour&from=${new Date(dayStartMs).toISOString()}&to=${new Date(dayEndMs).toISOString()}`, auth);
  t.equal(h25.status, 200);
  t.equal(h25.body.buckets.length, 25);
  t.equal(h25.body.buckets.reduce((n: number, b: { settledMicros: number }) => n + b.settledMicros, 0), sim.detail.minutes.at(-1)!.spent);
  const spring = await get(pacer.adminUrl, '/v1/campaigns/replay-1/history?step=hour&from=2025-03-09T05:00:00Z&to=2025-03-10T04:00:00Z', auth);
  t.equal(spring.body.buckets.length, 23, 'the spring-forward day');
  t.equal(spring.body.buckets[2].localStart, '2025-03-09T03:00:00-04:00', '02:00 does not exist');
  const week = await get(pacer.adminUrl, '/v1/campaigns/replay-1/history?step=day&from=2025-10-30T04:00:00Z&to=2025-11-05T05:00:00Z', auth);
  t.same(week.body.buckets.map((b: { localStart: string }) => b.localStart.slice(0, 10)),
    ['2025-10-30', '2025-10-31', '2025-11-01', '2025-11-02', '2025-11-03', '2025-11-04']);
  t.equal(week.body.buckets[3].settledMicros, sim.detail.minutes.at(-1)!.spent, 'the replayed day in its local day');
  t.equal(week.body.buckets[3].budgetMicros, sim.budgetMicros);
  t.equal(week.body.buckets[0].budgetMicros, null, 'a day without rows has no end state');
});

t.test('history refuses a bad step, a reversed range and a range longer than the step allows, with codes', async (t) => {
  const base = '/v1/campaigns/replay-1/history';
  const cases: [string, number, string][] = [
    ['?step=week', 400, 'INVALID_FIELD'],
    ['?from=yesterday', 400, 'INVALID_FIELD'],
    ['?from=0001-01-01T00:00:00Z&to=0001-01-01T01:00:00Z', 400, 'INVALID_FIELD'],
    ['?from=+275760-09-12T00:00:00Z&to=+275760-09-13T00:00:00Z', 400, 'INVALID_FIELD'],
    ['?from=2025-11-02T00:00:00Z&to=2025-11-01T00:00:00Z', 400, 'INVALID_FIELD'],
    ['?step=minute&from=2025-10-01T00:00:00Z&to=2025-10-09T00:00:00Z', 400, 'RANGE_TOO_LARGE'],
    ['?step=hour&from=2025-01-01T00:00:00Z&to=2025-06-01T00:00:00Z', 400, 'RANGE_TOO_LARGE'],
    ['?step=day&from=2023-01-01T00:00:00Z&to=2025-06-01T00:00:00Z', 400, 'RANGE_TOO_LARGE'],
  ];
  for (const [q, status, code] of cases) {
    const r = await get(pacer.adminUrl, base + q, auth);
    t.equal(r.status, status, q);
    t.equal(r.body.error.code, code, q);
  }
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/nobody/history', auth)).body.error.code, 'UNKNOWN_CAMPAIGN');
  for (const bad of ['2025-02-30', '1969-12-31', '2025-1-2', 'today']) {
    t.equal((await get(pacer.adminUrl, `/v1/campaigns/replay-1/report?day=${bad}`, auth)).body.error.code, 'INVALID_FIELD', `day=${bad}`);
  }
  t.equal((await get(pacer.adminUrl, '/v1/report', auth)).body.error.code, 'MISSING_FIELD');
  t.equal((await get(pacer.adminUrl, `/v1/report?day=${day}&limit=0`, auth)).body.error.code, 'INVALID_FIELD');
  t.equal((await get(pacer.adminUrl, `/v1/report?day=${day}&cursor=xyz`, auth)).body.error.code, 'INVALID_FIELD');
});

t.test('the fleet report lists campaigns worst first and pages through each exactly once', async (t) => {
  // Three UTC campaigns on the same day: on plan, half delivered late, nothing at all.
  const utcDay = '2025-06-04';
  const start = Date.parse(`${utcDay}T00:00:00Z`);
  const budget = 1_440_000;
  for (const id of ['fleet-even', 'fleet-late', 'fleet-none']) await createCampaign(pacer, { id, dailyBudgetMicros: budget, strategy: 'EVEN' });
  const rows: MinuteRow[] = [];
  for (let i = 0; i < 1440; i++) {
    rows.push(minuteRow('fleet-even', start + i * 60_000, utcDay, 1_000, budget));
    if (i >= 1080) rows.push(minuteRow('fleet-late', start + i * 60_000, utcDay, 2_000, budget));
  }
  await store.writeHistory(rows, []);
  const seen: string[] = [];
  let cursor: string | null = null;
  let page = 0;
  do {
    const q: string = `/v1/report?day=${utcDay}&limit=1${cursor === null ? '' : `&cursor=${cursor}`}`;
    const r = await get(pacer.adminUrl, q, auth);
    t.equal(r.status, 200);
    t.equal(r.body.campaigns.length, 1);
    seen.push(...r.body.campaigns.map((c: { campaignId: string }) => c.campaignId));
    if (r.body.campaigns[0].campaignId === 'fleet-even') {
      t.ok(Math.abs(r.body.campaigns[0].deliveryRatio - 1) < 1e-9, 'on plan delivers its budget');
      t.ok(r.body.campaigns[0].slotNrmse < 1e-9, 'with no slot error');
    }
    cursor = r.body.nextCursor;
  } while (cursor !== null && ++page < 20);
  const fleet = seen.filter((id) => id.startsWith('fleet-'));
  t.same(fleet, ['fleet-none', 'fleet-late', 'fleet-even'], 'worst first: nothing, then late, then on plan');
  t.equal(new Set(seen).size, seen.length, 'each campaign exactly once');
  t.equal(seen.length, 4, 'the whole catalogue (the replayed campaign had no spend that day)');
});
