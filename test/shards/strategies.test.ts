import t from 'tap';
import { Controller, desiredRate, type ControlInput } from '../../shards/pacing/controller.js';
import { Curve } from '../../shards/pacing/curve.js';
import { buildDayPlan, hourStartsOf } from '../../shards/pacing/day.js';
import { pacingTuning } from '../../shards/pacing/tuning.js';
import { activeIntervals } from '../../shards/time/schedule.js';
import { dayBounds } from '../../shards/time/zone.js';
import type { Strategy } from '../../shards/types.js';
import { config, iso } from '../helpers/campaign.js';

const tz = 'UTC';
const day = dayBounds(tz, iso('2025-06-04T12:00:00Z'));
const H = 3_600_000;
const at = (hours: number): number => day.startMs + hours * H;

function curve(strategy: Strategy, extra: Partial<{ weights: number[] | null; share: number; ahead: number; window: [string, string] }> = {}): Curve {
  const schedule = extra.window === undefined ? null : [{ days: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as never, start: extra.window[0], end: extra.window[1] }];
  return new Curve({
    strategy,
    active: activeIntervals(tz, day, schedule, null, null),
    hourStarts: hourStartsOf(tz, day),
    hourlyWeights: extra.weights ?? null,
    frontLoadedShare: extra.share ?? 0.7,
    aheadPercent: extra.ahead ?? 10,
  });
}

t.test('EVEN plans linearly in active minutes', async (t) => {
  const c = curve('EVEN');
  t.equal(c.fraction(at(0)), 0);
  t.equal(c.fraction(at(6)), 0.25);
  t.equal(c.fraction(at(12)), 0.5);
  t.equal(c.fraction(at(24)), 1);
});

t.test('EVEN under dayparting plans over active minutes only', async (t) => {
  const c = curve('EVEN', { window: ['09:00', '17:00'] });
  t.equal(c.activeMs, 8 * H);
  t.equal(c.fraction(at(8)), 0, 'nothing planned before the window');
  t.equal(c.fraction(at(13)), 0.5, 'half the budget by the middle of the window');
  t.equal(c.fraction(at(20)), 1, 'everything by its end');
});

t.test('ASAP plans the whole budget from the first active minute', async (t) => {
  const c = curve('ASAP', { window: ['06:00', '22:00'] });
  t.equal(c.fraction(at(5)), 0);
  t.equal(c.fraction(at(6)), 0, 'nothing is due at the very instant the window opens');
  t.equal(c.fraction(at(6) + 1), 1);
  t.equal(c.fraction(at(23)), 1);
});

t.test('FRONT_LOADED plans 70% in the first half by default, and its share is configurable', async (t) => {
  t.equal(curve('FRONT_LOADED').fraction(at(12)), 0.7);
  t.equal(curve('FRONT_LOADED').fraction(at(6)), 0.35);
  t.equal(curve('FRONT_LOADED').fraction(at(18)), 0.85);
  t.equal(curve('FRONT_LOADED', { share: 0.6 }).fraction(at(12)), 0.6);
});

t.test('AHEAD runs aheadPercent ahead of EVEN, capped at the whole budget', async (t) => {
  const c = curve('AHEAD', { ahead: 20 });
  t.equal(c.fraction(at(12)), 0.6);
  t.equal(c.fraction(at(22)), 1);
});

t.test('CUSTOM follows 24 hourly weights; weights zero in every active minute fall back to EVEN', async (t) => {
  const w = new Array<number>(24).fill(0);
  w[9] = 1;
  w[10] = 3;
  const c = curve('CUSTOM', { weights: w });
  t.equal(c.fraction(at(9)), 0);
  t.equal(c.fraction(at(10)), 0.25);
  t.equal(c.fraction(at(11)), 1);
  const none = curve('CUSTOM', { weights: w, window: ['00:00', '08:00'] });
  t.equal(none.fraction(at(4)), 0.5);
});

t.test('ADAPTIVE plans by its learned profile, else the global profile, else EVEN', async (t) => {
  const cfg = config({ strategy: 'ADAPTIVE' });
  const profile = Array.from({ length: 24 }, (_, h) => (h < 12 ? 1 : 3));
  const learned = buildDayPlan(cfg, at(1), profile, 0);
  t.equal(learned.curve.fraction(at(12)), 0.25, 'a quarter of the traffic, so a quarter of the budget, by noon');
  const even = buildDayPlan(cfg, at(1), null, 0);
  t.equal(even.curve.fraction(at(12)), 0.5);
});

