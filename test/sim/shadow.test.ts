import t from 'tap';
import { simulate } from '../../src/sim/run.js';

/**
 * The simulator runs a shadow strategy (`--shadow S`) and SHADOW mode (`--mode SHADOW`) through the
 * production shard: a shadow never changes the real campaign's day, SHADOW mode never denies, and
 * the shadow's would-be figures are measured as the real ones are.
 */
const base = { strategy: 'EVEN' as const, trafficScale: 0.1, seed: 4 };

t.test('a shadow strategy changes nothing in the real day and reports its own would-be day', async (t) => {
  const plain = await simulate(base);
  const ab = await simulate({ ...base, shadow: 'ASAP' });
  t.equal(plain.shadow, null);
  t.same(
    [ab.spentMicros, ab.allowed, ab.wins, ab.slotNrmse, ab.detail.deniedByReason],
    [plain.spentMicros, plain.allowed, plain.wins, plain.slotNrmse, plain.detail.deniedByReason],
    'the real campaign decided and spent exactly as without a shadow',
  );
  const s = ab.shadow!;
  t.equal(s.strategy, 'ASAP');
  t.equal(s.decisions, ab.decisions, 'the shadow decided every decision of the reported day');
  t.ok(s.spentMicros <= ab.budgetMicros, `its would-be spend ${s.spentMicros} stays within the budget ${ab.budgetMicros}`);
  t.ok(s.spentMicros >= 0.95 * ab.budgetMicros, 'ASAP spends its budget');
  t.ok(s.exhaustedAtMs !== null && s.exhaustedAtMs < ab.detail.dayEndMs - 3_600_000, 'and exhausts it well before the end of the day');
  t.ok(s.slotNrmse > ab.slotNrmse, `ASAP's slot error ${s.slotNrmse} is far above EVEN's ${ab.slotNrmse}`);
  t.ok(s.estimatedMicros > 0, 'bids only ASAP would have made are estimated');
  t.equal(s.spentByMinute.reduce((a, b) => a + b, 0), s.spentMicros);
});

t.test('SHADOW mode: nothing denied, the would-be day paced by the campaign strategy', async (t) => {
  const r = await simulate({ ...base, mode: 'SHADOW' });
  t.equal(r.mode, 'SHADOW');
  t.equal(r.allowed, r.decisions, 'every decision allowed');
  t.same(r.detail.deniedByReason, {});
  t.ok(r.spentMicros > 1.5 * r.budgetMicros, `the unpaced real side spent ${r.spentMicros} of ${r.budgetMicros}`);
  const s = r.shadow!;
  t.equal(s.strategy, 'EVEN');
  t.equal(s.estimatedMicros, 0, 'every bid carried a requestId and was reserved: nothing estimated');
  t.ok(s.allowed < r.decisions / 1.5, `the shadow would have allowed ${s.allowed} of ${r.decisions}`);
  t.ok(s.deliveryRatio > 0.9 && s.deliveryRatio <= 1, `would-be delivery ${s.deliveryRatio}`);
  t.ok(s.slotNrmse < 0.5, `would-be slot error ${s.slotNrmse}`);
});
