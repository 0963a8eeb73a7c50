import t from 'tap';
import { leaseCeilingMicros, leaseRenewAtMs, leaseWantMicros } from '../../shards/lease-size.js';
import { limits } from '../../shards/limits.js';
import { type GrantRequest, LeaseClient } from '../../src/store/leases.js';
import { openRedis, openRedisCluster, type RedisClient, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { batch, delta, ev } from '../helpers/counter-contract.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * The budget lease primitive (src/store/leases.ts) on the machine's Redis and on a real
 * three-master Redis Cluster: grants never exceed budget − settled − other leases, many concurrent
 * holders together get exactly the budget, a dead holder's money returns, a returned lease frees
 * its money at once, and a renewal carries the global settled spend written by the flush script.
 */
const day = '2026-04-01';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function request(campaignId: string, holder: string, part: Partial<GrantRequest> = {}): GrantRequest {
  return {
    campaignId, day, holder, budgetMicros: 1_000_000, budgetVersion: 1, usedTotalMicros: 0,
    reservedMicros: 0, reservedUntilMs: 0, wantMicros: 100_000, ttlMs: 5_000, ...part,
  };
}

function suite(name: string, open: (prefix: string) => Promise<{ client: RedisClient; done: () => Promise<void> }>): void {
  t.test(`${name}: budget leases`, async (t) => {
    const prefix = uniqueName('pacer-lease');
    const { client, done } = await open(prefix);
    t.teardown(done);
    const leases = new LeaseClient(client, prefix, 3 * 86_400);
    const store = new RedisCounterStore(client, { prefix, counterTtlSeconds: 3 * 86_400, label: 'test' });
    let n = 0;
    const spend = async (campaignId: string, amount: number): Promise<void> => {
      const out = await store.apply(batch(Date.now(), delta(campaignId, day, { events: [ev(`s-${++n}`, amount)] })));
      if (out[0]?.[0] !== true) throw new Error('spend not applied');
    };

    await t.test('a grant never exceeds budget − settled − the other leases', async (t) => {
      const c = `${name}-split`;
      const a = await leases.grant(request(c, 'a', { wantMicros: 600_000 }));
      t.equal(a.grantedMicros, 600_000);
      const b = await leases.grant(request(c, 'b', { wantMicros: 600_000 }));
      t.equal(b.grantedMicros, 400_000, 'the second holder gets what is left');
      t.equal(b.leasedByOthersMicros, 600_000);
      t.equal((await leases.grant(request(c, 'c', { wantMicros: 1 }))).grantedMicros, 0, 'a third gets nothing');
      await spend(c, 250_000); // settled by holder a, not yet reported
      const c2 = await leases.grant(request(c, 'c', { wantMicros: 1 }));
      t.equal(c2.grantedMicros, 0, 'spend not yet reported counts twice, on the safe side');
      const a2 = await leases.grant(request(c, 'a', { wantMicros: 600_000, usedTotalMicros: 250_000 }));
      t.equal(a2.settledMicros, 250_000);
      t.equal(a2.grantedMicros, 350_000, 'once reported, the spend leaves the lease: 1,000,000 − 250,000 − 400,000');
      const snap = await leases.snapshot(c, day);
      t.equal(snap.settledMicros + snap.leasedMicros, 1_000_000, 'settled + leased is the budget, not more');
      t.same(snap.leases.map((l) => l.holder).sort(), ['a', 'b']);
    });

    await t.test('many concurrent holders never get more than the budget in total, and together spend all of it', async (t) => {
      const c = `${name}-many`;
      const budget = 2_000_000;
      const holders = Array.from({ length: 12 }, (_, i) => `h${i}`);
      let overGrant = 0;
      let maxSettled = 0;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const s = await leases.snapshot(c, day);
          maxSettled = Math.max(maxSettled, s.settledMicros);
          await sleep(2);
        }
      })();
      let spentByHolders = 0;
      await Promise.all(holders.map(async (holder, hi) => {
        let used = 0;
        let idle = 0;
        for (let round = 0; idle < 3 && round < 500; round++) {
          const want = 20_000 + ((hi * 7919 + round * 104_729) % 150_000);
          const g = await leases.grant(request(c, holder, { budgetMicros: budget, wantMicros: want, usedTotalMicros: used }));
          const room = g.budgetMicros - g.settledMicros - g.leasedByOthersMicros;
          if (g.grantedMicros > Math.max(0, room)) overGrant++;
          if (g.grantedMicros === 0) {
            idle++;
            await sleep(5);
            continue;
          }
          idle = 0;
          // Spend the whole lease in a few events, then report it at the next renewal.
          let left = g.grantedMicros;
          while (left > 0) {
            const x = Math.min(left, 1 + ((round * 31 + hi * 17 + left) % 40_000));
            await spend(c, x);
            left -= x;
            used += x;
            spentByHolders += x;
          }
        }
        await leases.giveBack(request(c, holder, { budgetMicros: budget, usedTotalMicros: used }));
      }));
      watching = false;
      await watch;
      const end = await leases.snapshot(c, day);
      t.equal(overGrant, 0, 'no grant was larger than the free budget it was made from');
      t.ok(maxSettled <= budget, `settled spend never passed the budget (max seen ${maxSettled})`);
      t.equal(end.settledMicros, budget, 'the holders spent exactly the budget: nothing overspent, nothing stranded');
      t.equal(spentByHolders, budget, 'every micro spent was covered by a lease');
      t.equal(end.leasedMicros, 0, 'every lease was returned');
    });

    await t.test("a dead holder's lease expires and its money returns", async (t) => {
      const c = `${name}-dead`;
      const a = await leases.grant(request(c, 'dies', { wantMicros: 1_000_000, ttlMs: 1_000 }));
      t.equal(a.grantedMicros, 1_000_000);
      t.equal(a.expiresAtMs - a.nowMs, 1_000, 'the expiry is on Redis\' clock');
      t.equal((await leases.grant(request(c, 'lives', { wantMicros: 1_000_000 }))).grantedMicros, 0, 'nothing is free while it lives');
      await sleep(1_200);
      t.equal((await leases.grant(request(c, 'lives', { wantMicros: 1_000_000 }))).grantedMicros, 1_000_000, 'after its expiry the money is back');
      t.same((await leases.snapshot(c, day)).leases.map((l) => l.holder), ['lives'], 'and the dead lease is gone');
    });

    await t.test("a dead holder's reserved money stays counted until its reservations expire", async (t) => {
      const c = `${name}-dead-reserved`;
      const g = await leases.grant(request(c, 'dies', { wantMicros: 500_000, ttlMs: 300 }));
      // Renewed once with 300,000 reserved for bids that expire 2 s from now, then it dies.
      await leases.grant(request(c, 'dies', { wantMicros: 500_000, ttlMs: 300, reservedMicros: 300_000, reservedUntilMs: g.nowMs + 2_000 }));
      await sleep(600);
      const other = await leases.grant(request(c, 'other', { wantMicros: 1_000_000 }));
      t.equal(other.grantedMicros, 700_000, 'its unreserved 200,000 returned when the lease expired; the reserved 300,000 did not');
      await sleep(1_600);
      const again = await leases.grant(request(c, 'other', { wantMicros: 1_000_000 }));
      t.equal(again.grantedMicros, 1_000_000, 'after its reservations expired, all of it');
    });

    await t.test('a lease given back on shutdown frees its unreserved money at once', async (t) => {
      const c = `${name}-return`;
      const g = await leases.grant(request(c, 'a', { wantMicros: 800_000 }));
      t.equal(g.grantedMicros, 800_000);
      const back = await leases.giveBack(request(c, 'a', { reservedMicros: 100_000, reservedUntilMs: g.nowMs + 60_000 }));
      t.equal(back.grantedMicros, 100_000, 'the reserved part stays held for its bids');
      t.equal((await leases.grant(request(c, 'b', { wantMicros: 1_000_000 }))).grantedMicros, 900_000);
      await leases.giveBack(request(c, 'b'));
      t.equal((await leases.snapshot(c, day)).leasedMicros, 100_000, 'b held nothing reserved: all of it came back');
    });

    await t.test('a renewal returns the global settled spend, from every instance', async (t) => {
      const c = `${name}-global`;
      await leases.grant(request(c, 'a'));
      await leases.grant(request(c, 'b'));
      await spend(c, 12_345);
      await spend(c, 54_321);
      const a = await leases.grant(request(c, 'a', { usedTotalMicros: 12_345 }));
      t.equal(a.settledMicros, 66_666, 'a sees b\'s spend as well as its own');
      t.equal(a.leasedByOthersMicros, 100_000);
    });

    await t.test('usage reported twice (a retried renewal) is subtracted once', async (t) => {
      const c = `${name}-retry`;
      await leases.grant(request(c, 'a', { wantMicros: 500_000 }));
      await spend(c, 100_000);
      const once = await leases.grant(request(c, 'a', { wantMicros: 0, usedTotalMicros: 100_000 }));
      t.equal(once.grantedMicros, 0);
      const s1 = await leases.snapshot(c, day);
      const twice = await leases.grant(request(c, 'a', { wantMicros: 0, usedTotalMicros: 100_000 }));
      t.equal(twice.grantedMicros, 0);
      t.same(await leases.snapshot(c, day).then((s) => [s.settledMicros, s.leasedMicros]), [s1.settledMicros, s1.leasedMicros]);
      const back = await leases.grant(request(c, 'b', { wantMicros: 1_000_000 }));
      t.equal(back.grantedMicros, 900_000, 'the budget less the settled 100,000, once');
    });

    await t.test('a renewal never takes back money promised to bids, even when the budget drops below it', async (t) => {
      const c = `${name}-lowered`;
      await leases.grant(request(c, 'a', { wantMicros: 800_000 }));
      const low = await leases.grant(request(c, 'a', { wantMicros: 800_000, budgetMicros: 300_000, budgetVersion: 2, reservedMicros: 500_000, reservedUntilMs: Date.now() + 60_000 }));
      t.equal(low.budgetMicros, 300_000);
      t.equal(low.grantedMicros, 500_000, 'the promised 500,000 stays; nothing new is granted');
      t.equal((await leases.grant(request(c, 'b', { budgetMicros: 300_000, budgetVersion: 2 }))).grantedMicros, 0);
    });

    await t.test('the budget of the highest configuration version wins', async (t) => {
      const c = `${name}-version`;
      await leases.grant(request(c, 'a', { budgetMicros: 200_000, budgetVersion: 5, wantMicros: 0 }));
      const stale = await leases.grant(request(c, 'b', { budgetMicros: 1_000_000, budgetVersion: 4, wantMicros: 1_000_000 }));
      t.equal(stale.budgetMicros, 200_000, 'an instance that has not heard of the change cannot widen the day');
      t.equal(stale.grantedMicros, 200_000);
      const raised = await leases.grant(request(c, 'b', { budgetMicros: 1_000_000, budgetVersion: 6, wantMicros: 1_000_000 }));
      t.equal(raised.grantedMicros, 1_000_000);
    });

    await t.test('bad requests are refused before they reach Redis', async (t) => {
      for (const part of [
        { holder: '' }, { holder: 'a b' }, { day: '2026-4-1' }, { campaignId: 'x{y}' }, { budgetMicros: -1 },
        { budgetMicros: 1.5 }, { usedTotalMicros: Number.NaN }, { wantMicros: 2 ** 60 }, { ttlMs: 0 }, { budgetVersion: -1 },
      ] as Partial<GrantRequest>[]) {
        await t.rejects(leases.grant(request(`${name}-bad`, 'a', part)), { code: 'PACER_ERR_LEASE_INPUT' }, JSON.stringify(part));
      }
      t.equal((await leases.snapshot(`${name}-bad`, day)).leases.length, 0, 'nothing was written');
    });
  });
}

