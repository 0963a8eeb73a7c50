import t from 'tap';
import { dailyAllowance, hourStartsOf } from '../../shards/pacing/day.js';
import { Reason } from '../../shards/reasons.js';
import { activeIntervals, totalMs } from '../../shards/time/schedule.js';
import { dayBounds, localToEpoch } from '../../shards/time/zone.js';
import { always, config, harness, iso } from '../helpers/campaign.js';

const H = 3_600_000;

const dstDays: [string, string, number][] = [
  ['America/New_York', '2025-03-09T12:00:00Z', 23],
  ['America/New_York', '2025-11-02T12:00:00Z', 25],
  ['Europe/Berlin', '2025-03-30T12:00:00Z', 23],
  ['Europe/Berlin', '2025-10-26T12:00:00Z', 25],
  ['America/New_York', '2025-06-04T12:00:00Z', 24],
];

for (const [tz, instant, hours] of dstDays) {
  t.test(`the local day of ${instant.slice(0, 10)} in ${tz} lasts ${hours} hours and starts at local midnight`, async (t) => {
    const d = dayBounds(tz, iso(instant));
    t.equal(d.endMs - d.startMs, hours * H);
    t.equal(d.key, instant.slice(0, 10));
    const fmt = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    t.equal(fmt.format(d.startMs), '00:00');
    t.equal(fmt.format(d.endMs), '00:00');
    const hs = hourStartsOf(tz, d);
    t.equal(hs.length, 25);
    t.equal(hs[24]! - hs[0]!, hours * H, 'the local hours cover the day exactly');
    const lengths = hs.slice(1).map((x, i) => (x - hs[i]!) / H);
    const odd = lengths.filter((x) => x !== 1);
    t.same(odd, hours === 23 ? [0] : hours === 25 ? [2] : [], 'one hour is skipped or doubled on a DST day');
  });
}

t.test('a campaign in New York rolls over at local midnight, not at UTC midnight, on both DST days', async (t) => {
  for (const [date, nextMidnight] of [['2025-03-09', '2025-03-10T04:00:00Z'], ['2025-11-02', '2025-11-03T05:00:00Z']] as const) {
    const start = iso(`${date}T12:00:00Z`);
    const h = harness(config({ timezone: 'America/New_York', strategy: 'ASAP' }), start);
    const c = h.campaign;
    c.applySpend(start, 1_000, '');
    c.decide(iso(`${date}T23:59:59Z`), 0, '', always, 60_000);
    t.equal(c.day.bounds.key, date, 'UTC midnight passed, the local day goes on');
    t.equal(c.settled, 1_000);
    c.decide(iso(nextMidnight) - 1, 0, '', always, 60_000);
    t.equal(c.day.bounds.key, date);
    c.decide(iso(nextMidnight), 0, '', always, 60_000);
    t.not(c.day.bounds.key, date, 'rolled over at local midnight');
    t.equal(c.settled, 0);
    t.same(h.rollovers.map((r) => r.day), [date]);
  }
});

t.test('the EVEN plan of a 23-hour day reaches half its budget after 11.5 real hours', async (t) => {
  const h = harness(config({ timezone: 'Europe/Berlin' }), iso('2025-03-30T05:00:00Z'));
  const d = h.campaign.day;
  t.equal(d.curve.activeMs, 23 * H);
  t.equal(d.curve.fraction(d.bounds.startMs + 11.5 * H), 0.5);
});

t.test('dayparting across midnight: a 22:00-02:00 window is active on both sides of midnight and nowhere else', async (t) => {
  const tz = 'Europe/Berlin';
  const schedule = [{ days: ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'], start: '22:00', end: '02:00' }];
  const wed = iso('2025-06-04T12:00:00Z');
  const h = harness(config({ timezone: tz, strategy: 'ASAP', schedule }), wed);
  const c = h.campaign;
  const local = (date: string, hhmm: string): number => localToEpoch(tz, { year: 2025, month: 6, day: Number(date) }, Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3)));
  t.equal(c.decide(local('4', '21:59'), 100, 'a', always, 60_000), Reason.OUTSIDE_SCHEDULE);
  t.equal(c.decide(local('4', '22:00'), 100, 'b', always, 60_000), Reason.OK);
  t.equal(c.decide(local('4', '23:59'), 100, 'c', always, 60_000), Reason.OK);
  t.equal(c.decide(local('5', '00:00'), 100, 'd', always, 60_000), Reason.OK, 'past midnight: the same window, the new day');
  t.equal(c.decide(local('5', '01:59'), 100, 'e', always, 60_000), Reason.OK);
  t.equal(c.decide(local('5', '02:00'), 100, 'f', always, 60_000), Reason.OUTSIDE_SCHEDULE);
  t.equal(c.decide(local('5', '12:00'), 100, 'g', always, 60_000), Reason.OUTSIDE_SCHEDULE);
  const s = c.status(local('5', '12:00'));
  t.equal(s.active, false);
  t.equal(s.inactiveReason, 'OUTSIDE_SCHEDULE');
  const today = dayBounds(tz, local('5', '12:00'));
  const active = activeIntervals(tz, today, schedule as never, null, null);
  t.equal(totalMs(active), 4 * H, 'the day plans over its 4 active hours: 00:00-02:00 and 22:00-24:00');
  t.equal(c.day.curve.activeMs, 4 * H);
});

