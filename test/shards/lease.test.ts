import t from 'tap';
import { Lease } from '../../shards/lease.js';
import { limits } from '../../shards/limits.js';

/** The shard's side of a budget lease (shards/lease.ts): the cap, expiry, rebasing and the share. */
const day = '2026-04-01';

t.test('a lease covers bids up to its amount, counting reserved money and spend beyond its base', async (t) => {
  const l = new Lease(day, 0);
  t.notOk(l.covers(0, day, 0, 1), 'no grant yet: nothing is covered');
  l.sending(0, 10_000);
  l.granted(0, 5, 0, 10_000, 3_000, 0);
  t.ok(l.covers(10, day, 9_000, 1_000), 'reserved 9,000 + bid 1,000 fits 10,000');
  t.notOk(l.covers(10, day, 9_001, 1_000), 'one micro more does not');
  l.spend(day, 4_000);
  t.notOk(l.covers(10, day, 6_000, 1_000), 'spend beyond the base counts too');
  t.notOk(l.covers(3_000, day, 0, 1), 'at its expiry on the shard clock it covers nothing');
});

t.test('a grant on its way caps the lease at what was asked, rebased on the reported spend', async (t) => {
  const l = new Lease(day, 0);
  l.sending(0, 10_000);
  l.granted(0, 1, 0, 10_000, 3_000, 0);
  l.spend(day, 3_000);
  l.ack(day, 3_000);
  l.sending(3_000, 5_000);
  t.equal(l.amountMicros, 5_000, 'min(what is left, 7,000, and the 5,000 asked)');
  t.equal(l.committed(0), 0, 'the reported spend is the new base');
});

t.test("a holder's share of the spend is 1 alone and follows the others' spend", async (t) => {
  const l = new Lease(day, 0);
  l.sending(0, 1_000);
  l.granted(0, 0, 0, 1_000, 3_000, 0);
  l.spend(day, 1_000);
  l.ack(day, 1_000);
  l.ackHere(day, 1_000);
  l.sending(1_000, 1_000);
  l.granted(1_000, 1_000, 1_000, 1_000, 3_000, 1_000);
  t.equal(l.share, 1, 'no other holder spent: the whole plan is this one');
  l.spend(day, 1_000);
  l.ack(day, 1_000);
  l.ackHere(day, 1_000);
  l.sending(2_000, 1_000);
  // The settled counter grew by 1,000 of ours and 8,000 of others'.
  l.granted(2_000, 2_000, 2_000, 1_000, 3_000, 10_000);
  t.equal(l.othersMicros, 8_000, "others' spend since the load");
  t.ok(l.share > 0.15 && l.share < 0.3, `share ${l.share.toFixed(3)} near 2,000 ÷ 10,000`);
  t.ok(l.share >= limits.leaseShareMin);
});

t.test("a win notice for another instance's reservation counts once in settled + others, at either end", async (t) => {
  // Instance B applied a 700 notice for A's reservation (unmatched at B: in B's settled, not its lease).
  const b = new Lease(day, 0);
  b.ackHere(day, 700);
  b.sending(0, 1_000);
  // The settled counter: 700 (that notice) + 2,000 of A's own.
  b.granted(0, 0, 0, 1_000, 3_000, 2_700);
  t.equal(b.othersMicros, 2_000, "B's others exclude the notice B's own settled already holds");
  // Instance A found that reservation settled elsewhere: in its lease's usage, not in its settled.
  const a = new Lease(day, 0);
  a.spend(day, 2_000);
  a.ack(day, 2_000);
  a.ackHere(day, 2_000);
  a.spend(day, 700);
  a.ack(day, 700);
  a.sending(2_700, 1_000);
  a.granted(0, 0, 2_700, 1_000, 3_000, 2_700);
  t.equal(a.othersMicros, 700, "A's others include the notice that settled at B (A's settled does not hold it)");
});

t.test('a rollover starts the new day with an empty lease', async (t) => {
  const l = new Lease(day, 500);
  l.sending(0, 1_000);
  l.granted(0, 0, 0, 1_000, 3_000, 500);
  l.spend(day, 100);
  t.notOk(l.covers(1, '2026-04-02', 0, 1), 'the new day has no grant yet');
  t.same([l.day, l.spentMicros, l.amountMicros, l.loadedSettledMicros], ['2026-04-02', 0, 0, 0]);
});
