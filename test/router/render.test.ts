import fc from 'fast-check';
import t from 'tap';
import { decideBytes, decideJson } from '../../src/router/render.js';
import { reasonNames } from '../../shards/reasons.js';
import { DecideFlag, ResultReader, ResultWriter } from '../../shards/wire.js';

/** One decide result as the router reads it off the wire. */
interface Decision {
  reason: number;
  flags: number;
  throttle: number;
  pacingIndex: number;
  would: number;
}

const decision = fc.record<Decision>({
  reason: fc.integer({ min: 0, max: reasonNames.length - 1 }),
  flags: fc.integer({ min: 0, max: DecideFlag.ALLOW | DecideFlag.RESERVED | DecideFlag.SHADOW }),
  // Few distinct values, so that the cache is hit, missed and overwritten within one run.
  throttle: fc.oneof(fc.constantFrom(0, 1, 0.5, 0.12345, 1e-5), fc.float({ min: 0, max: 1, noNaN: true })),
  pacingIndex: fc.oneof(fc.constantFrom(0, 1, 2.5, 0.99995), fc.float({ min: 0, max: 50, noNaN: true })),
  would: fc.integer({ min: 0, max: reasonNames.length - 1 }),
});

function read(ds: Decision[]): ResultReader {
  const w = new ResultWriter();
  ds.forEach((d, slot) => w.decide(slot, d.reason, d.flags, d.throttle, d.pacingIndex, d.would));
  return new ResultReader().reset(w.take());
}

t.test('decideBytes is the bytes of decideJson, whether it comes from the cache or not', async (t) => {
  fc.assert(
    fc.property(fc.array(decision, { minLength: 1, maxLength: 200 }), (ds) => {
      // Every decision twice: the second reading is a cache hit unless a later one took its entry.
      for (const pass of [read(ds), read(ds)]) {
        while (pass.next()) {
          const json = decideJson(pass);
          const bytes = decideBytes(pass);
          if (Buffer.compare(Buffer.from(json, 'latin1'), Buffer.from(bytes)) !== 0) return false;
          JSON.parse(Buffer.from(bytes).toString('utf8'));
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('300 random batches agreed');
});

t.test('a repeated answer is the same bytes object (no string built again)', async (t) => {
  const r = read([
    { reason: 0, flags: DecideFlag.ALLOW | DecideFlag.RESERVED, throttle: 0.75, pacingIndex: 1.2, would: 0 },
    { reason: 0, flags: DecideFlag.ALLOW | DecideFlag.RESERVED, throttle: 0.75, pacingIndex: 1.2, would: 0 },
    { reason: 1, flags: 0, throttle: 0.75, pacingIndex: 1.2, would: 0 },
  ]);
  r.next();
  const first = decideBytes(r);
  r.next();
  t.equal(decideBytes(r), first);
  r.next();
  const denied = decideBytes(r);
  t.not(denied, first);
  t.equal(Buffer.from(denied).toString('latin1'), '{"allow":false,"reason":"PACED","reserved":false,"throttle":0.75,"pacingIndex":1.2}');
});
