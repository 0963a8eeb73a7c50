import t from 'tap';
import { Campaign, type CampaignHooks } from '../../shards/campaign.js';
import { RowPool, ShardColumns } from '../../shards/columns.js';
import { GlobalProfile, TrafficProfile } from '../../shards/pacing/profile.js';
import type { ShardPorts } from '../../shards/ports.js';
import { Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { OpWriter, ResultReader } from '../../shards/wire.js';
import { MemoryStore } from '../../src/store/memory.js';
import { always, config, iso } from '../helpers/campaign.js';

/**
 * The shard's numeric state in typed-array rows (shards/columns.ts): rows are taken and given
 * back with what owns them, never handed to a second owner while the first still points at them,
 * and the campaigns, counters and profiles over them read what they read as objects.
 */
function hooksWith(columns: ShardColumns): CampaignHooks {
  return { columns, globalProfile: new GlobalProfile(), onBreaker: () => {}, onRollover: () => {} };
}

const noon = iso('2026-03-10T12:00:00Z');

t.test('a row pool grows by chunks that never move, and reuses given-back rows', async (t) => {
  const pool = new RowPool<Float64Array>(3, (n) => new Float64Array(n));
  const rows = Array.from({ length: 1500 }, () => pool.take());
  t.same(rows.slice(0, 3), [0, 1, 2]);
  t.equal(pool.chunks.length, 2, '1,500 rows of 1,024 per chunk: two chunks');
  const first = pool.chunks[0];
  pool.take();
  t.equal(pool.chunks[0], first, 'growth adds a chunk and leaves the first where it was');
  t.equal(pool.chunkOf(1100), pool.chunks[1]);
  t.equal(pool.offsetOf(1100), (1100 - 1024) * 3);
  t.equal(pool.rowAt(pool.chunks[1]!, (1100 - 1024) * 3), 1100);
  pool.give(7);
  t.equal(pool.used, 1500);
  t.equal(pool.take(), 7, 'a given-back row is the next one taken');
  t.throws(() => pool.give(99_999), /never taken/);
  t.equal(pool.bytes, 2 * 1024 * 3 * 8);
});

t.test('campaigns of one shard take rows of its columns and keep their numbers apart', async (t) => {
  const cols = new ShardColumns();
  const hooks = hooksWith(cols);
  const a = new Campaign(config({ id: 'a', strategy: 'ASAP', breaker: { enabled: false } }), noon, hooks);
  const b = new Campaign(config({ id: 'b', strategy: 'EVEN' }), noon, hooks);
  t.equal(cols.campaigns.used, 2);
  t.equal(a.decide(noon, 100, 'r1', always, 60_000), Reason.OK);
  a.applySpend(noon + 1, 80, 'r1');
  t.equal(a.settled, 80);
  t.equal(a.held, 20, 'a spend under its bid holds the difference');
  t.equal(b.settled, 0, "another campaign's row is its own");
  t.equal(b.held, 0);
  t.equal(a.controller.throttle, 1, 'ASAP starts at 1');
  t.equal(b.controller.throttle < 1, true, 'EVEN starts slow: the controllers do not share numbers');
  t.equal(a.breaker.state, 'CLOSED');
  t.equal(a.breaker.sinceMs, null, 'null survives the column (NaN inside)');
  t.equal(a.today.decisions, 1);
  t.equal(a.today.settledMicros, 80);
  t.equal(b.today.decisions, 0);
  t.equal(cols.counters.used, 2, "a's today and since-summary counters; b counted nothing and holds none");
});

t.test('counters: the summary takes its row back, the rollover gives today\'s back, denials in a row of their own', async (t) => {
  const cols = new ShardColumns();
  const c = new Campaign(config({ id: 'c', strategy: 'ASAP', dailyBudgetMicros: 100, breaker: { enabled: false } }), noon, hooksWith(cols));
  t.equal(c.decide(noon, 60, 'r1', always, 60_000), Reason.OK);
  t.equal(c.decide(noon, 60, 'r2', always, 60_000), Reason.BUDGET_EXHAUSTED);
  t.equal(cols.counters.used, 2);
  t.equal(cols.denied.used, 2, 'one row of denials for each counters row that denied');
  const s = c.takeSummary()!;
  t.equal(s.decisions, 2);
  t.same(s.deniedByReason(), { BUDGET_EXHAUSTED: 1 });
  t.equal(cols.counters.used, 1, "the summary's row went back");
  t.equal(cols.denied.used, 1);
  t.equal(c.takeSummary(), null, 'nothing counted since');
  t.equal(c.sinceSummary.decisions, 0);
  // A counters row given back and taken again starts from zero.
  c.decide(noon + 1, 60, 'r3', always, 60_000);
  t.equal(c.sinceSummary.decisions, 1, 'a new row, zeroed');
  t.same(c.sinceSummary.deniedByReason(), { BUDGET_EXHAUSTED: 1 });
  t.equal(c.today.decisions, 3, 'today kept counting');
  const held = c.today;
  c.refresh(iso('2026-03-11T12:00:00Z'));
  t.equal(c.today.decisions, 0, 'the next day starts without counters');
  t.equal(held.decisions, 3, 'a copy read before the rollover keeps what it read');
  t.equal(cols.counters.used, 1, "today's row went back at the rollover (the summary's stays until taken)");
});

t.test('a disposed campaign gives its rows back and points at the dead row, so the next owner is safe', async (t) => {
  const cols = new ShardColumns();
  const hooks = hooksWith(cols);
  const old = new Campaign(config({ id: 'old', strategy: 'ASAP', breaker: { enabled: false } }), noon, hooks);
  old.decide(noon, 100, 'r1', always, 60_000);
  old.applySpend(noon, 70, 'r1');
  old.dispose();
  old.dispose();
  t.equal(cols.campaigns.used, 0, 'the campaign row is free (and disposing twice gives back once)');
  t.equal(cols.counters.used, 0, 'its counters rows too');
  t.equal(cols.hourCounts.used, 0, "and its profile's counts");
  const next = new Campaign(config({ id: 'next', strategy: 'ASAP', breaker: { enabled: false } }), noon, hooks);
  t.equal(cols.campaigns.used, 1);
  t.equal(next.settled, 0, 'the reused row starts from the new campaign\'s numbers');
  // What still holds the old campaign writes the dead row, not the new campaign's.
  (old as { settled: number }).settled = 5;
  old.breaker.trips = 9;
  t.equal(next.settled, 0);
  t.equal(next.breaker.trips, 0);
  next.decide(noon, 10, 'q', always, 60_000);
  t.equal(next.reserved, 10);
});

t.test("today's traffic counts: a row of 24 taken on the first opportunity, given back when the day ends", async (t) => {
  const cols = new ShardColumns();
  const p = new TrafficProfile(cols.hourCounts);
  t.equal(p.todayCount(3), 0);
  t.equal(cols.hourCounts.used, 0, 'no opportunity, no row');
  p.count(3);
  p.count(3);
  p.count(23);
  t.equal(cols.hourCounts.used, 1);
  t.equal(p.todayCount(3), 2);
  t.equal(p.todayCount(23), 1);
  const q = new TrafficProfile(cols.hourCounts);
  q.count(3);
  t.equal(q.todayCount(3), 1, 'profiles of one pool count apart');
  for (let h = 0; h < 24; h++) p.observe(h, 3_600_000);
  const day = p.endDay(Array(24).fill(3_600_000) as number[], 2);
  t.ok(day !== null, 'the day taught something');
  t.equal(cols.hourCounts.used, 1, "p's row went back");
  t.equal(p.todayCount(3), 0);
  p.count(0);
  t.equal(p.todayCount(3), 0, 'a row taken again is zeroed');
  t.equal(q.todayCount(3), 1);
});

t.test('learned densities: a row of 168 taken at the first lesson, NaN where nothing was learned, given back with the profile', async (t) => {
  const cols = new ShardColumns();
  const p = new TrafficProfile(cols.hourCounts, cols.densities);
  t.equal(p.weightsFor(2), null, 'nothing learned: no weights');
  t.equal(cols.densities.used, 0, 'and no row');
  // Tuesday, observed 09:00-11:00 only: 10 and 30 opportunities.
  for (let i = 0; i < 10; i++) p.count(9);
  for (let i = 0; i < 30; i++) p.count(10);
  p.observe(9, 3_600_000);
  p.observe(10, 3_600_000);
  t.ok(p.endDay(Array(24).fill(3_600_000) as number[], 2) !== null);
  t.equal(cols.densities.used, 1, 'the lesson took a row');
  t.equal(cols.densities.bytes, 128 * 168 * 8, 'in a chunk of 128 rows, not 1,024');
  const snap = p.snapshot(1).density;
  t.equal(snap[2 * 24 + 9], 10 / 3_600_000, 'the first lesson is taken as it is');
  t.equal(snap[2 * 24 + 11], null, 'an hour not observed is not learned');
  t.equal(snap.filter((v) => v !== null).length, 2);
  const w = p.weightsFor(2)!;
  t.equal(w[10]! / w[9]!, 3, 'the weekday shape follows what was learned');
  t.equal(w[0], (w[9]! + w[10]!) / 2, 'an hour no day learned plans at the mean of the known ones');
  const q = new TrafficProfile(cols.hourCounts, cols.densities);
  q.load({ density: snap.map((v, i) => (i === 2 * 24 + 9 ? null : v)), fittedAtMs: 5 });
  t.equal(cols.densities.used, 2, 'a fitted profile takes its own row');
  t.equal(q.snapshot(5).density[2 * 24 + 9], null, 'a null hour of a fitted profile is not learned');
  t.equal(p.snapshot(1).density[2 * 24 + 9], 10 / 3_600_000, "and the other profile's row is untouched");
  p.dispose();
  t.equal(cols.densities.used, 1, "a disposed profile's row goes back");
});

t.test('a campaign on its first day counts its traffic in a row of its own and makes a profile only when it learns', async (t) => {
  const cols = new ShardColumns();
  const c = new Campaign(config({ id: 'p', strategy: 'ASAP', breaker: { enabled: false } }), noon, hooksWith(cols));
  for (let i = 0; i < 5; i++) c.decide(noon + i, 0, '', always, 60_000);
  t.equal(cols.hourCounts.used, 1, "today's counts: one row");
  t.equal((c as unknown as { prof: unknown }).prof, null, 'and no profile object yet');
  c.refresh(iso('2026-03-11T00:30:00Z'));
  t.equal(cols.hourCounts.used, 0, 'the rollover made the profile, which learned the day and gave the row back');
  const p = (c as unknown as { prof: TrafficProfile | null }).prof;
  t.ok(p !== null, 'the profile exists once the day taught it');
  // Asked for during the day, the profile takes over the counts so far.
  const d = new Campaign(config({ id: 'q', strategy: 'ASAP', breaker: { enabled: false } }), noon, hooksWith(cols));
  d.decide(noon, 0, '', always, 60_000);
  d.decide(noon + 1, 0, '', always, 60_000);
  const hour = new Date(noon).getUTCHours();
  t.equal(d.profile.todayCount(hour), 2, 'the counts moved into the profile');
  d.decide(noon + 2, 0, '', always, 60_000);
  t.equal(d.profile.todayCount(hour), 3);
  t.equal(cols.hourCounts.used, 1, 'one row, now the profile\'s');
});

t.test("a shard's shadows take rows of its columns and give them back when the configuration drops them", async (t) => {
  const ports: ShardPorts = {
    clock: { now: () => noon },
    random: sfc32(5),
    timers: { after: () => () => {} },
    store: new MemoryStore(),
    sendResults: () => {},
    emit: () => {},
    batchIdPrefix: 'columns-test',
  };
  const shard = new Shard(ports, { reservationTtlMs: 10_000, flushIntervalMs: 0 });
  await shard.upsert(config({ id: 's', strategy: 'ASAP', shadow: { strategy: 'EVEN' } }));
  t.equal(shard.columns.campaigns.used, 2, 'the campaign and its shadow');
  const w = new OpWriter();
  w.decide(0, 's', 100, 'r1');
  const r = new ResultReader().reset(shard.handleOps(w.take()));
  t.ok(r.next());
  await shard.upsert(config({ id: 's', strategy: 'ASAP', shadow: null }, 2));
  t.equal(shard.campaigns.get('s')!.shadow, null);
  t.equal(shard.columns.campaigns.used, 1, "the shadow's row went back");
  t.equal(shard.status('s')!.counters.decisions, 1, "the campaign's own numbers are intact");
});

t.test("a row's integers (flags, counts, row numbers, the breaker's state and trips) are its own, in every chunk", async (t) => {
  // 2,100 campaigns: three chunks of 1,024 rows. Each writes its own integers and doubles; none
  // may read another's (the integers share the doubles' memory, two to a double, after them).
  const cols = new ShardColumns();
  const hooks = hooksWith(cols);
  const cs = Array.from({ length: 2_100 }, (_, k) => new Campaign(config({ id: `k${k}`, strategy: 'ASAP', breaker: { enabled: false } }), noon, hooks));
  cs.forEach((c, k) => {
    c.breaker.trips = k;
    for (let d = 0; d < k % 5; d++) c.decide(noon, 10 + k, `r${k}-${d}`, always, 60_000);
  });
  let wrong = 0;
  cs.forEach((c, k) => {
    if (c.breaker.trips !== k || c.today.decisions !== k % 5 || c.reserved !== (k % 5) * (10 + k) || c.breaker.state !== 'CLOSED') wrong++;
  });
  t.equal(wrong, 0, 'every campaign reads back its own trips, decisions and reservations');
  t.equal(cols.campaigns.chunks.length, 3);
});
