import t, { type Test } from 'tap';
import { committedInStore, type FleetResult, runFleet } from '../../bench/lib/fleet.js';
import { limits } from '../../shards/limits.js';
import { LeaseClient } from '../../src/store/leases.js';
import { openRedis, openRedisCluster, type RedisClient, whenReady } from '../../src/store/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { auth, get, type Pacer, post, startPacer } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Several real pacer instances (dist/src/main.js) share every budget through budget leases, on
 * the machine's Redis and on a real three-master Redis Cluster: thousands of concurrent bids
 * against small budgets, traffic split 70/20/10 and a third of the win notices sent to any
 * instance. Settled + reserved (read atomically in the store every few tens of milliseconds)
 * never exceeds a budget, the settled counters are exactly the acknowledged spend, and kill -9 of
 * one instance under load leaves the others deciding, returns its leases within two lease
 * lifetimes and loses no acknowledged spend. A budget change on A is seen by C within a second.
 */
t.setTimeout(900_000);
// Cluster nodes in this suite's own port range unless the runner chose one.
process.env.TEST_REDIS_CLUSTER_PORTS ??= '17100-17199';
const day = new Date().toISOString().slice(0, 10);
// Reservations live 10 s here. (This test failed under CPU starvation, first read as win notices
// later than the TTL; the causes found were a lease given back before its spend was confirmed
// (src/shard/lease-keeper.ts) and a win notice at another instance paid by two leases, the
// receiver's and the reserver's (shards/shard.ts, settled()). The 10 s stays: late notices, the
// one overspend the design allows, docs/pacing.md, are not what this test is about.)
const reservationTtlMs = 10_000;
const budget = 400_000;
const bid = 1_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function instanceIdOf(p: Pacer): string {
  const line = p.stderr().split('\n').find((l) => l.includes('"msg":"ready"'))!;
  return (JSON.parse(line) as { instanceId: string }).instanceId;
}

interface Fleet {
  pacers: Pacer[];
  redis: RedisClient;
  prefix: string;
}

/** Samples settled + reserved of every campaign while `run` goes on; returns the worst ratio. */
async function sampled(f: Fleet, campaigns: string[], run: Promise<FleetResult>): Promise<{ result: FleetResult; worst: number; samples: number }> {
  let done = false;
  let worst = 0;
  let samples = 0;
  const sampler = (async () => {
    while (!done) {
      // Every campaign read at once, so a loaded machine still gives many moments per second.
      const committed = await Promise.all(campaigns.map(async (c) => (await committedInStore(f.redis, f.prefix, c, day))[0]));
      for (const x of committed) worst = Math.max(worst, x / budget);
      samples++;
      // Often: with leases sized to what is committed plus a second of growth, four small
      // budgets are spent within a second or two, and every moment is worth a look.
      await sleep(5);
    }
  })();
  const result = await run;
  done = true;
  await sampler;
  return { result, worst, samples };
}

/**
 * Creates a campaign and waits until its instance serves it: on a loaded machine a Redis call can
 * time out, and the create is then answered 503 STORE_UNAVAILABLE (saved, loaded when Redis answers).
 */
async function createServed(p: Pacer, body: Record<string, unknown>): Promise<void> {
  const r = await post(p.adminUrl, '/v1/campaigns', body, auth);
  if (r.status === 200 || r.status === 201) return;
  if (r.status !== 503 || (r.body as { error?: { code?: string } }).error?.code !== 'STORE_UNAVAILABLE') {
    throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  }
  for (let i = 0; i < 150; i++) {
    if ((await get(p.adminUrl, `/v1/campaigns/${String(body.id)}/status`, auth)).status === 200) return;
    await sleep(200);
  }
  throw new Error(`campaign ${String(body.id)} was saved but not served within 30 s`);
}

async function settledOf(f: Fleet, campaignId: string): Promise<number> {
  return (await committedInStore(f.redis, f.prefix, campaignId, day))[1];
}

