import t from 'tap';
import { Campaign, type CampaignHooks } from '../../shards/campaign.js';
import { GlobalProfile } from '../../shards/pacing/profile.js';
import { Breaker, type BreakerTransition } from '../../shards/pacing/breaker.js';
import { Reason } from '../../shards/reasons.js';
import { breakerDefaults, type BreakerConfig, type CampaignConfig } from '../../shards/types.js';
import { always, config, harness, iso } from '../helpers/campaign.js';

const budget = 1_000_000;
const t0 = iso('2025-06-04T12:00:00Z');

function breaker(over: Partial<BreakerConfig> = {}): { b: Breaker; log: BreakerTransition[] } {
  const log: BreakerTransition[] = [];
  const b = new Breaker({ ...breakerDefaults, ...over }, (tr) => log.push(tr));
  return { b, log };
}

t.test('CLOSED trips to OPEN when committed spend reaches 95% of the budget, not before', async (t) => {
  const { b, log } = breaker();
  b.onCommitted(t0, 949_999, budget);
  t.equal(b.state, 'CLOSED');
  b.onCommitted(t0 + 1, 950_000, budget);
  t.equal(b.state, 'OPEN');
  t.same(log.map((x) => [x.from, x.to, x.reason, x.atMs]), [['CLOSED', 'OPEN', 'TRIP_FRACTION', t0 + 1]]);
  t.equal(b.share(t0 + 1), 0, 'OPEN admits nothing');
  t.equal(b.trips, 1);
});

t.test('OPEN waits its 300,000 ms cooldown, then HALF_OPEN steps 10% → 25% → 50% → 100% and returns to CLOSED', async (t) => {
  const { b, log } = breaker();
  b.onCommitted(t0, 960_000, budget);
  t.equal(b.share(t0 + 299_999), 0, 'still OPEN a millisecond before the cooldown ends');
  t.equal(b.share(t0 + 300_000), 0.1);
  t.equal(b.state, 'HALF_OPEN');
  t.equal(b.share(t0 + 360_000), 0.25);
  t.equal(b.share(t0 + 420_000), 0.5);
  t.equal(b.share(t0 + 480_000), 1);
  t.equal(b.share(t0 + 540_000), 1);
  t.equal(b.state, 'CLOSED');
  t.same(
    log.map((x) => [x.to, x.reason, x.atMs - t0]),
    [
      ['OPEN', 'TRIP_FRACTION', 0],
      ['HALF_OPEN', 'COOLDOWN_ELAPSED', 300_000],
      ['CLOSED', 'RECOVERED', 540_000],
    ],
    'each transition is dated when it fell due',
  );
});

t.test('regression: spend that stays above 95% does not re-trip the breaker (the predecessor capped delivery there)', async (t) => {
  const { b } = breaker();
  b.onCommitted(t0, 950_000, budget);
  b.advance(t0 + 600_000);
  t.equal(b.state, 'CLOSED');
  for (let c = 950_000; c <= 999_000; c += 1_000) b.onCommitted(t0 + 600_000 + c, c, budget);
  t.equal(b.state, 'CLOSED');
  t.equal(b.trips, 1);
  t.equal(b.fractionArmed, false);
});

t.test('a velocity trip opens the breaker from CLOSED and again from HALF_OPEN', async (t) => {
  const { b, log } = breaker({ velocityMultiple: 10 });
  b.onVelocity(t0, 100_000, 10_001, budget);
  t.equal(b.state, 'CLOSED', '9.999× the planned spend is allowed');
  b.onVelocity(t0, 100_000, 9_999, budget);
  t.equal(b.state, 'OPEN');
  b.advance(t0 + 300_000);
  t.equal(b.state, 'HALF_OPEN');
  b.onVelocity(t0 + 301_000, 100_000, 1_000, budget);
  t.equal(b.state, 'OPEN');
  t.same(log.map((x) => x.reason), ['TRIP_VELOCITY', 'COOLDOWN_ELAPSED', 'TRIP_VELOCITY']);
  t.equal(b.trips, 2);
});

t.test('a window that spent under 1% of the budget never trips on velocity', async (t) => {
  const { b } = breaker();
  b.onVelocity(t0, 9_999, 1, budget);
  t.equal(b.state, 'CLOSED');
});

t.test('EXHAUSTED holds until a budget raise, a manual reset or the rollover', async (t) => {
  for (const reason of ['BUDGET_RAISED', 'MANUAL_RESET', 'DAY_ROLLOVER'] as const) {
    const { b, log } = breaker();
    b.exhaust(t0);
    t.equal(b.share(t0 + 86_400_000), 0, `${reason}: EXHAUSTED admits nothing`);
    b.reset(t0 + 1, reason, 0, budget);
    t.equal(b.state, 'CLOSED');
    t.same(log.map((x) => [x.from, x.to, x.reason]), [['CLOSED', 'EXHAUSTED', 'EXHAUSTED'], ['EXHAUSTED', 'CLOSED', reason]]);
  }
});