t.test('outside its flight a campaign denies with OUTSIDE_FLIGHT, and paused with CAMPAIGN_PAUSED', async (t) => {
  const start = iso('2025-06-04T10:00:00Z');
  const end = iso('2025-06-04T14:00:00Z');
  const h = harness(config({ strategy: 'ASAP', startAt: '2025-06-04T10:00:00Z', endAt: '2025-06-04T14:00:00Z' }), start - H);
  const c = h.campaign;
  t.equal(c.decide(start - 1, 100, 'a', always, 60_000), Reason.OUTSIDE_FLIGHT);
  t.equal(c.decide(start, 100, 'b', always, 60_000), Reason.OK);
  t.equal(c.decide(end, 100, 'c', always, 60_000), Reason.OUTSIDE_FLIGHT);
  t.equal(c.day.curve.activeMs, 4 * H, 'the day plans over the flight only');
  c.reconfigure(config({ strategy: 'ASAP', status: 'PAUSED' }, 2), end + 1);
  t.equal(c.decide(end + 2, 100, 'd', always, 60_000), Reason.CAMPAIGN_PAUSED);
});

t.test('a lifetime budget gives each day its share of what is left, and caps catch-up', async (t) => {
  const cfg = config({
    lifetimeBudgetMicros: 10_000_000,
    dailyBudgetMicros: 10_000_000,
    startAt: '2025-06-01T00:00:00Z',
    endAt: '2025-06-11T00:00:00Z',
    catchUpMaxRatio: 1.5,
  });
  const today = dayBounds('UTC', iso('2025-06-04T12:00:00Z'));
  const active = activeIntervals('UTC', today, null, cfg.startAtMs, cfg.endAtMs);
  t.equal(dailyAllowance(cfg, today, active, 3_000_000), 1_000_000, 'on track: 7 M left over 7 days');
  t.equal(dailyAllowance(cfg, today, active, 5_000_000), 5_000_000 / 7 | 0, 'ahead: less per day');
  t.equal(dailyAllowance(cfg, today, active, 0), 10_000_000 / 7 | 0, 'behind: all 10 M over the 7 days left (1.43 × the even share)');
  const late = dayBounds('UTC', iso('2025-06-08T12:00:00Z'));
  const lateActive = activeIntervals('UTC', late, null, cfg.startAtMs, cfg.endAtMs);
  t.equal(dailyAllowance(cfg, late, lateActive, 0), 1_500_000, 'far behind: 10 M over 3 days would be 3.3 M a day, capped at 1.5 × the even 1 M');
  const last = dayBounds('UTC', iso('2025-06-10T12:00:00Z'));
  const lastActive = activeIntervals('UTC', last, null, cfg.startAtMs, cfg.endAtMs);
  t.equal(dailyAllowance(cfg, last, lastActive, 0), 1_500_000, 'the cap holds on the last day, whatever is left');
});

t.test('dayBounds answers the same day for any instant inside it, asked in any order across zones and DST days', async (t) => {
  // dayBounds keeps each zone's last day; a stale answer at a boundary would move money into the wrong day.
  const fmtKey = (tz: string, ms: number): string => {
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(ms).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}`;
  };
  const probes: [string, number][] = [];
  for (const [tz, instant] of dstDays) {
    const d = dayBounds(tz, iso(instant));
    for (const ms of [d.startMs - 1, d.startMs, d.startMs + 1, iso(instant), d.endMs - 1, d.endMs, d.endMs + 1]) probes.push([tz, ms]);
  }
  // Interleave zones and walk back and forth over the boundaries.
  const order = [...probes, ...probes.slice().reverse(), ...probes.filter((_, i) => i % 2 === 0), ...probes.filter((_, i) => i % 2 === 1)];
  for (const [tz, ms] of order) {
    const d = dayBounds(tz, ms);
    if (!(d.startMs <= ms && ms < d.endMs)) t.fail(`${tz} ${new Date(ms).toISOString()}: outside [${d.startMs}, ${d.endMs})`);
    if (d.key !== fmtKey(tz, ms)) t.fail(`${tz} ${new Date(ms).toISOString()}: day ${d.key}, Intl says ${fmtKey(tz, ms)}`);
  }
  t.pass(`${order.length} instants checked`);
});
