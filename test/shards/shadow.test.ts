import t from 'tap';
import type { ShardPorts } from '../../shards/ports.js';
import { OpStatus, Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import { DecideFlag, OpWriter, ResultReader } from '../../shards/wire.js';
import { MemoryStore } from '../../src/store/memory.js';
import { config, iso } from '../helpers/campaign.js';

/**
 * Shadows in the shard actor, on a simulated clock (shards/pacing/shadow.ts): how the shadow's
 * would-be counters follow the real campaign's traffic, spend, releases and expiries, and that a
 * campaign without a shadow holds none and answers as before.
 */
function rig(startMs: number) {
  const clock = { now: startMs };
  const ports: ShardPorts = {
    clock: { now: () => clock.now },
    random: sfc32(5),
    timers: { after: () => () => {} },
    store: new MemoryStore(),
    sendResults: () => {},
    emit: () => {},
    batchIdPrefix: 'shadow-test',
  };
  const shard = new Shard(ports, { reservationTtlMs: 10_000, flushIntervalMs: 0 });
  let slot = 0;
  const run = (w: OpWriter) => {
    const r = new ResultReader().reset(shard.handleOps(w.take()));
    const out: { code: number; flags: number; wouldReason: number }[] = [];
    while (r.next()) out.push({ code: r.code, flags: r.flags, wouldReason: r.wouldReason });
    return out;
  };
  return {
    shard,
    clock,
    decide(id: string, bid: number, requestId: string) {
      const w = new OpWriter();
      w.decide(slot++, id, bid, requestId);
      return run(w)[0]!;
    },
    spend(id: string, eventId: string, amount: number, requestId: string) {
      const w = new OpWriter();
      w.spend(slot++, id, amount, eventId, requestId);
      run(w);
    },
    release(id: string, requestId: string) {
      const w = new OpWriter();
      w.release(slot++, id, requestId);
      return run(w)[0]!;
    },
  };
}

const noon = iso('2026-03-10T12:00:00Z');

t.test('a campaign without a shadow holds none and its answers carry no would-be reason', async (t) => {
  const r = rig(noon);
  await r.shard.upsert(config({ id: 'plain', strategy: 'ASAP', breaker: { enabled: false } }));
  const c = r.shard.campaigns.get('plain')!;
  t.equal(c.shadow, null);
  const a = r.decide('plain', 100, 'q1');
  t.equal(a.code, Reason.OK);
  t.equal(a.flags & DecideFlag.SHADOW, 0);
  t.equal(a.wouldReason, 0);
  t.equal(r.shard.status('plain')!.shadow, undefined, 'no shadow in the status');
  t.equal(c.config.mode, 'ENFORCE', 'the configuration reads as enforcing');
  t.equal(c.config.shadow, null, 'and without a shadow strategy');
});

t.test('SHADOW mode allows what the pacer would deny, and answers what it would have said', async (t) => {
  const r = rig(noon);
  // 1,000 micros a day, a 600-micro bid: the second reservation would pass the hard cap.
  await r.shard.upsert(config({ id: 's', dailyBudgetMicros: 1_000, strategy: 'ASAP', mode: 'SHADOW', breaker: { enabled: false } }));
  const first = r.decide('s', 600, 'a');
  t.equal(first.code, Reason.OK);
  t.ok(first.flags & DecideFlag.SHADOW);
  t.equal(first.wouldReason, Reason.OK, 'ASAP would have allowed the first');
  const second = r.decide('s', 600, 'b');
  t.equal(second.code, Reason.OK, 'allowed');
  t.ok(second.flags & DecideFlag.RESERVED, 'and reserved, so its spend matches');
  t.equal(second.wouldReason, Reason.BUDGET_EXHAUSTED, 'the cap would have denied it');
  r.spend('s', 'e1', 500, 'a');
  r.spend('s', 'e2', 550, 'b');
  const st = r.shard.status('s')!;
  t.equal(st.settledMicros, 1_050, 'real spend counts in full, past the budget (nothing enforced)');
  t.equal(st.shadow!.settledMicros, 500, 'would-be spend: only the win of the bid it would have allowed');
  t.equal(st.shadow!.allowed, 1);
  t.same(st.shadow!.deniedByReason, { BUDGET_EXHAUSTED: 1 });
  t.equal(st.shadow!.estimatedMicros, 0);
  t.equal(r.shard.totals.shadowDecisions[Reason.OK], 1);
  t.equal(r.shard.totals.shadowDecisions[Reason.BUDGET_EXHAUSTED], 1);
});

t.test('SHADOW mode allows outside the schedule but a paused campaign still denies', async (t) => {
  const r = rig(noon);
  const schedule = [{ days: ['TUE'], start: '00:00', end: '01:00' }];
  await r.shard.upsert(config({ id: 'w', strategy: 'ASAP', mode: 'SHADOW', schedule, breaker: { enabled: false } }));
  const a = r.decide('w', 10, 'x');
  t.equal(a.code, Reason.OK);
  t.equal(a.wouldReason, Reason.OUTSIDE_SCHEDULE);
  await r.shard.upsert(config({ id: 'w', strategy: 'ASAP', mode: 'SHADOW', schedule, status: 'PAUSED', breaker: { enabled: false } }, 2));
  t.equal(r.decide('w', 10, 'y').code, Reason.CAMPAIGN_PAUSED);
});

t.test('a shadow strategy beside an enforcing campaign: observed where both allowed, estimated where only it would have', async (t) => {
  const r = rig(noon);
  // Real ASAP and shadow ASAP on a large budget: both allow everything, which isolates the counting.
  await r.shard.upsert(config({ id: 'ab', dailyBudgetMicros: 1_000_000, strategy: 'ASAP', shadow: { strategy: 'ASAP' }, breaker: { enabled: false } }));
  const c = r.shard.campaigns.get('ab')!;
  t.ok(c.shadow, 'the configuration made a shadow');
  t.equal(c.shadow!.strategy, 'ASAP');
  // Both allow and reserve: the win settles both.
  for (let i = 0; i < 12; i++) {
    const a = r.decide('ab', 1_000, `r${i}`);
    t.equal(a.flags & DecideFlag.SHADOW, 0, 'an enforcing campaign answers without would-be fields');
    r.clock.now += 100;
    if (i % 2 === 0) r.spend('ab', `e${i}`, 400, `r${i}`);
    else t.equal(r.release('ab', `r${i}`).code, OpStatus.RELEASED);
  }
  let sh = r.shard.status('ab')!.shadow!;
  t.equal(sh.settledMicros, 6 * 400, 'six observed wins');
  t.equal(sh.reservedMicros, 0, 'releases released the shadow too');
  t.equal(sh.estimatedMicros, 0);
  // A decision without a requestId reserves nothing: its outcome is never reported, so it is estimated.
  r.decide('ab', 1_000, '');
  const after = r.shard.status('ab')!;
  sh = after.shadow!;
  // The real campaign decided (and counted) it first; its spend per allowed decision is not yet learned by the controller.
  const perAllowed = after.settledMicros / after.counters.allowed;
  t.equal(sh.estimatedDecisions, 1);
  t.equal(sh.estimatedMicros, Math.floor(perAllowed), `estimated at today's spend per allowed decision (${perAllowed})`);
  t.equal(sh.settledMicros, 6 * 400 + sh.estimatedMicros);
  // A reservation that expires in the real campaign expires in the shadow.
  r.decide('ab', 1_000, 'late');
  t.equal(r.shard.status('ab')!.shadow!.reservedMicros, 1_000);
  r.clock.now += 11_000;
  r.shard.sweep();
  t.equal(r.shard.status('ab')!.reservations, 0);
  t.equal(r.shard.status('ab')!.shadow!.reservedMicros, 0, 'expired with it');
  // The summary carries the shadow's counters once, then starts again.
  const sum = r.shard.summaries().find((s) => s.campaignId === 'ab')!;
  t.equal(sum.shadow!.strategy, 'ASAP');
  t.equal(sum.shadow!.decisions, 14);
  t.equal(sum.shadow!.settledMicros, sh.settledMicros);
  t.equal(sum.shadow!.estimatedMicros, sh.estimatedMicros);
  t.equal(r.shard.summaries().length, 0);
  // A configuration without the shadow drops it.
  await r.shard.upsert(config({ id: 'ab', dailyBudgetMicros: 1_000_000, strategy: 'ASAP', breaker: { enabled: false } }, 2));
  t.equal(c.shadow, null);
});

t.test('the shadow paces by its own plan against its own counters, and never changes a real answer', async (t) => {
  // The same campaign twice, one with a FRONT_LOADED shadow: the real answers are identical.
  const a = rig(noon);
  const b = rig(noon);
  await a.shard.upsert(config({ id: 'x', dailyBudgetMicros: 200_000, strategy: 'EVEN' }));
  await b.shard.upsert(config({ id: 'x', dailyBudgetMicros: 200_000, strategy: 'EVEN', shadow: { strategy: 'FRONT_LOADED', frontLoadedShare: 0.9 } }));
  const rng = sfc32(9);
  for (let i = 0; i < 3_000; i++) {
    const ra = a.decide('x', 500, `q${i}`);
    const rb = b.decide('x', 500, `q${i}`);
    if (ra.code !== rb.code || ra.flags !== rb.flags) {
      t.fail(`decision ${i}: ${ra.code}/${ra.flags} without a shadow, ${rb.code}/${rb.flags} with one`);
      return;
    }
    if (ra.code === Reason.OK) {
      if (rng() < 0.3) {
        a.spend('x', `e${i}`, 300, `q${i}`);
        b.spend('x', `e${i}`, 300, `q${i}`);
      } else {
        a.release('x', `q${i}`);
        b.release('x', `q${i}`);
      }
    }
    a.clock.now += 50;
    b.clock.now += 50;
  }
  const real = b.shard.status('x')!;
  t.same(a.shard.status('x')!.counters, real.counters, 'the real counters are the same with and without a shadow');
  const sh = real.shadow!;
  t.equal(sh.strategy, 'FRONT_LOADED');
  t.equal(sh.decisions, 3_000);
  t.ok(sh.planMicros > real.planMicros, `FRONT_LOADED plans more by noon (${sh.planMicros}) than EVEN (${real.planMicros})`);
  t.ok(sh.settledMicros + sh.reservedMicros <= 200_000, 'its own hard cap holds on its would-be money');
});