function input(over: Partial<ControlInput>): ControlInput {
  const c = curve('EVEN');
  return {
    nowMs: at(12),
    curve: c,
    budgetMicros: 24_000_000,
    committedMicros: 12_000_000,
    decisions: 0,
    allowed: 0,
    settledDeltaMicros: 0,
    spendEvents: 0,
    velocityCapMultiple: 24,
    hourStarts: hourStartsOf(tz, day),
    forecast: null,
    ...over,
  };
}

t.test('on plan, the controller asks for the plan rate; behind, it spreads the deficit over the remaining plan', async (t) => {
  const planRate = 24_000_000 / (24 * H);
  const finish = 1 / (1 - pacingTuning.fastFinishMs / (12 * H));
  t.ok(Math.abs(desiredRate(input({})) / planRate - finish) < 1e-6, 'the plan rate, sped up by the fast finish');
  const behind = desiredRate(input({ committedMicros: 9_000_000 }));
  t.ok(Math.abs(behind / planRate - (15 / 12) * finish) < 1e-6, 'a quarter of the remaining plan behind: 25% faster');
  t.equal(desiredRate(input({ committedMicros: 24_000_000 })), 0, 'nothing left: nothing asked');
});

t.test('catch-up is bounded: a campaign far behind never asks for more than 3× the plan rate', async (t) => {
  const planRate = 24_000_000 / (24 * H);
  const r = desiredRate(input({ nowMs: at(22), committedMicros: 0 }));
  t.ok(r <= pacingTuning.catchUpMaxRatio * planRate * 1.2 + 1e-9, `asked ${(r / planRate).toFixed(2)}× the plan rate`);
  t.ok(r >= 2 * planRate, 'but does catch up');
});

t.test('fast finish: in the last minutes the controller asks for everything left, within the velocity cap', async (t) => {
  const r = desiredRate(input({ nowMs: at(24) - 60_000, committedMicros: 23_000_000 }));
  const even = 24_000_000 / (24 * H);
  t.equal(r, Math.min(1_000_000 / 60_000, 24 * even));
});

t.test('ASAP asks for the velocity cap and nothing more', async (t) => {
  const c = curve('ASAP');
  const r = desiredRate(input({ curve: c, nowMs: at(1), committedMicros: 0, velocityCapMultiple: 5 }));
  t.equal(r, 5 * (24_000_000 / (24 * H)));
});

t.test('capacity look-ahead: when the evening cannot carry its plan, the controller spends the difference now', async (t) => {
  const value = 1_000;
  const forecast = new Float64Array(24).fill(10 / H); // 10 opportunities an hour: far too few
  const without = desiredRate(input({ nowMs: at(20) }), value);
  const withForecast = desiredRate(input({ nowMs: at(20), forecast }), value);
  t.ok(withForecast > 2 * without, `the hours after 21:00 cannot carry their plan: ${(withForecast / without).toFixed(2)}× now`);
  const plenty = new Float64Array(24).fill(1e9 / H);
  t.equal(desiredRate(input({ nowMs: at(20), forecast: plenty }), value), without, 'ample traffic changes nothing');
});

t.test('slow start: the throttle stays at 10% until spend per allowed decision is known; ASAP starts at 1', async (t) => {
  const ctl = new Controller();
  ctl.startFor('EVEN');
  t.equal(ctl.throttle, pacingTuning.slowStartThrottle);
  const asap = new Controller();
  asap.startFor('ASAP');
  t.equal(asap.throttle, 1);
  // Two seconds of traffic with no spend observed: still slow start.
  ctl.update(input({ nowMs: at(12), decisions: 10, allowed: 1 }));
  ctl.update(input({ nowMs: at(12) + 1_000, decisions: 10, allowed: 1 }));
  t.equal(ctl.throttle, pacingTuning.slowStartThrottle);
  t.equal(ctl.valuePerAllowed, null);
});

t.test('the controller converges to the throttle that makes spend track the plan', async (t) => {
  // 100 opportunities a second; each allowed one spends 1,000 micros; the plan wants 24e9 a day.
  const budget = 24 * 3_600 * 100 * 1_000 * 0.4; // 40% of what the traffic brings
  const ctl = new Controller();
  ctl.startFor('EVEN');
  let committed = budget / 2;
  for (let s = 0; s < 600; s++) {
    const allowed = Math.round(100 * ctl.throttle);
    ctl.update(input({ nowMs: at(12) + s * 1_000, budgetMicros: budget, committedMicros: committed, decisions: 100, allowed, settledDeltaMicros: allowed * 1_000, spendEvents: allowed }));
    committed += allowed * 1_000;
  }
  t.ok(Math.abs(ctl.throttle - 0.4) < 0.03, `throttle ${ctl.throttle.toFixed(3)} ≈ 0.4`);
});
