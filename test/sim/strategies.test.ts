import t from 'tap';
import { simulate } from '../../src/sim/run.js';

/**
 * Small runs of the real simulator (the production shard under a simulated clock) inside the
 * suite. A quarter of the built-in volume (100,000 opportunities a day) keeps each run to a few
 * seconds; the assertions are the bars. No assertion on timing.
 */
const small = { trafficScale: 0.25, budgetFraction: 0.5, winDelayMs: 2_000 };

for (const strategy of ['EVEN', 'FRONT_LOADED', 'AHEAD', 'ASAP', 'CUSTOM'] as const) {
  t.test(`${strategy} delivers at least 99.5% of a half-traffic budget without overspending, and the audit holds`, async (t) => {
    const r = await simulate({ ...small, strategy, seed: 11 });
    t.ok(r.deliveryRatio >= 0.995, `delivery ${r.deliveryRatio}`);
    t.ok(r.overspendRatio <= 0.001, `overspend ${r.overspendRatio}`);
    t.ok(r.spentMicros <= r.budgetMicros, 'no late notices in this run, so no overspend at all');
    t.ok(r.detail.auditedSteps > 100_000, `${r.detail.auditedSteps} audited steps`);
    if (strategy === 'ASAP' || strategy === 'AHEAD') {
      t.ok(r.earlyExhaustionFraction > 1 / 24, `${strategy} finishes early, as it is meant to (${r.earlyExhaustionFraction})`);
    } else {
      t.ok(r.earlyExhaustionFraction <= 1 / 24, `no exhaustion before the last hour (${r.earlyExhaustionFraction})`);
    }
  });
}
