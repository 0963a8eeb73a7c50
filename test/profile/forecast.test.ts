import t from 'tap';
import { forecast } from '../../src/admin/forecast.js';
import { parseCampaign } from '../../src/model/campaign.js';
import { combineSimilar, similarityKey } from '../../src/profile/service.js';

/**
 * The forecast's method (docs/pacing.md, "Forecast") and the combination of similar campaigns'
 * profiles, on hand-made inputs whose answers can be worked out by hand.
 */
const day = Date.UTC(2026, 11, 2); // a Wednesday
const now = day + 10 * 3_600_000; // 10:00 UTC
const config = (extra: Record<string, unknown> = {}) => parseCampaign({ id: 'f1', dailyBudgetMicros: 100_000_000, timezone: 'UTC', strategy: 'EVEN', ...extra }, 1);
const recent = (perMinute: number, minutes = 30): Map<number, number> => {
  const m = new Map<number, number>();
  for (let i = 1; i <= minutes; i++) m.set(now - i * 60_000, perMinute);
  return m;
};

t.test('by the profile: the rest of the day scaled by how much busier its hours are than the recent ones', async (t) => {
  // Every weekday: 1 opportunity per ms-unit until 12:00, 3 from 12:00 to 24:00.
  const density = Array.from({ length: 168 }, (_, i) => (i % 24 < 12 ? 1 : 3));
  const f = forecast({ config: config(), nowMs: now, spentMicros: 10_000_000, budgetMicros: 100_000_000, settledByMinute: recent(10_000), profile: density });
  t.equal(f.basis, 'profile');
  t.equal(f.recentMinutes, 30);
  t.equal(f.recentRateMicrosPerMinute, 10_000);
  // 120 minutes at 10,000 then 720 at 30,000.
  t.equal(f.expectedSpendMicros, 10_000_000 + 120 * 10_000 + 720 * 30_000);
  t.equal(f.expectedExhaustionAt, null);
});

t.test('the budget runs out: the first minute whose running sum reaches it', async (t) => {
  const f = forecast({ config: config(), nowMs: now, spentMicros: 10_000_000, budgetMicros: 11_000_000, settledByMinute: recent(10_000), profile: null });
  t.equal(f.basis, 'plan');
  t.equal(f.expectedSpendMicros, 11_000_000);
  t.equal(f.expectedExhaustionAt, new Date(now + 100 * 60_000).toISOString(), '1,000,000 left at 10,000 a minute: 100 minutes');
});

t.test('nothing spent recently forecasts nothing more; no recent minute at all forecasts the plan', async (t) => {
  const idle = forecast({ config: config(), nowMs: now, spentMicros: 5_000, budgetMicros: 100_000_000, settledByMinute: new Map(), profile: null });
  t.equal(idle.expectedSpendMicros, 5_000);
  t.equal(idle.expectedExhaustionAt, null);
  const midnight = forecast({ config: config(), nowMs: day + 10_000, spentMicros: 0, budgetMicros: 100_000_000, settledByMinute: new Map(), profile: null });
  t.equal(midnight.recentMinutes, 0);
  // EVEN's plan from now: 10 s of a day whose plan ends 5 minutes early (the fast finish) are gone.
  const planRest = 100_000_000 * (1 - 10_000 / (86_400_000 - 300_000));
  t.ok(Math.abs(midnight.expectedSpendMicros - planRest) <= 100, `the plan's rest of the day: ${midnight.expectedSpendMicros}, by hand ${Math.round(planRest)}`);
});

t.test('outside the active window the profile forecasts no spend', async (t) => {
  const windowed = config({ schedule: [{ days: ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'], start: '09:00', end: '11:00' }] });
  const f = forecast({ config: windowed, nowMs: now, spentMicros: 0, budgetMicros: 100_000_000, settledByMinute: recent(10_000), profile: Array(168).fill(1) });
  t.equal(f.expectedSpendMicros, 60 * 10_000, 'one active hour left at the recent rate');
});

t.test('similar campaigns: same zone and schedule; their shapes averaged at their mean level', async (t) => {
  t.equal(similarityKey(config()), similarityKey(config({ id: 'f2', strategy: 'ADAPTIVE' })));
  t.not(similarityKey(config()), similarityKey(config({ timezone: 'Europe/Paris' })));
  const flat = Array.from({ length: 168 }, () => 2);
  const peaked = Array.from({ length: 168 }, (_, i) => (i % 24 === 12 ? 24 : 1));
  const c = combineSimilar([{ density: flat, fittedAtMs: 1 }, { density: peaked, fittedAtMs: 1 }], 5)!;
  t.equal(c.fittedAtMs, 5);
  // Shapes: flat 1 everywhere; peaked 24/47·24 at noon and 24/47 elsewhere; levels 2 and 47/24.
  const level = (2 + 47 / 24) / 2;
  t.ok(Math.abs(c.density[12]! - ((1 + (24 * 24) / 47) / 2) * level) < 1e-9, `noon ${c.density[12]}`);
  t.ok(Math.abs(c.density[3]! - ((1 + 24 / 47) / 2) * level) < 1e-9, `03:00 ${c.density[3]}`);
});
