import t from 'tap';
import { Redis } from 'ioredis';
import type { CampaignSnapshot, CounterStore, LoadRequest, ShardPorts } from '../../shards/ports.js';
import { Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { dayBounds } from '../../shards/time/zone.js';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { RedisCounterStore } from '../../src/store/redis.js';
import { config } from '../helpers/campaign.js';
import { dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Startup loads a shard's campaigns in batches (Shard.loadMany, one Redis pipeline per batch): each
 * campaign must come up with exactly the counters and reservations that loading it alone gives,
 * and a campaign whose load failed must stay NOT_READY until a later batch loads it.
 */
function rig(store: CounterStore, now: number) {
  const ports: ShardPorts = {
    clock: { now: () => now },
    random: sfc32(5),
    timers: { after: () => () => {} },
    store,
    sendResults: () => {},
    emit: () => {},
    batchIdPrefix: `load-many:${now}`,
  };
  const shard = new Shard(ports, { reservationTtlMs: 60_000, flushIntervalMs: 0, awaitCatalogue: true });
  let slot = 0;
  const decide = (campaignId: string, bid: number): number => {
    const w = new OpWriter();
    w.decide(slot++, campaignId, bid, `q${slot}`);
    const r = new ResultReader().reset(shard.handleOps(w.take()));
    r.next();
    return r.code;
  };
  return { shard, decide };
}

t.test('a batch load on Redis gives every campaign what loading it alone gives', async (t) => {
  const prefix = `${uniqueName('loadmany')}:`;
  const redis = new Redis(redisUrl);
  t.teardown(async () => {
    redis.disconnect();
    await dropRedisPrefix(redisUrl, prefix);
  });
  const now = Date.now();
  const store = new RedisCounterStore(redis, { prefix, counterTtlSeconds: 3_600, label: 'test' });
  const day = dayBounds('UTC', now).key;
  // Counters written the way the flush writes them: settled spend, a live and an expired reservation.
  const configs = Array.from({ length: 30 }, (_, i) => config({ id: `lm-${i}`, dailyBudgetMicros: 1_000_000, strategy: 'ASAP', breaker: { enabled: false } }));
  const outcome = await store.apply({
    batchId: `${prefix}b1`,
    atMs: now,
    campaigns: configs.filter((_, i) => i % 3 !== 2).map((c, i) => ({
      campaignId: c.id,
      day,
      events: [{ eventId: `e-${i}`, amountMicros: 1_000 * (i + 1), requestId: '' }],
      reservationsAdded: [{ requestId: `r-${i}`, amountMicros: 500, expiresAtMs: now + 60_000 }, { requestId: `old-${i}`, amountMicros: 7, expiresAtMs: now - 1 }],
      reservationsRemoved: [],
    })),
  });
  t.ok(outcome.every((c) => c.every((applied) => applied)), 'the counters were written');
  const requests: LoadRequest[] = configs.map((c) => ({ campaignId: c.id, day, flightStartDay: null }));
  const many = await store.loadMany(requests);
  const one = await Promise.all(requests.map((r) => store.load(r.campaignId, r.day, r.flightStartDay)));
  const norm = (s: CampaignSnapshot | Error) => s instanceof Error ? s.message : { ...s, reservations: [...s.reservations].sort((a, b) => a.requestId.localeCompare(b.requestId)) };
  t.same(many.map(norm), one.map(norm), 'loadMany and load agree campaign by campaign');
  t.ok(one.some((s) => !(s instanceof Error) && s.settledMicros > 0 && s.reservations.length === 1), 'the data has spend and a live reservation (the expired one is dropped)');

  const { shard, decide } = rig(store, now);
  t.same(await shard.loadMany(configs), [], 'no campaign failed');
  for (const [i, c] of configs.entries()) {
    const s = shard.status(c.id)!;
    const stored = one[i] as CampaignSnapshot;
    t.equal(s.settledMicros, stored.settledMicros, `${c.id}: settled as stored`);
    t.equal(s.reservedMicros, stored.reservations.reduce((a, r) => a + r.amountMicros, 0), `${c.id}: reserved as stored`);
  }
  t.equal(decide('lm-0', 10), Reason.OK, 'a loaded campaign decides');
});

t.test('a campaign whose batch load failed stays NOT_READY, and a later batch loads it', async (t) => {
  let failing = true;
  const store: CounterStore = {
    kind: 'flaky',
    apply: async (b) => b.campaigns.map((c) => c.events.map(() => true)),
    load: async () => ({ settledMicros: 0, lifetimeSettledMicros: 0, reservations: [] }),
    loadMany: async (requests) => {
      if (failing) throw new Error('store down');
      return requests.map((r) => (r.campaignId === 'bad' ? new Error('one bad key') : { settledMicros: 40, lifetimeSettledMicros: 0, reservations: [] }));
    },
    close: async () => {},
  };
  const { shard, decide } = rig(store, Date.parse('2026-06-01T12:00:00Z'));
  const configs = ['a', 'b', 'bad'].map((id) => config({ id, strategy: 'ASAP', breaker: { enabled: false } }));
  t.same((await shard.loadMany(configs)).sort(), ['a', 'b', 'bad'], 'every campaign of a failed batch is named');
  t.equal(decide('a', 10), Reason.NOT_READY, 'not served without its counters');
  failing = false;
  t.same(await shard.loadMany(configs), ['bad'], 'only the campaign whose own load failed is named');
  t.equal(shard.status('a')!.settledMicros, 40, 'loaded with its stored spend');
  t.equal(decide('a', 10), Reason.OK);
  t.equal(decide('bad', 10), Reason.NOT_READY);
  // An already-loaded campaign in a later batch is reconfigured, not loaded again.
  t.same(await shard.loadMany([config({ id: 'a', strategy: 'ASAP', dailyBudgetMicros: 5_000_000, breaker: { enabled: false } }, 2)]), []);
  t.equal(shard.status('a')!.settledMicros, 40, 'its money is unchanged');
  t.equal(shard.status('a')!.budgetMicros, 5_000_000, 'its new configuration applies');
});
