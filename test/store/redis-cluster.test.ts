import calculateSlot from 'cluster-key-slot';
import t from 'tap';
import type { FlushBatch } from '../../shards/ports.js';
import { campaignKeys, openRedisCluster, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { batch, contract, delta, ev } from '../helpers/counter-contract.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { createDatabase, uniqueName } from '../helpers/services.js';
import { createCampaign, post, startPacer, status } from '../helpers/server.js';

/**
 * The counter store on a real three-master Redis Cluster (test/helpers/redis-cluster.ts): the same
 * contract as on one Redis, a flush whose campaigns live on every node, a pacer restarted on the
 * cluster, and a resharding while spends flow, which must lose and double nothing.
 */
// Two pacer starts and two reshardings: minutes on a loaded 2-core machine, past tap's default.
t.setTimeout(900_000);
const cluster = await startRedisCluster(3);
t.teardown(() => cluster.destroy());
const nodes = cluster.nodes.map(({ host, port }) => ({ host, port }));
const day = '2025-03-10';

async function openStore(prefix: string) {
  const client = openRedisCluster(nodes, 'test');
  t.ok(await whenReady(client, 10_000), 'the cluster client is ready');
  return new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test' });
}

contract('redis-cluster', async () => {
  const store = await openStore(uniqueName('pacer-test'));
  return { store, done: () => store.close() };
});

t.test('one flush whose campaigns live on all three nodes is applied once, exactly', async (t) => {
  const prefix = uniqueName('pacer-spread');
  const store = await openStore(prefix);
  t.teardown(() => store.close());
  const ids = Array.from({ length: 60 }, (_, i) => `spread-${i}`);
  const owners = new Set<number>();
  for (const id of ids) owners.add(await cluster.ownerOf(calculateSlot(campaignKeys(prefix, id).days)));
  t.equal(owners.size, 3, 'the campaigns hash to slots on every node');
  const b = batch(Date.now(), ...ids.map((id, i) => delta(id, day, { events: [ev(`e-${i}`, 1_000 + i), ev(`f-${i}`, 7)] })));
  const expected = ids.map(() => [true, true]);
  t.same(await store.apply(b), expected);
  t.same(await store.apply(b), expected, 'a resent batch gets the same answer');
  const again = batch(Date.now(), ...ids.map((id, i) => delta(id, day, { events: [ev(`e-${i}`, 1_000 + i)] })));
  t.same(await store.apply(again), ids.map(() => [false]), 'the same events under another batch are duplicates');
  for (const [i, id] of ids.entries()) t.equal((await store.load(id, day, null)).settledMicros, 1_000 + i + 7);
});

t.test('a new client reads what an earlier one wrote (restart recovery)', async (t) => {
  const prefix = uniqueName('pacer-reopen');
  let store = await openStore(prefix);
  const far = Date.now() + 600_000;
  await store.apply(batch(Date.now(), delta('reopen', day, {
    events: [ev('r1', 5_000)],
    reservationsAdded: [{ requestId: 'q1', amountMicros: 300, expiresAtMs: far }],
  })));
  await store.close();
  store = await openStore(prefix);
  t.teardown(() => store.close());
  const s = await store.load('reopen', day, null);
  t.equal(s.settledMicros, 5_000);
  t.same(s.reservations, [{ requestId: 'q1', amountMicros: 300, expiresAtMs: far }]);
});

t.test('a pacer on PACER_REDIS_CLUSTER keeps acknowledged spend over a restart', async (t) => {
  const db = await createDatabase('cluster_restart');
  t.teardown(() => db.drop());
  const env = {
    PACER_STORE: 'redis', PACER_REDIS_CLUSTER: cluster.seeds, PACER_DATABASE_URL: db.url,
    PACER_REDIS_KEY_PREFIX: uniqueName('pacer-restart'),
  };
  let p = await startPacer({ env, keepData: true });
  const dataDir = p.dataDir;
  for (const id of ['cr-a', 'cr-b', 'cr-c']) {
    await createCampaign(p, { id, dailyBudgetMicros: 10_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  }
  let sent = 0;
  for (let i = 0; i < 30; i++) {
    const r = await post(p.url, '/v1/spend', { campaignId: ['cr-a', 'cr-b', 'cr-c'][i % 3], eventId: `w-${i}`, amountMicros: 10_000 + i });
    t.equal(r.body.status, 'applied');
    sent += 10_000 + i;
  }
  t.equal(await p.stop(), 0);
  p = await startPacer({ env, dataDir });
  t.teardown(() => p.stop());
  let total = 0;
  for (const id of ['cr-a', 'cr-b', 'cr-c']) total += (await status(p, id)).settledMicros as number;
  t.equal(total, sent, 'every acknowledged micro is back after the restart');
  const dup = await post(p.url, '/v1/spend', { campaignId: 'cr-a', eventId: 'w-0', amountMicros: 10_000 });
  t.equal(dup.body.status, 'duplicate', 'an event from before the restart is still a duplicate');
});

t.test('a resharding under load loses and doubles nothing', async (t) => {
  const prefix = uniqueName('pacer-reshard');
  const store = await openStore(prefix);
  t.teardown(() => store.close());
  const ids = Array.from({ length: 300 }, (_, i) => `rs-${i}`);
  const slotOf = (id: string): number => calculateSlot(campaignKeys(prefix, id).days);
  const before = new Map<string, number>();
  for (const id of ids) before.set(id, await cluster.ownerOf(slotOf(id)));

  const expected = new Map<string, number>();
  const sentBatches: FlushBatch[] = [];
  let phase: 'before' | 'during' | 'after' = 'before';
  const appliedIn = { before: 0, during: 0, after: 0 };
  let retries = 0;
  const errors = new Map<string, number>();
  let stop = false;
  let n = 0;
  // One writer, as a shard's flusher is: each batch is retried under its own ID until it is
  // applied (the flusher does the same; the spool would take it past a longer outage).
  const load = (async () => {
    while (!stop) {
      const b = batch(Date.now(), ...Array.from({ length: 20 }, () => {
        const id = ids[n % ids.length]!;
        const amount = 1 + (n % 977);
        expected.set(id, (expected.get(id) ?? 0) + amount);
        return delta(id, day, { events: [ev(`x-${n++}`, amount)] });
      }));
      for (;;) {
        try {
          const out = await store.apply(b);
          if (!out.every((d) => d.every(Boolean))) throw new Error('a fresh event was answered duplicate');
          break;
        } catch (err) {
          if ((err as Error).message.includes('duplicate')) throw err;
          retries++;
          const kind = (err as Error).message.slice(0, 40);
          errors.set(kind, (errors.get(kind) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      sentBatches.push(b);
      appliedIn[phase]++;
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  phase = 'during';
  await cluster.reshard(0, 1, 1_000);
  await cluster.reshard(2, 0, 500);
  phase = 'after';
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await load;

  let moved = 0;
  for (const id of ids) if ((await cluster.ownerOf(slotOf(id))) !== before.get(id)) moved++;
  t.ok(moved >= 10, `${moved} of ${ids.length} campaigns changed node`);
  t.ok(appliedIn.during > 0, `${appliedIn.during} batches were applied while slots moved (${retries} attempts retried)`);
  t.ok(appliedIn.after > 0, 'and spends flowed after it');
  t.comment(`script calls re-sent after a redirection: ${store.resentCalls}; batch retries by cause: ${JSON.stringify([...errors])}`);
  for (const id of ids) {
    const s = await store.load(id, day, null);
    if (s.settledMicros !== (expected.get(id) ?? 0)) t.fail(`${id}: stored ${s.settledMicros}, sent ${expected.get(id)}`);
  }
  const total = [...expected.values()].reduce((a, b) => a + b, 0);
  let stored = 0;
  for (const id of ids) stored += (await store.load(id, day, null)).settledMicros;
  t.equal(stored, total, `every micro sent is stored once (${sentBatches.length} batches, ${n} events)`);
  // Every event again, under new batch IDs: all duplicates, nothing counted twice.
  for (const b of sentBatches.slice(0, 50)) {
    const replay = { ...b, batchId: `${b.batchId}:again` };
    const out = await store.apply(replay);
    if (!out.every((d) => d.every((f) => !f))) t.fail(`a replay of ${b.batchId} was applied again`);
  }
  let after = 0;
  for (const id of ids) after += (await store.load(id, day, null)).settledMicros;
  t.equal(after, total, 'replayed events after the resharding are duplicates');
});

t.test('a pacer on the cluster keeps exact totals through a resharding under HTTP spend load', async (t) => {
  const db = await createDatabase('cluster_reshard_pacer');
  t.teardown(() => db.drop());
  const prefix = uniqueName('pacer-reshard-http');
  const env = { PACER_STORE: 'redis', PACER_REDIS_CLUSTER: cluster.seeds, PACER_DATABASE_URL: db.url, PACER_REDIS_KEY_PREFIX: prefix };
  const p = await startPacer({ env });
  t.teardown(() => p.stop());
  const ids = Array.from({ length: 40 }, (_, i) => `hr-${i}`);
  for (const id of ids) await createCampaign(p, { id, dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  const expected = new Map<string, number>();
  let stop = false;
  let sent = 0;
  let duplicatesAnswered = 0;
  let retried = 0;
  // Each event is sent until it is acknowledged (applied, or duplicate when an earlier attempt
  // was applied): the client's side of exactly-once. Every tenth is also resent on purpose.
  const sendOnce = async (campaignId: string, eventId: string, amountMicros: number): Promise<string> => {
    for (;;) {
      const r = await post(p.url, '/v1/spend', { campaignId, eventId, amountMicros }).catch(() => null);
      if (r !== null && r.status === 200) return r.body.status as string;
      retried++;
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const id = ids[(w * 7 + i) % ids.length]!;
      const amount = 100 + ((w * 31 + i) % 9_000);
      const eventId = `w${w}-${i}`;
      expected.set(id, (expected.get(id) ?? 0) + amount);
      sent++;
      await sendOnce(id, eventId, amount);
      if (i % 10 === 0 && (await sendOnce(id, eventId, amount)) === 'duplicate') duplicatesAnswered++;
    }
  };
  const workers = Array.from({ length: 6 }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, 500));
  const before = sent;
  await cluster.reshard(1, 2, 1_000);
  t.ok(sent - before > 0, `${sent - before} events were sent while 1,000 slots moved`);
  await new Promise((r) => setTimeout(r, 500));
  stop = true;
  await Promise.all(workers);
  t.ok(duplicatesAnswered > 0, `${duplicatesAnswered} deliberate resends answered duplicate (${retried} attempts retried)`);
  const total = [...expected.values()].reduce((a, b) => a + b, 0);
  let inPacer = 0;
  for (const id of ids) inPacer += (await status(p, id)).settledMicros as number;
  t.equal(inPacer, total, `the pacer's totals are exact (${sent} events)`);
  // What reached the cluster: spend acknowledged from the spool during the move is replayed.
  const store = await openStore(prefix);
  t.teardown(() => store.close());
  const today = (await status(p, ids[0]!)).day as string;
  let inRedis = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    inRedis = 0;
    for (const id of ids) inRedis += (await store.load(id, today, null)).settledMicros;
    if (inRedis === total) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(inRedis, total, 'and so are the totals in the cluster');
});
