import t from 'tap';
import { simulate } from '../../src/sim/run.js';

/**
 * Small runs of the real simulator (the production shard under a simulated clock) inside the
 * suite. A quarter of the built-in volume (100,000 opportunities a day) keeps each run to a few
 * seconds; the assertions are the bars. No assertion on timing.
 */
const small = { trafficScale: 0.25, budgetFraction: 0.5, winDelayMs: 2_000 };

t.test('ADAPTIVE learns the traffic shape: after three days its slot error is small and under half of EVEN’s', async (t) => {
  // 60,000 opportunities a day keeps four days to a few seconds.
  const adaptive = await simulate({ ...small, trafficScale: 0.15, strategy: 'ADAPTIVE', days: 4, seed: 5 });
  const even = await simulate({ ...small, trafficScale: 0.15, strategy: 'EVEN', seed: 5 });
  t.ok(adaptive.slotNrmse <= 0.15, `ADAPTIVE nRMSE ${adaptive.slotNrmse}`);
  t.ok(adaptive.slotNrmse <= even.slotNrmse / 2, `EVEN nRMSE ${even.slotNrmse}`);
  t.ok(adaptive.deliveryRatio >= 0.995, `delivery ${adaptive.deliveryRatio}`);
  t.ok(adaptive.earlyExhaustionFraction <= 1 / 24);
});
