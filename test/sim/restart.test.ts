import t from 'tap';
import { defaultFaults } from '../../src/sim/faults.js';
import { simulate } from '../../src/sim/run.js';

/**
 * `--restart-at`: a restart every day at noon drops the shard's memory; the new shard loads the
 * counters from the store and the profile fitted from the minute history, so ADAPTIVE's last day
 * paces about as well as without restarts. At this test's volume (a quarter of the built-in
 * traffic) one day's slot error varies by several percent between random paths, so the bound here
 * is 25%; docs/pacing.md gives the figures of full-volume runs against the 10%.
 */
// Two three-day simulations: longer than the suite's per-file default on a loaded 2-core machine.
t.setTimeout(600_000);
const small = { strategy: 'ADAPTIVE' as const, days: 3, trafficScale: 0.25, budgetFraction: 0.5, winDelayMs: 2_000, seed: 5 };

t.test('a daily restart at noon costs ADAPTIVE little: the profile comes back from the history', async (t) => {
  let fittedSeen = 0;
  const restarted = await simulate({
    ...small,
    restartAt: ['12:00'],
    onStep: (c) => {
      if (c.profile.fittedAtMs !== null) fittedSeen++;
    },
  });
  const steady = await simulate(small);
  t.equal(restarted.restarts, 3, 'one restart a day');
  t.ok(fittedSeen > 0, 'the campaigns after a restart plan by a fitted profile');
  t.ok(restarted.slotNrmse <= steady.slotNrmse * 1.25, `nRMSE with restarts ${restarted.slotNrmse}, without ${steady.slotNrmse}`);
  t.ok(restarted.deliveryRatio >= 0.99, `delivery ${restarted.deliveryRatio}`);
  t.equal(restarted.overspendRatio, 0);
});

t.test('restart times must be HH:MM and do not combine with store faults', async (t) => {
  await t.rejects(simulate({ ...small, days: 1, restartAt: ['25:00'] }), /HH:MM/);
  await t.rejects(simulate({ ...small, days: 1, restartAt: ['12:00'], faults: defaultFaults }), /do not combine/);
});