t.test('a reset re-arms the fraction trip only below the threshold of the new budget', async (t) => {
  const { b } = breaker();
  b.onCommitted(t0, 960_000, budget);
  b.reset(t0 + 1, 'BUDGET_RAISED', 960_000, 1_000_000 * 1.01);
  t.equal(b.state, 'CLOSED');
  t.equal(b.fractionArmed, false, '96% of a budget raised by 1% stays past the threshold: no second pause');
  b.reset(t0 + 2, 'BUDGET_RAISED', 960_000, 2_000_000);
  t.equal(b.fractionArmed, true, 'doubled: 48%, armed again');
  b.onCommitted(t0 + 3, 1_900_000, 2_000_000);
  t.equal(b.state, 'OPEN');
});

t.test('a disabled breaker never trips, and disabling it closes an open one', async (t) => {
  const { b } = breaker({ enabled: false });
  b.onCommitted(t0, budget, budget);
  b.onVelocity(t0, budget, 1, budget);
  t.equal(b.state, 'CLOSED');
  const other = breaker();
  other.b.onCommitted(t0, budget, budget);
  other.b.reconfigure({ ...breakerDefaults, enabled: false });
  t.equal(other.b.state, 'CLOSED');
});

t.test('the campaign denies with BREAKER_OPEN during the cooldown and its status shows every transition with time and reason', async (t) => {
  const cfg = config({ strategy: 'ASAP', dailyBudgetMicros: budget });
  const h = harness(cfg, t0);
  const c = h.campaign;
  let i = 0;
  while (c.breaker.state === 'CLOSED') {
    t.equal(c.decide(t0 + i, 10_000, `r${i}`, always, 60_000), Reason.OK);
    c.applySpend(t0 + i, 10_000, `r${i}`);
    i++;
  }
  t.equal(c.settled, 950_000, 'tripped at exactly 95% committed');
  t.equal(c.decide(t0 + 1_000, 10_000, 'x1', always, 60_000), Reason.BREAKER_OPEN);
  t.equal(c.decide(t0 + 299_000, 10_000, 'x2', always, 60_000), Reason.BREAKER_OPEN);
  const tripAt = t0 + i - 1;
  const s = c.status(tripAt + 300_000);
  t.equal(s.breaker.state, 'HALF_OPEN');
  t.equal(s.breaker.tripArmed, false);
  t.same(
    s.breaker.events.map((e) => [e.at, e.from, e.to, e.reason]),
    [
      [new Date(tripAt).toISOString(), 'CLOSED', 'OPEN', 'TRIP_FRACTION'],
      [new Date(tripAt + 300_000).toISOString(), 'OPEN', 'HALF_OPEN', 'COOLDOWN_ELAPSED'],
    ],
  );
  t.equal(s.counters.deniedByReason.BREAKER_OPEN, 2);
});

t.test('after the trip the campaign still delivers its whole budget under the hard cap', async (t) => {
  const h = harness(config({ strategy: 'ASAP', dailyBudgetMicros: budget }), t0);
  const c = h.campaign;
  // One win a minute: 1% of the budget per minute, below the velocity guard (10 × 24 × even).
  let now = t0;
  for (let i = 0; i < 200; i++, now += 60_000) {
    if (c.decide(now, 10_000, `r${i}`, always, 60_000) === Reason.OK) c.applySpend(now, 10_000, `r${i}`);
  }
  t.equal(c.settled, budget, 'every micro delivered, none beyond');
  t.equal(c.breaker.state, 'EXHAUSTED');
  t.equal(c.decide(now, 10_000, 'late', always, 60_000), Reason.BUDGET_EXHAUSTED);
  t.same(h.transitions.map((x) => x.reason), ['TRIP_FRACTION', 'COOLDOWN_ELAPSED', 'RECOVERED', 'EXHAUSTED']);
});

t.test('a budget raise, a manual reset and the rollover return an exhausted campaign to CLOSED', async (t) => {
  const h = harness(config({ strategy: 'ASAP', dailyBudgetMicros: 100_000 }), t0);
  const c = h.campaign;
  c.applySpend(t0, 100_000, '');
  t.equal(c.breaker.state, 'EXHAUSTED');
  c.reconfigure(config({ strategy: 'ASAP', dailyBudgetMicros: 200_000 }, 2), t0 + 1);
  t.equal(c.breaker.state, 'CLOSED');
  c.applySpend(t0 + 2, 100_000, '');
  t.equal(c.breaker.state, 'EXHAUSTED');
  c.resetBreaker(t0 + 3);
  t.equal(c.breaker.state, 'EXHAUSTED', 'a manual reset with nothing left goes straight back to EXHAUSTED');
  c.decide(iso('2025-06-05T00:00:01Z'), 1_000, 'next-day', always, 60_000);
  t.equal(c.breaker.state, 'CLOSED');
  t.equal(c.settled, 0);
  // Spending a whole budget within milliseconds also trips the fraction and the velocity guard.
  t.same(h.transitions.map((x) => x.reason), [
    'TRIP_FRACTION', 'EXHAUSTED', 'BUDGET_RAISED', 'TRIP_VELOCITY', 'EXHAUSTED', 'MANUAL_RESET', 'EXHAUSTED', 'DAY_ROLLOVER',
  ]);
  t.same(h.rollovers, [{ day: '2025-06-04', settled: 200_000, budget: 200_000 }]);
});

