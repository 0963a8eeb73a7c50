import t from 'tap';
import { MemoryLeaseStore } from '../../src/sim/lease-store.js';
import { type GrantRequest, type LeaseAnswer, LeaseClient } from '../../src/store/leases.js';
import { MemoryStore } from '../../src/store/memory.js';
import { openRedis, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { batch, delta, ev } from '../helpers/counter-contract.js';
import { dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * The simulator's in-memory lease script (src/sim/lease-store.ts) against the real script
 * (src/store/leases.ts) on the machine's Redis: one sequence of grants, renewals with reported
 * usage, returns with reservations held, spend settled through each side's counter store, budget
 * versions and expiries, and every answer compared field by field (times excepted: Redis' clock
 * is its own; the memory twin runs on Date.now here, and expiries are waited for on both).
 */
const day = '2026-04-02';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const money = (a: LeaseAnswer) => ({ granted: a.grantedMicros, settled: a.settledMicros, others: a.leasedByOthersMicros, budget: a.budgetMicros });

t.test('the memory lease store answers every call as the Lua script does', async (t) => {
  const prefix = uniqueName('pacer-lease-twin');
  const redis = openRedis(redisUrl, 'test');
  await whenReady(redis, 5_000);
  t.teardown(async () => {
    await dropRedisPrefix(redisUrl, prefix);
    redis.disconnect();
  });
  const real = new LeaseClient(redis, prefix, 3 * 86_400);
  const redisStore = new RedisCounterStore(redis, { prefix, counterTtlSeconds: 3 * 86_400, label: 'twin' });
  const memory = new MemoryStore();
  const twin = new MemoryLeaseStore(Date.now, { settledOf: (c, d) => memory.settledOf(c, d), reservationsOf: (c) => memory.reservationsOf(c) });
  const c = 'twin-1';
  let n = 0;
  const spend = async (amount: number, requestId = ''): Promise<void> => {
    const b = batch(Date.now(), delta(c, day, { events: [ev(`tw-${++n}`, amount, requestId)] }));
    t.same(await redisStore.apply(b), await memory.apply(b), 'the spend applies on both');
  };
  const req = (holder: string, part: Partial<GrantRequest> = {}): GrantRequest => ({
    campaignId: c, day, holder, budgetMicros: 1_000_000, budgetVersion: 1, usedTotalMicros: 0,
    reservedMicros: 0, reservedUntilMs: 0, wantMicros: 100_000, ttlMs: 60_000, ...part,
  });
  let step = 0;
  const both = async (what: string, call: (s: LeaseClient | MemoryLeaseStore) => Promise<LeaseAnswer>): Promise<LeaseAnswer> => {
    const a = await call(real);
    const b = await call(twin);
    t.same(money(b), money(a), `${++step}. ${what}: ${JSON.stringify(money(a))}`);
    return a;
  };

  await both('a takes 600,000', (s) => s.grant(req('a', { wantMicros: 600_000 })));
  await both('b wants 600,000, gets the rest', (s) => s.grant(req('b', { wantMicros: 600_000 })));
  await both('c gets nothing', (s) => s.grant(req('c', { wantMicros: 1 })));
  await spend(250_000);
  await both('unreported spend counts twice', (s) => s.grant(req('c', { wantMicros: 1 })));
  await both('a reports 250,000', (s) => s.grant(req('a', { wantMicros: 600_000, usedTotalMicros: 250_000 })));
  await both('a retries the same report', (s) => s.grant(req('a', { wantMicros: 600_000, usedTotalMicros: 250_000 })));
  await both('an older budget version does not widen the day', (s) => s.grant(req('b', { wantMicros: 900_000, budgetMicros: 5_000_000, budgetVersion: 0 })));
  await both('a higher version lowers the budget; b keeps what it promised', (s) => s.grant(req('b', { wantMicros: 900_000, budgetMicros: 500_000, budgetVersion: 2, reservedMicros: 300_000, reservedUntilMs: Date.now() + 60_000 })));
  await both('b returns, holding its reservations', (s) => s.giveBack(req('b', { budgetVersion: 2, budgetMicros: 500_000, reservedMicros: 100_000, reservedUntilMs: Date.now() + 60_000 })));
  await both('a sees b hold 100,000', (s) => s.grant(req('a', { wantMicros: 900_000, usedTotalMicros: 250_000, budgetVersion: 2, budgetMicros: 500_000 })));
  await both('a returns with nothing reserved', (s) => s.giveBack(req('a', { budgetVersion: 2, budgetMicros: 500_000, usedTotalMicros: 250_000 })));
  // Short leases, then both sides wait past their expiry.
  await both('d takes a short lease', (s) => s.grant(req('d', { wantMicros: 50_000, ttlMs: 150, budgetVersion: 2, budgetMicros: 500_000 })));
  await both('e takes a short lease holding reservations longer', (s) => s.grant(req('e', { wantMicros: 40_000, ttlMs: 150, budgetVersion: 2, budgetMicros: 500_000, reservedMicros: 10_000, reservedUntilMs: Date.now() + 30_000 })));
  await sleep(400);
  await both('after expiry: d is gone, e holds its reserved part', (s) => s.grant(req('f', { wantMicros: 1_000_000, budgetVersion: 2, budgetMicros: 500_000 })));
  await both('e comes back after its expiry and reports spend', (s) => s.grant(req('e', { wantMicros: 20_000, usedTotalMicros: 5_000, budgetVersion: 2, budgetMicros: 500_000 })));
  const sr = await real.snapshot(c, day);
  const sm = await twin.snapshot(c, day);
  t.same({ b: sm.budgetMicros, s: sm.settledMicros, l: sm.leasedMicros }, { b: sr.budgetMicros, s: sr.settledMicros, l: sr.leasedMicros }, 'snapshots agree');
  t.same(sm.leases.map((l) => [l.holder, l.liveMicros]).sort(), sr.leases.map((l) => [l.holder, l.liveMicros]).sort(), 'the same live leases');
  // Reservations: both stores know them the same, and the settling spend removes them on both.
  const add = batch(Date.now(), delta(c, day, { reservationsAdded: [{ requestId: 'rq1', amountMicros: 1_000, expiresAtMs: Date.now() + 60_000 }, { requestId: 'rq2', amountMicros: 1_000, expiresAtMs: Date.now() + 60_000 }] }));
  await redisStore.apply(add);
  await memory.apply(add);
  await spend(900, 'rq1');
  t.same(await twin.missingReservations(c, ['rq1', 'rq2', 'rq3']), await real.missingReservations(c, ['rq1', 'rq2', 'rq3']), 'the same reservations are missing');
});
