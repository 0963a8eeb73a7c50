import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { committedInStore, runFleet } from '../../bench/lib/fleet.js';
import { openRedisCluster, whenReady } from '../../src/store/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { createCampaign, get, post, startPacer } from '../helpers/server.js';
import { createDatabase, uniqueName } from '../helpers/services.js';

/**
 * A Redis Cluster master lost under load, with budget leases on: three masters with a replica
 * each, two pacer instances sharing four small budgets, and one master killed with SIGKILL five
 * seconds in; its replica is promoted. Afterwards every win notice has been acknowledged, the
 * settled counters (on the promoted replica for the lost master's slots) equal the acknowledged
 * spend, and decisions go on.
 *
 * Once a known gap (budgets 0.09% and 0.29% over, and 436,671 micros acknowledged for a budget of
 * 400,000, in earlier runs): fixed by WAIT after flushes and lease grants
 * (PACER_REDIS_WAIT_REPLICAS=1 here), leases held rather than dropped while the store spools, and
 * every spend counted in the receiving shard's lease (ARCHITECTURE.md, "Through a Redis master
 * loss"). The pacers' stdout and stderr are written to $TEST_MASTER_LOSS_LOGS.<i> when it is set.
 */
t.setTimeout(900_000);
process.env.TEST_REDIS_CLUSTER_PORTS ??= '17300-17399';
const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const day = new Date().toISOString().slice(0, 10);
const budget = 400_000;

t.test('a master lost under load: budgets held, totals exact after the replica takes over', async (t) => {
  const cluster = await startRedisCluster(3, 1);
  const redis = openRedisCluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })), 'test');
  await whenReady(redis, 5_000);
  const db = await createDatabase('master_loss');
  const prefix = uniqueName('pacer-master-loss');
  const env = {
    PACER_STORE: 'redis', PACER_REDIS_CLUSTER: cluster.seeds, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url,
    PACER_SHARDS: '1', PACER_LEASES: 'on', PACER_RESERVATION_TTL_MS: '2000', PACER_REDIS_WAIT_REPLICAS: '1',
  };
  const pacers = [await startPacer({ env }), await startPacer({ env })];
  t.teardown(async () => {
    for (const p of pacers) await p.kill();
    redis.disconnect();
    await db.drop();
    await cluster.destroy();
  });
  const campaigns = [0, 1, 2, 3].map((i) => `loss-${i}`);
  for (const id of campaigns) await createCampaign(pacers[0]!, { id, dailyBudgetMicros: budget, strategy: 'ASAP', velocityCapMultiple: 1_000, breaker: { enabled: false } });
  for (const p of pacers) {
    for (const id of campaigns) {
      for (let i = 0; i < 300; i++) {
        const d = await post(p.url, '/v1/decide', { campaignId: id });
        if (d.body.reason !== 'UNKNOWN_CAMPAIGN' && d.body.reason !== 'NOT_READY') break;
        await sleep(20);
      }
    }
  }
  let victim = -1;
  for (let i = 0; i < cluster.nodes.length && victim < 0; i++) {
    const role = (await run('redis-cli', ['-p', String(cluster.nodes[i]!.port), 'role'])).stdout;
    if (role.startsWith('master')) victim = i;
  }
  t.ok(victim >= 0, `node ${victim} is a master`);
  let worst = 0;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      for (const c of campaigns) {
        try {
          worst = Math.max(worst, (await committedInStore(redis, prefix, c, day))[0] / budget);
        } catch {
          // The lost master's slots answer nothing until the replica is promoted.
        }
      }
      await sleep(50);
    }
  })();
  const load = runFleet({
    urls: pacers.map((p) => p.url), shares: [0.7, 0.3], campaigns, bidMicros: 1_000, concurrency: 16, batch: 10,
    // 30 s: after the failover and the spool replays (about 15 s in the runs of this test on the
    // loaded 2-core machine) the campaigns still reach their budgets, so the budget edge is tested.
    durationMs: 30_000, winShare: 0.8, elsewhereShare: 0.33, seed: 11,
  });
  await sleep(5_000);
  const atKill = await Promise.all(campaigns.map(async (c) => (await committedInStore(redis, prefix, c, day))[1]));
  cluster.kill(victim);
  const result = await load;
  // The spools replay once the promoted replica answers; wait until both instances are ready again.
  for (let i = 0; i < 300; i++) {
    const states = await Promise.all(pacers.map(async (p) => (await get(p.url, '/readyz')).body.status));
    if (states.every((s) => s === 'ready')) break;
    await sleep(200);
  }
  // And until the settled counters stop moving for 3 s (the last spool replays).
  let last = '';
  for (let stable = 0, i = 0; stable < 15 && i < 300; i++) {
    const now = JSON.stringify(await Promise.all(campaigns.map(async (c) => (await committedInStore(redis, prefix, c, day).catch(() => [0, -1]))[1])));
    stable = now === last ? stable + 1 : 0;
    last = now;
    await sleep(200);
  }
  done = true;
  await sampler;
  const leaseMetrics = await Promise.all(pacers.map(async (p) => {
    const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
    const sum = (name: string): number => text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    return { grants: sum('pacer_lease_grants_total'), failures: sum('pacer_lease_failures_total'), elsewhere: sum('pacer_lease_settled_elsewhere_total') };
  }));
  if (process.env.TEST_MASTER_LOSS_LOGS) {
    const { writeFileSync } = await import('node:fs');
    pacers.forEach((p, i) => writeFileSync(`${process.env.TEST_MASTER_LOSS_LOGS}.${i}`, p.stdout() + p.stderr()));
  }
  t.comment(JSON.stringify({ decisions: result.decisions, allowed: result.allowed, reasons: result.reasons, worst, atKill, leaseMetrics }));
  t.equal(result.unresolved, 0, 'every win notice was acknowledged by an instance');
  t.ok(worst <= 1, `settled + reserved never above a budget where it could be read (at most ${worst.toFixed(4)})`);
  for (const c of campaigns) {
    const settled = (await committedInStore(redis, prefix, c, day))[1];
    t.ok(settled <= budget, `${c}: settled ${settled} within its budget`);
    const acked = result.ackedMicros.get(c) ?? 0;
    t.equal(settled, acked, `${c}: settled ${settled} is exactly the acknowledged spend ${acked}`);
  }
  const after = await runFleet({
    urls: pacers.map((p) => p.url), shares: [0.5, 0.5], campaigns, bidMicros: 1_000, concurrency: 4, batch: 10,
    durationMs: 1_000, winShare: 0, elsewhereShare: 0, seed: 12,
  });
  t.ok(after.decisions > 0, `decisions go on after the failover (${after.decisions})`);
});