t.test('the breaker is configurable per campaign', async (t) => {
  const h = harness(config({ strategy: 'ASAP', breaker: { tripAtFraction: 0.5, cooldownMs: 1_000, halfOpenSteps: [0.5, 1], halfOpenStepMs: 1_000 } }), t0);
  const c = h.campaign;
  c.decide(t0, 500_000, 'big', always, 60_000);
  t.equal(c.breaker.state, 'OPEN', 'tripped at 50%');
  t.equal(c.breaker.share(t0 + 1_000), 0.5);
  t.equal(c.breaker.share(t0 + 3_000), 1);
  t.equal(c.breaker.state, 'CLOSED');
});

t.test("campaigns share one breaker view: a transition's listener that reads another campaign's breaker does not move the transition", async (t) => {
  // Cooldown 0: the trip moves CLOSED → OPEN and, in the same call, OPEN → HALF_OPEN. Between the
  // two the listener reads the other campaign's breaker, which points the shared view at it.
  const cfg = (id: string): CampaignConfig => config({ id, strategy: 'ASAP', dailyBudgetMicros: budget, breaker: { cooldownMs: 0 } });
  const seen: string[] = [];
  let other: Campaign | null = null;
  const hooks: CampaignHooks = {
    globalProfile: new GlobalProfile(),
    onBreaker: (c, tr) => {
      seen.push(`${c.id} ${tr.from}→${tr.to} (other ${other!.breaker.state}, trips ${other!.breaker.trips})`);
    },
    onRollover: () => {},
  };
  const a = new Campaign(cfg('a'), t0, hooks);
  other = new Campaign(cfg('b'), t0, hooks);
  t.equal(a.decide(t0, 960_000, 'r1', always, 60_000), Reason.OK);
  t.same(seen, ['a CLOSED→OPEN (other CLOSED, trips 0)', 'a OPEN→HALF_OPEN (other CLOSED, trips 0)']);
  t.equal(a.breaker.state, 'HALF_OPEN', 'the trip ran to its end on the campaign that tripped');
  t.equal(a.breaker.trips, 1);
  t.same(a.breaker.events.map((e) => e.to), ['OPEN', 'HALF_OPEN']);
  t.equal(other.breaker.state, 'CLOSED', 'and nothing of it reached the other campaign');
  t.equal(other.breaker.trips, 0);
  t.same(other.breaker.events, []);
});

t.test('the velocity window sums the spend of every second in it, one second or many, and forgets spend older than it', async (t) => {
  // EVEN at noon, 1,000,000 micros a day: the guard trips above 10 × the planned spend of the
  // window (about 1,400 micros a minute here), and never below 1% of the budget (10,000). It is
  // checked on the control tick, at most once a second, which a decision or control() runs.
  const noonMs = iso('2025-06-04T12:00:00Z');
  const trips = (h: ReturnType<typeof harness>): number => h.transitions.filter((x) => x.reason === 'TRIP_VELOCITY').length;
  const spendAt = (h: ReturnType<typeof harness>, atMs: number, id: string, micros: number): void => {
    t.equal(h.campaign.decide(atMs, micros, id, always, 60_000), Reason.OK, `${id} allowed`);
    h.campaign.applySpend(atMs, micros, id);
  };
  const cfg = config({ strategy: 'EVEN', dailyBudgetMicros: budget });

  const one = harness(cfg, noonMs);
  spendAt(one, noonMs, 'a1', 8_000);
  spendAt(one, noonMs + 300, 'a2', 8_000);
  one.campaign.control(noonMs + 1_000);
  t.equal(trips(one), 1, 'two spends in the same second: 16,000 in the window trips');

  const two = harness(cfg, noonMs);
  spendAt(two, noonMs, 'b1', 8_000);
  two.campaign.control(noonMs + 1_000);
  t.equal(trips(two), 0, '8,000 alone is under 1% of the budget');
  spendAt(two, noonMs + 20_000, 'b2', 8_000);
  two.campaign.control(noonMs + 21_000);
  t.equal(trips(two), 1, 'spend in two seconds of the window adds up: 16,000 trips');

  const stale = harness(cfg, noonMs);
  spendAt(stale, noonMs, 'c1', 8_000);
  spendAt(stale, noonMs + 61_000, 'c2', 8_000);
  stale.campaign.control(noonMs + 62_000);
  t.equal(trips(stale), 0, 'a spend older than the window is forgotten: 8,000 in it, no trip');
  spendAt(stale, noonMs + 63_000, 'c3', 1_000);
  spendAt(stale, noonMs + 64_000, 'c4', 1_000);
  spendAt(stale, noonMs + 200_000, 'c5', 8_000);
  stale.campaign.control(noonMs + 201_000);
  t.equal(trips(stale), 0, 'nor after several seconds with spend went stale');
  spendAt(stale, noonMs + 202_000, 'c6', 8_000);
  stale.campaign.control(noonMs + 203_000);
  t.equal(trips(stale), 1, 'and a window that fills up again trips');
});