suite('redis', async (prefix) => {
  const client = openRedis(redisUrl, 'test');
  await whenReady(client, 5_000);
  return { client, done: async () => { client.disconnect(); await dropRedisPrefix(redisUrl, prefix); } };
});

suite('redis-cluster', async () => {
  const cluster = await startRedisCluster(3);
  const client = openRedisCluster(cluster.nodes.map(({ host, port }) => ({ host, port })), 'test');
  await whenReady(client, 10_000);
  return { client, done: async () => { client.disconnect(); await cluster.destroy(); } };
});

t.test('lease sizing: about a second of spend with headroom, between the floor and the ceiling', async (t) => {
  const budget = 100_000_000_000; // 100,000 currency units a day
  t.equal(leaseWantMicros({ recentSpendMicrosPerS: 2_000_000, planMicrosPerS: 1_000_000, bidMaxMicros: 5_000, dailyBudgetMicros: budget }), 3_000_000,
    'the larger of recent and planned rates, times the window and headroom');
  t.equal(leaseWantMicros({ recentSpendMicrosPerS: 0, planMicrosPerS: 0, bidMaxMicros: 0, dailyBudgetMicros: budget }), limits.leaseFloorMicros, 'an idle campaign asks for the floor');
  t.equal(leaseWantMicros({ recentSpendMicrosPerS: 0, planMicrosPerS: 10, bidMaxMicros: 250_000, dailyBudgetMicros: budget }), 250_000, 'never less than one large bid');
  t.equal(leaseWantMicros({ recentSpendMicrosPerS: 1e12, planMicrosPerS: 0, bidMaxMicros: 0, dailyBudgetMicros: budget }), limits.leaseCeilingMicros, 'the absolute ceiling');
  t.equal(leaseWantMicros({ recentSpendMicrosPerS: 1e9, planMicrosPerS: 0, bidMaxMicros: 0, dailyBudgetMicros: 1_000_000_000 }), 100_000_000, 'a tenth of a small budget at most');
  t.equal(leaseCeilingMicros(50_000), limits.leaseFloorMicros, 'a tiny budget still allows a floor-sized lease (the script grants only what is free)');
  t.equal(leaseRenewAtMs(1_000, 4_000), 2_500, 'renewed half-way through its life');
});
