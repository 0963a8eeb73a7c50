import t from 'tap';
import { OpKind, OpReader, OpWriter, ResultReader, ResultWriter } from '../../shards/wire.js';

t.test('an op batch decodes to exactly the ops that were written', async (t) => {
  const w = new OpWriter();
  w.decide(7, 'camp-1', 1500, 'req:1');
  w.decide(8, 'c', -1, '');
  w.spend(9, 'camp-1', 9_007_199_254_740_991, 'evt/2=', 'req:1');
  w.release(4_000_000_000, 'x'.repeat(64), 'r'.repeat(128));
  const r = new OpReader().reset(w.take());
  const seen: unknown[] = [];
  while (r.next()) seen.push([r.kind, r.slot, r.campaignId, r.micros, r.eventId, r.requestId]);
  t.same(seen, [
    [OpKind.DECIDE, 7, 'camp-1', 1500, '', 'req:1'],
    [OpKind.DECIDE, 8, 'c', -1, '', ''],
    [OpKind.SPEND, 9, 'camp-1', 9_007_199_254_740_991, 'evt/2=', 'req:1'],
    [OpKind.RELEASE, 4_000_000_000, 'x'.repeat(64), 0, '', 'r'.repeat(128)],
  ]);
});

t.test('the writer grows past its initial buffer and resets after take', async (t) => {
  const w = new OpWriter();
  for (let i = 0; i < 2000; i++) w.decide(i, `campaign-${i}`, i, `request-${i}`);
  t.equal(w.count, 2000);
  const r = new OpReader().reset(w.take());
  let n = 0;
  while (r.next()) {
    t.equal(r.campaignId, `campaign-${n}`);
    n++;
  }
  t.equal(n, 2000);
  t.equal(w.count, 0);
  t.equal(new OpReader().reset(w.take()).remaining, 0);
});

t.test('results round-trip with their flags and floats', async (t) => {
  const w = new ResultWriter();
  w.decide(1, 3, 1, 0.25, 1.5);
  w.spend(2, 1, 5);
  w.release(3, 2);
  const r = new ResultReader().reset(w.take());
  t.ok(r.next());
  t.same([r.kind, r.slot, r.code, r.flags, r.throttle, r.pacingIndex], [OpKind.DECIDE, 1, 3, 1, 0.25, 1.5]);
  t.ok(r.next());
  t.same([r.kind, r.slot, r.code, r.flags], [OpKind.SPEND, 2, 1, 5]);
  t.ok(r.next());
  t.same([r.kind, r.slot, r.code], [OpKind.RELEASE, 3, 2]);
  t.notOk(r.next());
});

t.test('a SHADOW-mode decide result carries the reason it would have answered', async (t) => {
  const w = new ResultWriter();
  w.decide(1, 0, 1 | 4, 0.5, 1, 3);
  w.decide(2, 1, 0, 0.5, 1);
  const r = new ResultReader().reset(w.take());
  t.ok(r.next());
  t.same([r.code, r.flags, r.wouldReason], [0, 5, 3]);
  t.ok(r.next());
  t.same([r.code, r.flags, r.wouldReason], [1, 0, 0], 'zero when the campaign is not in SHADOW mode');
});
