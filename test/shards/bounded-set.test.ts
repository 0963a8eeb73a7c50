import t from 'tap';
import { BoundedSet } from '../../shards/bounded-set.js';

/**
 * shards/bounded-set.ts: the shard's remembered event IDs, the spool's deduplication keys and the
 * shared day shapes forget their oldest key first, hold at most `max`, and never forget a key
 * that was added after the one that falls out.
 */
t.test('holds at most max keys and forgets the oldest first', async (t) => {
  const s = new BoundedSet<string>(3);
  t.equal(s.add('a'), undefined);
  t.equal(s.add('b'), undefined);
  t.equal(s.add('c'), undefined);
  t.equal(s.size, 3);
  t.equal(s.add('d'), 'a', 'the oldest key falls out');
  t.notOk(s.has('a'));
  t.ok(s.has('b') && s.has('c') && s.has('d'));
  t.equal(s.add('e'), 'b');
  t.equal(s.add('f'), 'c');
  t.equal(s.add('g'), 'd', 'the ring wraps and keeps the order');
  t.equal(s.size, 3);
  t.same(['e', 'f', 'g'].map((k) => s.has(k)), [true, true, true]);
});

t.test('adding a key it holds changes nothing (first in, first out)', async (t) => {
  const s = new BoundedSet<string>(2);
  s.add('a');
  s.add('b');
  t.equal(s.add('a'), undefined);
  t.equal(s.size, 2);
  t.equal(s.add('c'), 'a', 'a keeps its place: still the oldest');
});

t.test('a deleted key is not reported as forgotten, and one added again is not dropped by its old place', async (t) => {
  const s = new BoundedSet<string>(3);
  s.add('a');
  s.add('b');
  s.add('c');
  t.ok(s.delete('a'));
  t.notOk(s.delete('a'), 'deleting twice finds nothing');
  t.equal(s.size, 2);
  t.equal(s.add('d'), undefined, "a's place is reused; nothing held is forgotten");
  t.equal(s.size, 3);
  t.ok(s.has('b') && s.has('c') && s.has('d'));
  // b deleted and added again: its old place is the oldest; overwriting it must keep b.
  s.delete('b');
  t.equal(s.add('b'), undefined);
  t.ok(s.has('b'), 'b, added again over its own place, is kept');
  t.equal(s.size, 3);
  t.equal(s.add('e'), 'c');
  t.ok(s.has('b') && s.has('d') && s.has('e'));
});

t.test('max 0 holds nothing; clear empties; a bad max is refused', async (t) => {
  const z = new BoundedSet<number>(0);
  t.equal(z.add(1), undefined);
  t.equal(z.size, 0);
  t.notOk(z.has(1));
  const s = new BoundedSet<number>(2);
  s.add(1);
  s.add(2);
  s.clear();
  t.equal(s.size, 0);
  t.equal(s.add(3), undefined);
  t.equal(s.add(4), undefined);
  t.equal(s.add(5), 3, 'after clear the ring starts again');
  t.throws(() => new BoundedSet(-1), RangeError);
  t.throws(() => new BoundedSet(1.5), RangeError);
});

t.test('agrees with a plain model over a long random run', async (t) => {
  let x = 12345;
  const rnd = (n: number): number => ((x = (x * 1103515245 + 12345) >>> 0) % n);
  const max = 50;
  const s = new BoundedSet<number>(max);
  // Model: keys in order of their place in the ring (what add/delete do above, without the ring).
  let order: number[] = [];
  const held = new Set<number>();
  for (let i = 0; i < 20_000; i++) {
    const k = rnd(200);
    if (rnd(10) === 0) {
      if (s.delete(k) !== held.delete(k)) {
        t.fail(`step ${i}: delete(${k}) disagrees with the model`);
        return;
      }
      continue;
    }
    if (held.has(k)) {
      if (s.add(k) !== undefined) {
        t.fail(`step ${i}: add(${k}) of a held key forgot one`);
        return;
      }
      continue;
    }
    held.add(k);
    order.push(k);
    let expected: number | undefined;
    if (order.length > max) {
      const old = order.shift()!;
      if (old !== k && held.delete(old)) expected = old;
    }
    if (s.add(k) !== expected) {
      t.fail(`step ${i}: add(${k}) disagrees with the model`);
      return;
    }
    if (s.size !== held.size) {
      t.fail(`step ${i}: size ${s.size}, model ${held.size}`);
      return;
    }
  }
  order = order.filter((k) => held.has(k));
  t.ok(order.every((k) => s.has(k)), '20,000 random adds and deletes agree with the model; every key it holds is held');
  t.ok(s.size <= max);
});
