import t from 'tap';
import type { CampaignDelta, CounterStore, FlushBatch } from '../../shards/ports.js';

/**
 * One contract, every store: the memory store is the reference semantics; Redis (one node or a
 * cluster), the embedded database and PostgreSQL must answer every batch exactly as it does.
 * test/store/counter-store.test.ts and test/store/counter-store.cluster.test.ts run it.
 */
export const hourMs = 3_600_000;
/** Batches are stamped with the wall clock; dedupe buckets expire relative to it. */
const t0 = Date.now();
let seq = 0;

export function delta(campaignId: string, day: string, part: Partial<CampaignDelta> = {}): CampaignDelta {
  return { campaignId, day, events: [], reservationsAdded: [], reservationsRemoved: [], ...part };
}

export function batch(atMs: number, ...campaigns: CampaignDelta[]): FlushBatch {
  return { batchId: `test:${++seq}`, atMs, campaigns };
}

export function ev(eventId: string, amountMicros: number, requestId = '') {
  return { eventId, amountMicros, requestId };
}

export function contract(name: string, open: () => Promise<{ store: CounterStore; done: () => Promise<void> }>): void {
  t.test(`${name}: the counter store contract`, async (t) => {
    const { store, done } = await open();
    t.teardown(done);
    const c = `c-${seq}-${name}`;

    await t.test('a batch is applied once however often it is sent', async (t) => {
      const b = batch(t0, delta(c, '2025-03-10', { events: [ev('e1', 100), ev('e2', 250)] }));
      t.same(await store.apply(b), [[true, true]]);
      t.same(await store.apply(b), [[true, true]], 'a resent batch gets the same answer');
      t.same(await store.apply(structuredClone(b)), [[true, true]]);
      t.equal((await store.load(c, '2025-03-10', null)).settledMicros, 350, 'and counts once');
    });

    await t.test('a resent batch of several campaigns, one with no events, gets its answer in order', async (t) => {
      const other = `${c}-other`;
      await store.apply(batch(t0, delta(other, '2025-03-10', { events: [ev('dup', 5)] })));
      const b = batch(
        t0,
        delta(other, '2025-03-10', { events: [ev('dup', 5), ev('new', 7)] }),
        delta(`${c}-quiet`, '2025-03-10', { reservationsAdded: [{ requestId: 'r-quiet', amountMicros: 10, expiresAtMs: t0 + hourMs }] }),
        delta(`${c}-third`, '2025-03-10', { events: [ev('e3', 1)] }),
      );
      const want = [[false, true], [], [true]];
      t.same(await store.apply(b), want);
      t.same(await store.apply(b), want, 'the same answer when resent');
      t.equal((await store.load(other, '2025-03-10', null)).settledMicros, 12, 'and counted once');
    });

    await t.test('an event applied by another batch is a duplicate, within 48 hours', async (t) => {
      const again = batch(t0 + 47 * hourMs, delta(c, '2025-03-12', { events: [ev('e1', 100), ev('e3', 5)] }));
      t.same(await store.apply(again), [[false, true]]);
      t.equal((await store.load(c, '2025-03-10', null)).settledMicros, 350);
      t.equal((await store.load(c, '2025-03-12', null)).settledMicros, 5);
    });

    await t.test('the same event twice in one batch counts once', async (t) => {
      const b = batch(t0, delta(c, '2025-03-10', { events: [ev('r1', 7), ev('r1', 7)] }));
      t.same(await store.apply(b), [[true, false]]);
      t.equal((await store.load(c, '2025-03-10', null)).settledMicros, 357);
    });

    await t.test('reservations are stored with their expiry and leave when settled or released', async (t) => {
      const cr = `${c}-res`;
      const far = Date.now() + 600_000;
      await store.apply(batch(t0, delta(cr, '2025-03-10', {
        reservationsAdded: [
          { requestId: 'q1', amountMicros: 10, expiresAtMs: far },
          { requestId: 'q2', amountMicros: 20, expiresAtMs: far },
          { requestId: 'q3', amountMicros: 30, expiresAtMs: far },
          { requestId: 'old', amountMicros: 40, expiresAtMs: Date.now() - 1 },
        ],
      })));
      // The shard ignores expired reservations on load; the durable stores drop them (below).
      const live = (s: { reservations: { requestId: string; expiresAtMs: number }[] }) =>
        s.reservations.filter((r) => r.expiresAtMs > Date.now()).map((r) => r.requestId).sort();
      let s = await store.load(cr, '2025-03-10', null);
      t.same(live(s), ['q1', 'q2', 'q3']);
      if (store.kind !== 'memory') t.notOk(s.reservations.some((r) => r.requestId === 'old'), 'an expired reservation is dropped on load');
      t.equal(s.reservations.find((r) => r.requestId === 'q2')?.amountMicros, 20);
      t.equal(s.reservations.find((r) => r.requestId === 'q2')?.expiresAtMs, far);
      const settle = batch(t0, delta(cr, '2025-03-10', { events: [ev('w1', 9, 'q1')], reservationsRemoved: ['q2'] }));
      t.same(await store.apply(settle), [[true]]);
      s = await store.load(cr, '2025-03-10', null);
      t.same(live(s), ['q3']);
      t.equal(s.settledMicros, 9);
    });

    await t.test('a rollover inside a batch counts each day apart; lifetime sums the earlier days', async (t) => {
      const cl = `${c}-life`;
      const b = batch(
        t0,
        delta(cl, '2025-03-08', { events: [ev('a', 1_000)] }),
        delta(cl, '2025-03-09', { events: [ev('b', 2_000), ev('c', 3_000)] }),
        delta(cl, '2025-03-10', { events: [ev('d', 4_000)] }),
      );
      t.same(await store.apply(b), [[true], [true, true], [true]]);
      const s = await store.load(cl, '2025-03-10', '2025-03-09');
      t.equal(s.settledMicros, 4_000);
      t.equal(s.lifetimeSettledMicros, 5_000, 'days before the flight start and today are left out');
      t.equal((await store.load(cl, '2025-03-10', null)).lifetimeSettledMicros, 0, 'no flight, no lifetime');
    });

    await t.test('large amounts stay exact (integer micros up to 2^53)', async (t) => {
      const big = 2 ** 51 + 12_345;
      await store.apply(batch(t0, delta(`${c}-big`, '2025-03-10', { events: [ev('x1', big), ev('x2', big + 1)] })));
      t.equal((await store.load(`${c}-big`, '2025-03-10', null)).settledMicros, 2 * big + 1);
    });

    await t.test('a campaign never seen loads as zero', async (t) => {
      t.same(await store.load(`${c}-none`, '2025-03-10', '2025-03-01'), { settledMicros: 0, lifetimeSettledMicros: 0, reservations: [] });
    });
  });
}

