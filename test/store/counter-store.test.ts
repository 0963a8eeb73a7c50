import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MemoryStore } from '../../src/store/memory.js';
import { migrate } from '../../src/store/migrate.js';
import { campaignKeys, openRedis, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { EmbeddedSql, PostgresSql, type Sql } from '../../src/store/sql.js';
import { SqlCounterStore } from '../../src/store/sql-counters.js';
import { batch, contract, delta, ev, hourMs } from '../helpers/counter-contract.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * One contract, four stores (test/helpers/counter-contract.ts): the memory store is the reference
 * semantics; Redis, the embedded database and PostgreSQL must answer every batch exactly as it does.
 */
contract('memory', async () => ({ store: new MemoryStore(), done: async () => {} }));

contract('redis', async () => {
  const prefix = uniqueName('pacer-test');
  const client = openRedis(redisUrl, 'test');
  await whenReady(client, 5_000);
  const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test' });
  return {
    store,
    done: async () => {
      await store.close();
      await dropRedisPrefix(redisUrl, prefix);
    },
  };
});

async function sqlContract(name: string, open: () => Promise<{ sql: Sql; done: () => Promise<void> }>): Promise<void> {
  contract(name, async () => {
    const { sql, done } = await open();
    await migrate(sql);
    return { store: new SqlCounterStore(sql), done: async () => { await sql.close(); await done(); } };
  });
}

void sqlContract('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-pglite-'));
  return { sql: await EmbeddedSql.open(dir), done: async () => rmSync(dir, { recursive: true, force: true }) };
});

void sqlContract('postgres', async () => {
  const db = await createDatabase('counters');
  return { sql: new PostgresSql(db.url), done: () => db.drop() };
});

t.test('redis: one hash tag per campaign, TTLs on counters and dedupe buckets', async (t) => {
  const prefix = uniqueName('pacer-test');
  const client = openRedis(redisUrl, 'test');
  await whenReady(client, 5_000);
  t.teardown(async () => {
    client.disconnect();
    await dropRedisPrefix(redisUrl, prefix);
  });
  const ttl = 2 * 86_400;
  const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: ttl, label: 'test' });
  const now = Date.now();
  await store.apply(batch(now, delta('cx', '2025-03-10', {
    events: [ev('e', 5)],
    reservationsAdded: [{ requestId: 'q', amountMicros: 3, expiresAtMs: now + 60_000 }],
  })));
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 100);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  t.ok(keys.length >= 4, `keys written: ${keys.join(', ')}`);
  t.ok(keys.every((k) => k.startsWith(`${prefix}:{cx}:`)), 'every key carries the campaign hash tag');
  const k = campaignKeys(prefix, 'cx');
  const dayTtl = await client.ttl(k.day('2025-03-10'));
  t.ok(dayTtl > ttl - 10 && dayTtl <= ttl, `daily counter expires after counterTtlSeconds (${dayTtl} s)`);
  const eventTtl = await client.pttl(k.event('e'));
  t.ok(eventTtl >= 48 * hourMs, `event IDs are kept at least 48 hours (${Math.round(eventTtl / hourMs)} h)`);
  t.ok((await client.ttl(k.reservations)) > 0, 'the reservation hash expires too');
  t.equal(await client.hget(k.reservations, 'q'), `3:${now + 60_000}`, 'a reservation keeps its expiry in its value');
});

t.test('redis: a spend that settles another instance\'s reservation before it is stored keeps it from ever being stored', async (t) => {
  // Budget leases: instance A reserves R, the win notice goes to instance B, and B's flush reaches
  // Redis before A's. Without a memory of R being settled, A's late write would count R as
  // reserved beside the spend that settled it (settled + reserved above the truth until R expires).
  const prefix = uniqueName('pacer-test');
  const client = openRedis(redisUrl, 'test');
  await whenReady(client, 5_000);
  t.teardown(async () => {
    client.disconnect();
    await dropRedisPrefix(redisUrl, prefix);
  });
  const ttlMs = 30_000;
  const a = new RedisCounterStore(client, { prefix, counterTtlSeconds: 86_400, label: 'a', reservationTtlMs: ttlMs });
  const b = new RedisCounterStore(client, { prefix, counterTtlSeconds: 86_400, label: 'b', reservationTtlMs: ttlMs });
  const day = '2025-03-10';
  const now = Date.now();
  const k = campaignKeys(prefix, 'cg');
  const r = (id: string) => ({ requestId: id, amountMicros: 1_000, expiresAtMs: now + 60_000 });

  // B first: R is not in the store yet.
  await b.apply(batch(now, delta('cg', day, { events: [{ ...ev('e1', 700, 'R'), settlesElsewhere: true }] })));
  const gonePttl = await client.pttl(`${k.reservations}:gone:R`);
  t.ok(gonePttl > 0 && gonePttl <= ttlMs, `B remembers R as settled for the reservation TTL (${gonePttl} ms)`);
  await a.apply(batch(now, delta('cg', day, { reservationsAdded: [r('R'), r('S')] })));
  t.equal(await client.hget(k.reservations, 'R'), null, 'A\'s late write of R is not stored');
  t.equal(await client.hget(k.reservations, 'S'), `1000:${now + 60_000}`, 'A\'s other reservation is');
  t.equal(await client.exists(`${k.reservations}:gone:R`), 0, 'the memory of R is spent once used');
  t.equal(Number(await client.get(k.day(day))), 700, 'the spend counts once');

  // The usual order: A's reservation is stored first, B's spend settles it and leaves nothing behind.
  await b.apply(batch(now, delta('cg', day, { events: [{ ...ev('e2', 900, 'S'), settlesElsewhere: true }] })));
  t.equal(await client.hget(k.reservations, 'S'), null, 'B\'s spend settles A\'s stored reservation');
  t.equal(await client.exists(`${k.reservations}:gone:S`), 0, 'and remembers nothing');

  // A duplicate of B's event changes nothing at all (no second memory either).
  await b.apply(batch(now, delta('cg', day, { events: [{ ...ev('e1', 700, 'R'), settlesElsewhere: true }] })));
  t.equal(await client.exists(`${k.reservations}:gone:R`), 0, 'a duplicate leaves no memory of R');
  t.equal(Number(await client.get(k.day(day))), 1_600, 'and no spend');

  // A spend of this instance's own reservation (not flagged) leaves no memory: its own later write
  // cannot come, the flusher keeps a campaign's batches in order.
  await a.apply(batch(now, delta('cg', day, { events: [ev('e3', 100, 'T')] })));
  t.equal(await client.exists(`${k.reservations}:gone:T`), 0, 'an own reservation leaves no memory');
});
