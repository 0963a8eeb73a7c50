import t from 'tap';
import { simulateFleet } from '../../src/sim/fleet.js';

// Four simulated days of 400,000 decisions each, one to three shards: minutes on a loaded machine.
t.setTimeout(900_000);

/**
 * Issue 11's judgement on a simulated day: three instances receiving 70/20/10 of a campaign's
 * traffic, each a production shard with its production lease keeper against the in-memory lease
 * script, deliver at least 99.5% of the budget with zero overspend, and their slot pacing error is
 * within 1.5× of the single pacer's on the same traffic (same seed, same arrivals). The fleet
 * auditor checks committed money against the budget at every step (a failure throws).
 */
for (const seed of [1, 2]) {
  t.test(`seed ${seed}: three instances 70/20/10 pace the day as one does`, async (t) => {
    const one = await simulateFleet({ seed, instances: 1, leases: false });
    const fleet = await simulateFleet({ seed, instances: 3, split: [70, 20, 10] });
    t.equal(fleet.decisions, one.decisions, 'the same traffic reached both');
    t.ok(fleet.deliveryRatio >= 0.995, `fleet delivery ${fleet.deliveryRatio.toFixed(4)} ≥ 0.995`);
    t.equal(fleet.overspendRatio, 0, 'fleet overspend 0');
    t.ok(fleet.maxCommittedRatio <= 1 + fleet.lateMicros / fleet.budgetMicros, `committed at most the budget (+ late spend): ${fleet.maxCommittedRatio}`);
    t.ok(
      fleet.slotNrmse <= 1.5 * one.slotNrmse,
      `fleet slot nRMSE ${fleet.slotNrmse.toFixed(4)} ≤ 1.5 × one instance's ${one.slotNrmse.toFixed(4)}`,
    );
    t.ok(fleet.perInstance.every((p) => p.leaseGrants > 0), 'every instance held leases');
    t.ok(fleet.perInstance[2]!.spentMicros > 0, 'the 10% instance spent too');
  });
}

t.test('win notices at another instance settle against the reserving lease', async (t) => {
  const fleet = await simulateFleet({ seed: 3, instances: 3, split: [70, 20, 10], elsewhereShare: 0.2, days: 1, trafficScale: 0.25 });
  t.equal(fleet.overspendRatio, 0, 'overspend 0');
  t.ok(fleet.perInstance.some((p) => p.settledElsewhere > 0), 'reservations were found settled elsewhere');
  t.ok(fleet.deliveryRatio > 0.9, `delivery ${fleet.deliveryRatio.toFixed(4)}`);
});
