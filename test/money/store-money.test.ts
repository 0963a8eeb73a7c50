import t from 'tap';
import type { CampaignDelta, CounterStore, FlushBatch } from '../../shards/ports.js';
import { MemoryStore } from '../../src/store/memory.js';
import { migrate } from '../../src/store/migrate.js';
import { campaignKeys, openRedis, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { PostgresSql } from '../../src/store/sql.js';
import { SqlCounterStore } from '../../src/store/sql-counters.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Money rules every counter store must keep (memory, Redis, PostgreSQL): a duplicate event changes
 * nothing, not even the reservation it names; a shard's batch sent twice at once (a slow attempt
 * and its retry) counts once and answers "applied" both times; a stored value outside the money
 * bounds loads without an exception, for the shard to flag.
 */
const t0 = Date.now();
let seq = 0;
const day = '2026-03-10';

function delta(campaignId: string, part: Partial<CampaignDelta> = {}): CampaignDelta {
  return { campaignId, day, events: [], reservationsAdded: [], reservationsRemoved: [], ...part };
}

function batch(...campaigns: CampaignDelta[]): FlushBatch {
  return { batchId: `money-test:0:${++seq}`, atMs: t0, campaigns };
}

function rules(name: string, open: () => Promise<{ store: CounterStore; done: () => Promise<void>; corrupt?: (c: string) => Promise<void> }>): void {
  t.test(`${name}: money rules of a counter store`, async (t) => {
    const { store, done, corrupt } = await open();
    t.teardown(done);
    const c = `money-${name}-${seq}`;

    await t.test('a duplicate event leaves the reservation it names live', async (t) => {
      const far = Date.now() + 600_000;
      await store.apply(batch(delta(c, { reservationsAdded: [
        { requestId: 'R1', amountMicros: 100, expiresAtMs: far },
        { requestId: 'R2', amountMicros: 100, expiresAtMs: far },
      ] })));
      t.same(await store.apply(batch(delta(c, { events: [{ eventId: 'E1', amountMicros: 100, requestId: 'R1' }] }))), [[true]]);
      t.same(await store.apply(batch(delta(c, { events: [{ eventId: 'E1', amountMicros: 100, requestId: 'R2' }] }))), [[false]], 'the resend is a duplicate');
      const s = await store.load(c, day, null);
      t.same(s.reservations.map((r) => r.requestId).sort(), ['R2'], 'R1 settled by E1, R2 still live');
      t.equal(s.settledMicros, 100);
    });

    await t.test('a batch and its retry sent at once both answer applied and count once', async (t) => {
      const cr = `${c}-race`;
      // Open several pool connections first, so that the two attempts really run at once.
      await Promise.all(Array.from({ length: 4 }, () => store.load(cr, day, '2026-01-01')));
      const n = 3_000;
      const b = batch(delta(cr, { events: Array.from({ length: n }, (_, i) => ({ eventId: `r${i}`, amountMicros: 7, requestId: '' })) }));
      const [first, retry] = await Promise.all([store.apply(b), store.apply(b)]);
      t.same(first, [new Array(n).fill(true)]);
      t.same(retry, first, 'the retry gets the same answer');
      t.equal((await store.load(cr, day, null)).settledMicros, 7 * n);
    });

    if (corrupt !== undefined) {
      await t.test('a stored counter beyond 2^53 loads without an exception', async (t) => {
        const cc = `${c}-bad`;
        await corrupt(cc);
        const s = await store.load(cc, day, '2026-03-01');
        t.notOk(Number.isSafeInteger(s.settledMicros), `loaded ${s.settledMicros}, for the shard to flag`);
      });
    }
  });
}

rules('memory', async () => ({ store: new MemoryStore(), done: async () => {} }));

rules('redis', async () => {
  const prefix = uniqueName('pacer-money');
  const client = openRedis(redisUrl, 'test');
  await whenReady(client, 5_000);
  const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test' });
  return {
    store,
    corrupt: async (c) => {
      const k = campaignKeys(prefix, c);
      await client.set(k.day(day), '18014398509481984');
      await client.hset(k.days, '2026-03-09', '9007199254740993');
    },
    done: async () => {
      await store.close();
      await dropRedisPrefix(redisUrl, prefix);
    },
  };
});

rules('postgres', async () => {
  const db = await createDatabase('money');
  const sql = new PostgresSql(db.url);
  await migrate(sql);
  return {
    store: new SqlCounterStore(sql),
    corrupt: async (c) => {
      await sql.query(`INSERT INTO counter_days (campaign_id, day, settled_micros, updated_at) VALUES ($1, $2::date, $3::bigint, now())`, [c, day, '18014398509481984']);
    },
    done: async () => {
      await sql.close();
      await db.drop();
    },
  };
});
