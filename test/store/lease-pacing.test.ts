import t from 'tap';
import type { ShardPorts } from '../../shards/ports.js';
import { Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { LeaseKeeper } from '../../src/shard/lease-keeper.js';
import { LeaseClient } from '../../src/store/leases.js';
import { realTimers } from '../../src/real-ports.js';
import { openRedis, RedisCounterStore, whenReady } from '../../src/store/redis.js';
import { config } from '../helpers/campaign.js';
import { dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Pacing and the breaker on global spend, with two real shards (two instances' worth) and their
 * lease keepers on the machine's Redis: instance A spends 95% of a budget; instance C, which spent
 * nothing, learns the global spend from its lease renewals, trips its breaker on it, and plans
 * only its share of the campaign's plan.
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test("an instance that spent nothing trips its breaker on the others' spend", async (t) => {
  const prefix = uniqueName('pacer-lease-global');
  const redis = openRedis(redisUrl, 'test');
  await whenReady(redis, 2_000);
  const leases = new LeaseClient(redis, prefix, 3 * 86_400);
  const keepers: LeaseKeeper[] = [];
  t.teardown(async () => {
    for (const k of keepers) await k.stop();
    await dropRedisPrefix(redisUrl, prefix);
    redis.disconnect();
  });
  const budget = 1_000_000;
  const cfg = config({ id: 'global-1', dailyBudgetMicros: budget, strategy: 'ASAP', velocityCapMultiple: 1_000, breaker: { enabled: true, tripAtFraction: 0.95 } });
  const shards: Shard[] = [];
  for (let i = 0; i < 2; i++) {
    const ports: ShardPorts = {
      clock: { now: Date.now },
      random: sfc32(3 + i),
      timers: realTimers,
      store: new RedisCounterStore(redis, { prefix, counterTtlSeconds: 3 * 86_400, label: `g${i}` }),
      sendResults: () => {},
      emit: () => {},
      batchIdPrefix: `${prefix}-g${i}`,
    };
    const shard = new Shard(ports, { reservationTtlMs: 10_000, flushIntervalMs: 0, leases: true });
    await shard.upsert(cfg);
    const keeper = new LeaseKeeper(shard, leases, ports.clock, realTimers, {
      holder: `${prefix}-g${i}:0`, reservationTtlMs: 10_000, spooling: () => false, onFault: () => {},
    });
    keeper.start();
    keepers.push(keeper);
    shards.push(shard);
  }
  const [a, c] = shards as [Shard, Shard];
  let slot = 0;
  let seq = 0;
  const decide = (s: Shard, bid: number): number => {
    const w = new OpWriter();
    w.decide(slot++, cfg.id, bid, `r${++seq}`);
    const r = new ResultReader().reset(s.handleOps(w.take()));
    r.next();
    return r.code;
  };
  const spend = (s: Shard, amount: number): void => {
    const w = new OpWriter();
    w.spend(slot++, cfg.id, amount, `e${seq}`, `r${seq}`);
    s.handleOps(w.take());
  };
  // A spends bids of 10,000 until its breaker trips at 95% of the budget.
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    const code = decide(a, 10_000);
    if (code === Reason.OK) spend(a, 10_000);
    else if (code === Reason.BREAKER_OPEN) break;
    await sleep(2);
  }
  await a.drain();
  const spentA = a.campaigns.get(cfg.id)!.settled;
  t.ok(spentA >= 0.95 * budget, `A spent ${spentA} of ${budget}`);
  const campaignC = c.campaigns.get(cfg.id)!;
  t.equal(campaignC.breaker.state, 'CLOSED', "C's breaker is closed before it asks for a lease");
  // C asks: its first lease renewal carries A's spend.
  decide(c, 100);
  for (let i = 0; i < 100 && (campaignC.lease?.othersMicros ?? 0) === 0; i++) await sleep(20);
  t.ok(campaignC.lease!.othersMicros >= 0.95 * budget, `C learned the others' spend: ${campaignC.lease!.othersMicros}`);
  t.equal(campaignC.breaker.state, 'OPEN', "C's breaker tripped on the global spend, before C spent anything");
  t.equal(campaignC.settled, 0, 'C itself spent nothing');
  const code = decide(c, 100);
  t.ok(code === Reason.BREAKER_OPEN || code === Reason.LEASE_EMPTY, `C denies (${code})`);
  t.ok(campaignC.lease!.share <= 1, `C plans a share of ${campaignC.lease!.share.toFixed(3)} of the plan`);
});
