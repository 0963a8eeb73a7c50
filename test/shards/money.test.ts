import t from 'tap';
import type { CampaignSnapshot, CounterStore, ShardPorts } from '../../shards/ports.js';
import { OpStatus, Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { MemoryStore } from '../../src/store/memory.js';
import { config, iso } from '../helpers/campaign.js';

/**
 * The shard's money paths in process, on a simulated clock, where the real server cannot go:
 * exact instants either side of midnight in several zones, a day rollover, and a start before the
 * admin has sent its catalogue.
 */
interface Rig {
  shard: Shard;
  clock: { now: number };
  late: { slot: number; code: number }[];
  /** Runs one op and returns its immediate result (code), or null when it is answered later. */
  decide(campaignId: string, bid: number, requestId: string): number;
  spend(campaignId: string, eventId: string, amount: number, requestId?: string): number | null;
}

function rig(store: CounterStore, startMs: number, awaitCatalogue = false): Rig {
  const clock = { now: startMs };
  const late: Rig['late'] = [];
  const reader = new ResultReader();
  const ports: ShardPorts = {
    clock: { now: () => clock.now },
    random: sfc32(3),
    timers: { after: () => () => {} },
    store,
    sendResults(results) {
      reader.reset(results);
      while (reader.next()) late.push({ slot: reader.slot, code: reader.code });
    },
    emit: () => {},
    batchIdPrefix: `money:${startMs}`,
  };
  const shard = new Shard(ports, { reservationTtlMs: 60_000, flushIntervalMs: 0, awaitCatalogue });
  let slot = 0;
  const one = (w: OpWriter): number | null => {
    const r = new ResultReader().reset(shard.handleOps(w.take()));
    return r.next() ? r.code : null;
  };
  return {
    shard,
    clock,
    late,
    decide(campaignId, bid, requestId) {
      const w = new OpWriter();
      w.decide(slot++, campaignId, bid, requestId);
      return one(w)!;
    },
    spend(campaignId, eventId, amount, requestId = '') {
      const w = new OpWriter();
      w.spend(slot++, campaignId, amount, eventId, requestId);
      return one(w);
    },
  };
}

const open = { strategy: 'ASAP', breaker: { enabled: false } };

t.test('before the admin has sent its catalogue an unknown campaign is NOT_READY, after it UNKNOWN_CAMPAIGN', async (t) => {
  const r = rig(new MemoryStore(), iso('2026-03-10T12:00:00Z'), true);
  t.equal(r.decide('nobody', 10, 'q'), Reason.NOT_READY);
  t.equal(r.spend('nobody', 'e', 10), OpStatus.NOT_READY);
  r.shard.catalogueLoaded();
  t.equal(r.decide('nobody', 10, 'q'), Reason.UNKNOWN_CAMPAIGN);
  t.equal(r.spend('nobody', 'e', 10), OpStatus.UNKNOWN_CAMPAIGN);
});

t.test('a campaign whose counters failed to load is NOT_READY until a load succeeds', async (t) => {
  const inner = new MemoryStore();
  let down = true;
  const store: CounterStore = {
    kind: 'flaky',
    apply: (b) => inner.apply(b),
    load: (c, d, f): Promise<CampaignSnapshot> => (down ? Promise.reject(new Error('store down')) : inner.load(c, d, f)),
    close: async () => {},
  };
  const r = rig(store, iso('2026-03-10T12:00:00Z'));
  await t.rejects(r.shard.upsert(config({ id: 'c1', ...open })));
  t.equal(r.spend('c1', 'w1', 10), OpStatus.NOT_READY, 'the win notice hears "retry", not "unknown"');
  t.equal(r.decide('c1', 10, 'q1'), Reason.NOT_READY);
  down = false;
  await r.shard.upsert(config({ id: 'c1', ...open }));
  t.equal(r.spend('c1', 'w1', 10), null, 'applied once loaded (answered after its flush)');
});

for (const [zone, atIso, newDay] of [
  ['Pacific/Kiritimati', '2026-03-10T20:00:00Z', '2026-03-11'],
  ['Pacific/Pago_Pago', '2026-03-10T05:00:00Z', '2026-03-09'],
] as const) {
  t.test(`a change from UTC to ${zone} at ${atIso} carries today's spend into ${newDay}, also over a restart`, async (t) => {
    const store = new MemoryStore();
    const at = iso(atIso);
    // What the store already holds under the new zone's date (a UTC day of that date, or nothing).
    await store.apply({ batchId: 'seed:1', atMs: at, campaigns: [{ campaignId: 'c1', day: newDay, events: [{ eventId: 'old', amountMicros: 300, requestId: '' }], reservationsAdded: [], reservationsRemoved: [] }] });
    const r = rig(store, at);
    await r.shard.upsert(config({ id: 'c1', dailyBudgetMicros: 1_000, ...open }, 1));
    t.equal(r.spend('c1', 'today', 600), null);
    await r.shard.drain();
    await r.shard.upsert(config({ id: 'c1', dailyBudgetMicros: 1_000, timezone: zone, ...open }, 2));
    const c = r.shard.campaigns.get('c1')!;
    t.equal(c.day.bounds.key, newDay);
    t.equal(c.settled, 900, 'stored 300 + carried 600');
    t.equal(r.decide('c1', 200, 'q-big'), Reason.BUDGET_EXHAUSTED, 'the new day cannot reach budget + today');
    await r.shard.drain();
    t.equal(store.settledOf('c1', newDay), 900, 'the carry is in the store under the new key');

    const restarted = rig(store, at + 1_000);
    await restarted.shard.upsert(config({ id: 'c1', dailyBudgetMicros: 1_000, timezone: zone, ...open }, 2));
    t.equal(restarted.shard.campaigns.get('c1')!.settled, 900, 'a restart loads it');
  });
}

t.test('a lifetime flight without startAt keeps the days before a restart', async (t) => {
  const store = new MemoryStore();
  const day1 = iso('2026-03-10T12:00:00Z');
  const life = config({ id: 'c1', dailyBudgetMicros: 1_000, lifetimeBudgetMicros: 1_000, ...open });
  const r = rig(store, day1);
  await r.shard.upsert(life);
  t.equal(r.spend('c1', 'd1', 600), null);
  await r.shard.drain();
  const restarted = rig(store, day1 + 86_400_000);
  await restarted.shard.upsert(life);
  const c = restarted.shard.campaigns.get('c1')!;
  t.equal(c.lifetimeBefore, 600, "the first day's spend is remembered");
  t.equal(c.budget, 400, 'the second day may spend what the flight has left, not 1,000 again');
});

t.test('a spend past dayTotalMicrosMax is refused with AMOUNT_REFUSED and changes nothing', async (t) => {
  const r = rig(new MemoryStore(), iso('2026-03-10T12:00:00Z'));
  await r.shard.upsert(config({ id: 'c1', ...open }));
  t.equal(r.spend('c1', 'a', 600_000_000_000_000), null);
  t.equal(r.spend('c1', 'b', 600_000_000_000_000), OpStatus.AMOUNT_REFUSED);
  t.equal(r.spend('c1', 'c', 2 ** 53), OpStatus.AMOUNT_REFUSED, 'not a safe integer');
  t.equal(r.shard.campaigns.get('c1')!.settled, 600_000_000_000_000);
  t.equal(r.shard.totals.spendRefused, 2);
});
