import t from 'tap';
import { AuditFailure } from '../../src/sim/ledger.js';
import { simulate } from '../../src/sim/run.js';
import { parseTrafficCsv } from '../../src/sim/traffic.js';

/**
 * Small runs of the real simulator (the production shard under a simulated clock) inside the
 * suite. A quarter of the built-in volume (100,000 opportunities a day) keeps each run to a few
 * seconds; the assertions are the bars. No assertion on timing.
 */
const small = { trafficScale: 0.25, budgetFraction: 0.5, winDelayMs: 2_000 };

t.test('the DST days of New York simulate with 23 and 25 hourly slots and roll over at local midnight', async (t) => {
  const spring = await simulate({ trafficScale: 0.1, timezone: 'America/New_York', date: '2025-03-09', days: 2 });
  t.equal(spring.detail.hours.length, 23);
  t.equal(new Date(spring.detail.dayStartMs).toISOString(), '2025-03-09T05:00:00.000Z');
  t.ok(spring.deliveryRatio >= 0.995, `delivery ${spring.deliveryRatio}`);
  const fall = await simulate({ trafficScale: 0.1, timezone: 'Europe/Berlin', date: '2025-10-26', days: 2 });
  t.equal(fall.detail.hours.length, 25);
  t.equal(new Date(fall.detail.dayStartMs).toISOString(), '2025-10-25T22:00:00.000Z');
  t.ok(fall.deliveryRatio >= 0.995, `delivery ${fall.deliveryRatio}`);
});

t.test('a dayparted campaign across midnight spends only inside its window', async (t) => {
  const r = await simulate({ trafficScale: 0.25, window: '22:00-02:00', days: 2, seed: 9 });
  // Win notices arrive up to a minute after their decision, so the 02:00 hour may see a few.
  const outside = r.detail.hours.filter((h) => h.label >= '03:00' && h.label < '22:00');
  t.equal(outside.reduce((s, h) => s + h.spentMicros, 0), 0, 'nothing spent between 03:00 and 22:00');
  const m = r.detail.minutes;
  t.equal(m[3 * 60 - 1]!.spent, m[2 * 60 + 1]!.spent, 'nothing after 02:01');
  t.ok(r.deliveryRatio >= 0.99, `delivery ${r.deliveryRatio}`);
  t.ok((r.detail.deniedByReason.OUTSIDE_SCHEDULE ?? 0) > 0);
});

t.test('late win notices after their reservation expired are the only overspend, and the audit accounts for them', async (t) => {
  // A 5-second reservation lifetime with notices up to a minute late: many arrive after expiry.
  const r = await simulate({ trafficScale: 0.1, reservationTtlMs: 5_000, winDelayMs: 3_000, strategy: 'ASAP', seed: 2 });
  t.ok(r.detail.lateEvents > 0, `${r.detail.lateEvents} late notices`);
  t.ok(r.spentMicros <= r.budgetMicros + r.detail.lateMicros, 'settled ≤ budget + late spend');
});

t.test('the auditor catches a broken counter and names the seed that replays it', async (t) => {
  const failure = simulate({
    trafficScale: 0.05,
    seed: 77,
    onStep: (c, now) => {
      if (now > Date.parse('2025-06-04T12:00:00Z') && c.reserved > 0) (c as { reserved: number }).reserved -= 1;
    },
  });
  await t.rejects(failure, AuditFailure);
  await t.rejects(failure, { seed: 77, message: /seed 77.*reservations do not balance/ });
});

t.test('traffic CSVs must have the documented shape', async (t) => {
  t.throws(() => parseTrafficCsv('hours,requests\n0,1\n', 'x.csv'), /header/);
  t.throws(() => parseTrafficCsv('hour,requests\n0,1\n', 'x.csv'), /hour 1 is missing/);
  const ok = parseTrafficCsv(`minute,requests\n${Array.from({ length: 1440 }, (_, i) => `${i},${i % 60}`).join('\n')}\n`, 'm.csv');
  t.equal(ok.slot, 'minute');
  t.equal(ok.requests.length, 1440);
});
