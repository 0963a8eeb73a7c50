import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import t from 'tap';
import { LeaseClient } from '../../src/store/leases.js';
import { campaignKeys, openRedisCluster, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { batch, delta, ev } from '../helpers/counter-contract.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { uniqueName } from '../helpers/services.js';

/**
 * A campaign whose slot is half migrated (CLUSTER SETSLOT IMPORTING / MIGRATING, some of its keys
 * moved with MIGRATE): the reads and the lease calls of the store still answer, from both nodes.
 * A regression test: RedisCounterStore.load sent its reads as one pipeline; the migrating node
 * answered ASK for the moved day counter and values for the rest, and ioredis, seeing a read-only
 * pipeline, re-sent all of it to the importing node, which has no reservations key yet: the
 * campaign loaded with its settled spend but none of its live reservations (money reserved for
 * bids in flight, forgotten by the cap) whenever it was loaded while its slot moved.
 */
t.setTimeout(120_000);
process.env.TEST_REDIS_CLUSTER_PORTS ??= '17600-17699';
const day = '2026-03-10';

t.test('a campaign whose slot is split between two masters loads and leases', async (t) => {
  const cluster = await startRedisCluster(3);
  const direct = cluster.nodes.map((n) => new Redis({ host: n.host, port: n.port, maxRetriesPerRequest: 1 }));
  const client = openRedisCluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })), 'test');
  t.teardown(async () => {
    client.disconnect();
    for (const d of direct) d.disconnect();
    await cluster.destroy();
  });
  t.ok(await whenReady(client, 10_000), 'cluster client ready');
  const prefix = uniqueName('pacer-split');
  const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test' });
  const leases = new LeaseClient(client, prefix, 3 * 86_400);
  const id = 'split-1';
  const far = Date.now() + 600_000;
  await store.apply(batch(Date.now(), delta(id, day, {
    events: [ev('s1', 5_000), ev('s2', 2_000)],
    reservationsAdded: [{ requestId: 'q1', amountMicros: 300, expiresAtMs: far }],
  })));
  const lease = { campaignId: id, day, holder: 'h1:0', budgetMicros: 100_000, budgetVersion: 1, usedTotalMicros: 0, reservedMicros: 0, reservedUntilMs: 0 };
  t.equal((await leases.grant({ ...lease, wantMicros: 10_000, ttlMs: 3_000 })).grantedMicros, 10_000, 'a lease before the move');

  const keys = campaignKeys(prefix, id);
  const slot = calculateSlot(keys.days);
  const from = await cluster.ownerOf(slot);
  const to = (from + 1) % 3;
  const src = direct[from]!;
  const dst = cluster.nodes[to]!;
  await direct[to]!.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', cluster.nodes[from]!.id);
  await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', dst.id);
  // The day counter and the lease keys move; the reservations and the day hash stay behind.
  const tag = `${prefix}:{${id}}:`;
  await src.call('MIGRATE', dst.host, dst.port, '', 0, 5_000, 'KEYS', keys.day(day), `${tag}lb:${day}`, `${tag}l:${day}`);

  const snap = await store.load(id, day, '2026-03-01');
  t.equal(snap.settledMicros, 7_000, 'the settled counter is read from the importing node');
  t.same(snap.reservations.map((r) => [r.requestId, r.amountMicros]), [['q1', 300]], 'the reservations from the migrating one');
  const renewed = await leases.grant({ ...lease, wantMicros: 20_000, ttlMs: 3_000 });
  t.equal(renewed.grantedMicros, 20_000, 'a renewal follows ASK to the lease keys');
  t.equal(renewed.settledMicros, 7_000, 'and reads the settled counter there');
  t.same(await leases.missingReservations(id, ['q1', 'gone']), ['gone'], 'a reservation lookup follows the key it asks for');

  // The rest moves and the slot is assigned: everything answers from the new owner.
  const rest = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, 1_000)) as string[];
  if (rest.length > 0) await src.call('MIGRATE', dst.host, dst.port, '', 0, 5_000, 'KEYS', ...rest);
  for (const i of [to, from, 3 - to - from]) await direct[i]!.call('CLUSTER', 'SETSLOT', slot, 'NODE', dst.id);
  t.equal((await store.load(id, day, null)).settledMicros, 7_000, 'after the move (MOVED followed)');
  t.same(await store.apply(batch(Date.now(), delta(id, day, { events: [ev('s1', 5_000), ev('s3', 1_000)] }))), [[false, true]], 'a resent event is still a duplicate there');
  t.equal((await store.load(id, day, null)).settledMicros, 8_000, 'and counted once');
});