async function checkTotals(t: Test, f: Fleet, campaigns: string[], result: FleetResult): Promise<void> {
  t.equal(result.unresolved, 0, 'every win notice was acknowledged by an instance');
  // Spend acknowledged from an instance's spool (a Redis call that timed out on a loaded machine)
  // reaches Redis when the spool is replayed: wait for that, up to 30 s, before comparing.
  for (let i = 0; i < 150; i++) {
    const all = await Promise.all(campaigns.map(async (c) => (await settledOf(f, c)) === (result.ackedMicros.get(c) ?? 0)));
    if (all.every(Boolean)) break;
    await sleep(200);
  }
  for (const c of campaigns) {
    const settled = await settledOf(f, c);
    t.ok(settled <= budget, `${c}: settled ${settled} within its budget ${budget}`);
    t.equal(settled, result.ackedMicros.get(c) ?? 0, `${c}: settled is exactly the acknowledged spend`);
  }
}

function suite(name: string, open: () => Promise<{ env: Record<string, string>; redis: RedisClient; prefix: string; done: () => Promise<void> }>): void {
  const tag = name.replace(/[^A-Za-z0-9]/g, '');
  t.test(name, async (t) => {
    const s = await open();
    const db = await createDatabase('instances');
    const env = {
      ...s.env,
      PACER_STORE: 'redis',
      PACER_REDIS_KEY_PREFIX: s.prefix,
      PACER_DATABASE_URL: db.url,
      PACER_SHARDS: '1',
      PACER_LEASES: 'on',
      PACER_RESERVATION_TTL_MS: String(reservationTtlMs),
    };
    const pacers = [await startPacer({ env }), await startPacer({ env }), await startPacer({ env })];
    const f: Fleet = { pacers, redis: s.redis, prefix: s.prefix };
    t.teardown(async () => {
      for (const p of pacers) await p.kill();
      await db.drop();
      await s.done();
    });
    const urls = pacers.map((p) => p.url);
    const makeCampaigns = async (tag: string): Promise<string[]> => {
      const ids = [0, 1, 2, 3].map((i) => `${tag}-${i}`);
      // ASAP with the widest velocity cap: the budget, not the pacing, is what stops the bids.
      for (const id of ids) await createServed(pacers[0]!, { id, dailyBudgetMicros: budget, strategy: 'ASAP', velocityCapMultiple: 1_000, breaker: { enabled: false } });
      // Configuration everywhere: every instance serves them before the load starts.
      for (const p of pacers) {
        for (const id of ids) {
          for (let i = 0; i < 300; i++) {
            const d = await post(p.url, '/v1/decide', { campaignId: id });
            if (d.body.reason !== 'UNKNOWN_CAMPAIGN' && d.body.reason !== 'NOT_READY') break;
            await sleep(20);
          }
        }
      }
      return ids;
    };

    await t.test('three instances at 70/20/10 never commit more than a budget, and total exactly', async (t) => {
      const campaigns = await makeCampaigns(`${tag}-split`);
      const spent = async (): Promise<boolean> => {
        for (const c of campaigns) if ((await settledOf(f, c)) < budget - 5 * bid) return false;
        return true;
      };
      let allSpent = false;
      const watcher = setInterval(() => void spent().then((v) => (allSpent = v)), 200);
      const { result, worst, samples } = await sampled(f, campaigns, runFleet({
        urls, shares: [0.7, 0.2, 0.1], campaigns, bidMicros: bid, concurrency: 24, batch: 25,
        durationMs: 25_000, winShare: 0.8, elsewhereShare: 0.33, seed: 1, stop: () => allSpent,
      }));
      clearInterval(watcher);
      t.comment(JSON.stringify({ decisions: result.decisions, allowed: result.allowed, reasons: result.reasons, samples, worst }));
      t.ok(result.decisions >= 5_000, `${result.decisions} decisions`);
      t.ok(samples >= 20, `sampled ${samples} moments`);
      t.ok(worst <= 1, `settled + reserved never above the budget (at most ${worst.toFixed(4)} of it)`);
      await checkTotals(t, f, campaigns, result);
      let delivered = 0;
      for (const c of campaigns) delivered += await settledOf(f, c);
      t.ok(delivered >= campaigns.length * budget * 0.95, `delivered ${delivered} of ${campaigns.length * budget}`);
    });

    await t.test('kill -9 of one instance under load: the others decide, its leases return, no spend is lost', async (t) => {
      const campaigns = await makeCampaigns(`${tag}-kill`);
      const dead = new Set<number>();
      const victim = pacers[1]!;
      const victimId = instanceIdOf(victim);
      let killedAt = 0;
      let allowedBefore = 0;
      const run = runFleet({
        urls, shares: [0.7, 0.2, 0.1], campaigns, bidMicros: bid, concurrency: 24, batch: 10,
        durationMs: 12_000, winShare: 0.8, elsewhereShare: 0.33, seed: 2, dead,
      });
      const killer = (async () => {
        await sleep(3_000);
        const before = await Promise.all(campaigns.map((c) => new LeaseClient(f.redis, f.prefix, 86_400).snapshot(c, day)));
        t.ok(before.some((s) => s.leases.some((l) => l.holder.startsWith(victimId))), 'the victim held leases before the kill');
        dead.add(1);
        victim.child.kill('SIGKILL');
        killedAt = Date.now();
      })();
      const { result, worst } = await sampled(f, campaigns, run);
      await killer;
      allowedBefore = result.allowed;
      t.comment(JSON.stringify({ decisions: result.decisions, allowed: result.allowed, reasons: result.reasons, worst }));
      // A dead holder's lease keeps counting its reserved part until its last reservation expires
      // (src/store/leases.ts, holdUntil): by then, and two lease lifetimes after the kill, no lease
      // of the victim is counted any more.
      const returnMs = Math.max(2 * limits.leaseTtlMs, reservationTtlMs + limits.leaseTtlMs);
      const wait = killedAt + returnMs - Date.now();
      if (wait > 0) await sleep(wait);
      const leases = new LeaseClient(f.redis, f.prefix, 86_400);
      for (const c of campaigns) {
        const snap = await leases.snapshot(c, day);
        t.notOk(snap.leases.some((l) => l.holder.startsWith(victimId)), `${c}: the dead instance's lease returned within ${returnMs} ms (its reservations' TTL and a lease lifetime)`);
      }
      t.ok(worst <= 1, `settled + reserved never above the budget (at most ${worst.toFixed(4)} of it)`);
      await checkTotals(t, f, campaigns, result);
      // The survivors keep deciding after the kill.
      const after = await runFleet({
        urls, shares: [0.7, 0.2, 0.1], campaigns, bidMicros: bid, concurrency: 8, batch: 10,
        durationMs: 1_500, winShare: 0, elsewhereShare: 0, seed: 3, dead,
      });
      t.ok(after.decisions > 0 && allowedBefore > 0, `the survivors answered ${after.decisions} decisions after the kill`);
      pacers[1] = await startPacer({ env });
    });

    await t.test('a budget change on A is seen by a decision on C within a second, with leases on', async (t) => {
      const [a, , c] = pacers;
      const id = `${tag}-budget`;
      await createServed(a!, { id, dailyBudgetMicros: 1_000_000, strategy: 'ASAP', breaker: { enabled: false } });
      let ok = false;
      for (let i = 0; i < 200 && !ok; i++) {
        ok = (await post(c!.url, '/v1/decide', { campaignId: id, bidMicros: 200_000 })).body.allow === true;
        if (!ok) await sleep(20);
      }
      t.ok(ok, 'C allows a bid of a fifth of the budget (its lease covers one bid)');
      const r = await post(a!.adminUrl, `/v1/campaigns/${id}/budget`, { set: 100_000, reason: 'instances test' }, auth);
      t.equal(r.status, 200, 'A lowered the budget');
      const started = Date.now();
      let seen = -1;
      while (Date.now() - started < 3_000) {
        const d = await post(c!.url, '/v1/decide', { campaignId: id, bidMicros: 200_000 });
        if (d.body.allow === false && d.body.reason === 'BUDGET_EXHAUSTED') {
          seen = Date.now() - started;
          break;
        }
        await sleep(10);
      }
      t.ok(seen >= 0 && seen <= 1_000, `the lowered budget was seen on C after ${seen} ms`);
    });
  });
}

suite('one Redis', async () => {
  const prefix = uniqueName('pacer-instances');
  const redis = openRedis(redisUrl, 'test');
  await whenReady(redis, 2_000);
  return {
    env: { PACER_REDIS_URL: redisUrl },
    redis,
    prefix,
    done: async () => {
      await dropRedisPrefix(redisUrl, prefix);
      redis.disconnect();
    },
  };
});

suite('Redis Cluster', async () => {
  const cluster = await startRedisCluster(3);
  const redis = openRedisCluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })), 'test');
  await whenReady(redis, 5_000);
  return {
    env: { PACER_REDIS_CLUSTER: cluster.seeds },
    redis,
    prefix: uniqueName('pacer-instances'),
    done: async () => {
      redis.disconnect();
      await cluster.destroy();
    },
  };
});
