import t from 'tap';
import { simulate } from '../../src/sim/run.js';

/**
 * Small runs of the real simulator (the production shard under a simulated clock) inside the
 * suite. A quarter of the built-in volume (100,000 opportunities a day) keeps each run to a few
 * seconds; the assertions are the bars. No assertion on timing.
 */
const small = { trafficScale: 0.25, budgetFraction: 0.5, winDelayMs: 2_000 };

t.test('the breaker trips at 95%, waits its cooldown, recovers, and the day still delivers', async (t) => {
  const r = await simulate({ ...small, strategy: 'EVEN', seed: 3 });
  const events = r.detail.breakerEvents;
  t.same(events.slice(0, 3).map((e) => e.reason), ['TRIP_FRACTION', 'COOLDOWN_ELAPSED', 'RECOVERED']);
  t.equal(events[1]!.atMs - events[0]!.atMs, 300_000, 'OPEN for exactly the 300,000 ms cooldown');
  t.equal(r.breakerTrips, 1, 'tripped once: spend above 95% does not re-trip it');
  t.ok(r.deliveryRatio >= 0.995, `delivery ${r.deliveryRatio}`);
  t.ok((r.detail.deniedByReason.BREAKER_OPEN ?? 0) > 0, 'it did deny while open');
});

t.test('a run replays exactly from its seed, and another seed gives another run', async (t) => {
  const a = await simulate({ trafficScale: 0.1, seed: 42 });
  const b = await simulate({ trafficScale: 0.1, seed: 42 });
  const c = await simulate({ trafficScale: 0.1, seed: 43 });
  t.same({ ...a, detail: null }, { ...b, detail: null });
  t.not(a.spentMicros === c.spentMicros && a.decisions === c.decisions, true);
});
