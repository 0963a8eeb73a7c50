import type { Campaign } from '../../shards/campaign.js';
import { limits } from '../../shards/limits.js';
import type { BreakerTransition } from '../../shards/pacing/breaker.js';
import type { CounterStore, FlushBatch, FlushOutcome, ShardEvent, ShardPorts, Timers } from '../../shards/ports.js';
import { OpStatus, Reason } from '../../shards/reasons.js';
import { sfc32 } from '../../shards/rng.js';
import { Shard } from '../../shards/shard.js';
import type { DayCurve, DayShape } from '../../shards/pacing/day.js';
import type { Micros } from '../../shards/money.js';
import { activeIntervals } from '../../shards/time/schedule.js';
import { addDays, type DayBounds, dayBounds, type LocalDate, localToEpoch } from '../../shards/time/zone.js';
import type { CampaignMode, ScheduleWindow, Strategy } from '../../shards/types.js';
import { weekdays } from '../../shards/types.js';
import { DecideFlag, OpKind, OpWriter, ResultReader, SpendFlag } from '../../shards/wire.js';
import { parseCampaign } from '../model/campaign.js';
import type { ResilientCounterStore } from '../store/resilient.js';
import { settle } from './clock.js';
import { EventQueue } from './events.js';
import { FaultDriver } from './fault-driver.js';
import { type FaultPlan, type FaultReport, faultWorld, memoryBacking, type ScheduledFault, type SimBackingStore } from './faults.js';
import { Ledger, type SentSpend } from './ledger.js';
import { fitProfile, type MinuteTraffic, profileHalfLifeDaysDefault } from '../profile/fit.js';
import type { FittedProfile } from '../../shards/pacing/profile.js';
import { measure, type Measured } from './metrics.js';
import { builtinDiurnal, type DaySlots, daySlots, expectedRequests, poissonArrivals, type TrafficShape } from './traffic.js';

/**
 * The deterministic simulator: the production shard actor (shards/shard.ts) with a simulated
 * clock, a seeded generator, virtual timers and the in-memory store, fed binary op batches
 * exactly as the router feeds it, by seeded traffic. Everything random comes from two sfc32
 * streams derived from the seed (one the shard's port, one the traffic's), so a run replays
 * exactly from its options.
 */
export interface SimOptions {
  strategy: Strategy;
  /** Days simulated; earlier days are for learning, the report is of the last. */
  days: number;
  seed: number;
  timezone: string;
  /** The reported (last) day, local date YYYY-MM-DD. */
  date: string;
  traffic: TrafficShape;
  trafficScale: number;
  /** The daily budget, or null to take budgetFraction of what the traffic would spend unthrottled. */
  dailyBudgetMicros: number | null;
  budgetFraction: number;
  bidMicros: number;
  winRate: number;
  /** Median of the log-normal delay of win and loss notices; the tail reaches a minute. */
  winDelayMs: number;
  /** Share of lost auctions that send a loss notice (a release); the rest expire. */
  lossNoticeRate: number;
  /** Share of win notices the exchange sends twice. */
  duplicateRate: number;
  reservationTtlMs: number;
  frontLoadedShare: number;
  aheadPercent: number;
  hourlyWeights: number[] | null;
  /** Daily active window 'HH:MM-HH:MM' in local time (may run past midnight), or null for all day. */
  window: string | null;
  /** A campaign's weekly schedule as the API takes it; when given (not undefined) it replaces window (backtests). */
  schedule?: ScheduleWindow[] | null;
  breakerEnabled: boolean;
  /** Test hook: runs after every step, before the audit (fault injection). */
  onStep?: (campaign: Campaign, nowMs: number) => void;
  /** Store faults drawn from the seed (`--faults`), or null for a store that never fails. */
  faults: FaultPlan | null;
  /** Test hook: the store behind the faults (default: the production memory store). */
  backing?: () => SimBackingStore;
  /**
   * Local times 'HH:MM' at which the pacer restarts every day (`--restart-at`): the shard drains
   * (a graceful stop), its memory is dropped, and a new shard loads the counters from the store
   * and the profile fitted from the minute history, as a real restart does. Empty: none.
   */
  restartAt: string[];
  /** Half-life of the profile fit's decay (PACER_PROFILE_HALF_LIFE_DAYS). */
  profileHalfLifeDays: number;
  /**
   * A shadow strategy (`--shadow S`): computed for every decision in the same shard actor, never
   * enforced (shards/pacing/shadow.ts); the report's `shadow` holds its would-be figures.
   */
  shadow: Strategy | null;
  /** `--mode SHADOW`: every decision is allowed; the campaign's own strategy (or --shadow) runs as the shadow. */
  mode: CampaignMode;
  /** A fitted traffic profile the campaign holds from the start (`--profile FILE`; backtests), or none. */
  initialProfile?: FittedProfile | null;
}

/** The clearing price is a second-price fraction of the bid, uniform in this range. */
export const clearingFraction = { min: 0.5, max: 0.95 } as const;
/** Win and loss notices never arrive later than this (the tail of the log-normal is cut here). */
export const noticeDelayMaxMs = 60_000;
/** CUSTOM's hourly weights when none are given: a business-hours curve (quiet night, busy day). */
export const customDefaultWeights = [1, 1, 1, 1, 1, 1, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2];

export const simDefaults: SimOptions = {
  strategy: 'EVEN',
  days: 1,
  seed: 1,
  timezone: 'UTC',
  date: '2025-06-04',
  traffic: builtinDiurnal(),
  trafficScale: 1,
  dailyBudgetMicros: null,
  budgetFraction: 0.5,
  // A $2 CPM bid: 2,000 micros per impression.
  bidMicros: 2_000,
  // Open-exchange win rates are typically 10-30%.
  winRate: 0.2,
  winDelayMs: 1_000,
  lossNoticeRate: 0.3,
  duplicateRate: 0.01,
  reservationTtlMs: limits.reservationTtlMs,
  frontLoadedShare: 0.7,
  aheadPercent: 10,
  hourlyWeights: null,
  window: null,
  breakerEnabled: true,
  faults: null,
  restartAt: [],
  profileHalfLifeDays: profileHalfLifeDaysDefault,
  shadow: null,
  mode: 'ENFORCE',
};

/** The shadow's side of a simulated day (the reported one), measured as the real side is. */
export interface ShadowSimReport extends Measured {
  strategy: Strategy;
  decisions: number;
  /** Decisions the shadow would have allowed. */
  allowed: number;
  deniedByReason: Record<string, number>;
  /** Would-be spend: wins of bids the shadow allowed, plus estimates for bids only it would have made. */
  spentMicros: number;
  estimatedMicros: number;
  /** End of the minute in which would-be spend reached 99% of the budget (the day report's rule), or null. */
  exhaustedAtMs: number | null;
  /** Would-be spend per minute of the reported day, as the minute history holds it. */
  spentByMinute: number[];
}

export interface HourRow {
  /** Local clock time at the slot's start, HH:MM. */
  label: string;
  startMs: number;
  planMicros: number;
  spentMicros: number;
  requests: number;
  throttle: number;
}

/** One simulated day's pacing, measured as the reported day is (the daily table). */
export interface DayRow extends Measured {
  day: string;
  /** MON … SUN. */
  weekday: string;
  budgetMicros: number;
  /** Spend settled in the day (micros). */
  spentMicros: number;
  /** Breaker trips (TRIP_FRACTION, TRIP_VELOCITY) in the day. */
  breakerTrips: number;
}

export interface SimReport extends Measured {
  strategy: Strategy;
  days: number;
  seed: number;
  budgetMicros: number;
  spentMicros: number;
  breakerTrips: number;
  decisions: number;
  allowed: number;
  wins: number;
  maxExposureRatio: number;
  /** Restarts of --restart-at over all days. */
  restarts: number;
  mode: CampaignMode;
  /** With --shadow or --mode SHADOW: the shadow's figures of the reported day; else null. */
  shadow: ShadowSimReport | null;
  detail: {
    day: string;
    timezone: string;
    traffic: string;
    dayStartMs: number;
    dayEndMs: number;
    unthrottledMicros: number;
    hours: HourRow[];
    /** Per minute of the reported day: cumulative spend and plan (micros), throttle. */
    minutes: { spent: number; plan: number; throttle: number }[];
    breakerEvents: BreakerTransition[];
    deniedByReason: Record<string, number>;
    lateEvents: number;
    lateMicros: number;
    duplicateEvents: number;
    expiredReservations: number;
    auditedSteps: number;
    /** Every simulated day, the reported one last, each against its own plan. */
    daily: DayRow[];
    /** What the store faults did and what the auditor measured through them (null without faults). */
    faults: FaultReport | null;
  };
}

/**
 * The store as the shard sees it, counting calls in flight so the simulator can let them finish
 * before the next step. Without faults every call completes in microtasks; with faults a call may
 * wait for a simulated timer (a deadline, a late reply), so idle() only lets the microtasks run
 * (settle()), and the loop also calls it after every timer.
 */
class SimStore implements CounterStore {
  readonly kind: string;
  private inFlight = 0;
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly target: CounterStore,
    private readonly faulted: boolean,
  ) {
    this.kind = target.kind;
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }

  apply(batch: FlushBatch): Promise<FlushOutcome> {
    const p = this.target.apply(batch);
    this.inFlight++;
    // Registered before the flusher awaits p, so the flusher's continuation runs before ours.
    this.last = p.then(
      () => void this.inFlight--,
      () => void this.inFlight--,
    );
    return p;
  }

  async idle(): Promise<void> {
    if (this.faulted) return settle();
    while (this.inFlight > 0) await this.last;
  }

  load(campaignId: string, day: string, flightStartDay: string | null) {
    return this.target.load(campaignId, day, flightStartDay);
  }

  async close(): Promise<void> {}
}

function parseDate(s: string): LocalDate {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m === null) throw new Error(`date must be YYYY-MM-DD (got ${JSON.stringify(s)})`);
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
}

function parseWindow(w: string): ScheduleWindow[] {
  const m = /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(w);
  if (m === null) throw new Error(`window must be HH:MM-HH:MM (got ${JSON.stringify(w)})`);
  return [{ days: [...weekdays], start: m[1]!, end: m[2]! }];
}

/** Standard normal from two uniforms (Box–Muller). */
function gaussian(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export async function simulate(options: Partial<SimOptions> = {}): Promise<SimReport> {
  const o: SimOptions = { ...simDefaults, ...options };
  const campaignId = 'sim-campaign';
  const reportDate = parseDate(o.date);
  const days: DayBounds[] = [];
  for (let i = o.days - 1; i >= 0; i--) {
    const date = addDays(reportDate, -i);
    days.push(dayBounds(o.timezone, localToEpoch(o.timezone, date, 0)));
  }
  const slots: DaySlots[] = days.map((d) => daySlots(o.traffic, o.trafficScale, o.timezone, d));
  const lastDay = days[days.length - 1]!;
  const meanPrice = o.bidMicros * ((clearingFraction.min + clearingFraction.max) / 2);
  // What the traffic would spend unthrottled in the reported day's active minutes.
  const schedule = o.schedule !== undefined ? o.schedule : o.window === null ? null : parseWindow(o.window);
  const active = activeIntervals(o.timezone, lastDay, schedule, null, null);
  const unthrottledMicros = Math.round(expectedRequests(slots[slots.length - 1]!, active) * o.winRate * meanPrice);
  const budget = o.dailyBudgetMicros ?? Math.max(1, Math.round(o.budgetFraction * unthrottledMicros));

  // Production validation turns the options into the campaign the shard receives.
  const config = parseCampaign(
    {
      id: campaignId,
      dailyBudgetMicros: budget,
      timezone: o.timezone,
      strategy: o.strategy,
      frontLoadedShare: o.frontLoadedShare,
      aheadPercent: o.aheadPercent,
      hourlyWeights: o.strategy === 'CUSTOM' ? (o.hourlyWeights ?? customDefaultWeights) : o.hourlyWeights,
      schedule,
      breaker: { enabled: o.breakerEnabled },
      mode: o.mode,
      shadow: o.shadow === null ? null : { strategy: o.shadow, ...(o.shadow === 'CUSTOM' ? { hourlyWeights: o.hourlyWeights ?? customDefaultWeights } : {}) },
    },
    1,
  );
  const shadowed = o.shadow !== null || o.mode === 'SHADOW';

  // ---- the world around the shard --------------------------------------------------------------
  let now = days[0]!.startMs;
  const queue = new EventQueue();
  const ledger = new Ledger(o.seed);
  ledger.unenforced = o.mode === 'SHADOW';
  const traffic = sfc32(o.seed, 0x7a3f1c55, 0x1b873593, 0xcc9e2d51);
  const breakerEvents: BreakerTransition[] = [];
  const reader = new ResultReader();
  const sentSpends = new Map<number, SentSpend>();
  /** Timers on the simulated clock; those of a generation that died (a restart) never fire. */
  let generation = 0;
  const timersOf = (gen: number | null): Timers => ({
    after(delayMs, fn) {
      const run = gen === null ? fn : () => gen === generation && fn();
      const e = { kind: 'timer' as const, t: now + Math.max(0, Math.ceil(delayMs)), seq: queue.nextSeq(), fn: run, cancelled: false };
      queue.push(e);
      return () => {
        e.cancelled = true;
      };
    },
  });
  const world = o.faults === null ? null : faultWorld(o.seed, o.faults, o.backing ?? memoryBacking, () => now, timersOf(null));
  const memory = world === null ? (o.backing ?? memoryBacking)() : null;
  /** The store the auditor reads (behind the faults, the current backing store). */
  const audited = (): SimBackingStore => world?.faulty.backing ?? memory!;
  const checkStore = (c: Campaign): void =>
    world === null ? ledger.checkStore(c, audited(), now) : ledger.checkStoreBound(c, audited(), now);

  /**
   * The first audit failure raised inside the shard's callbacks (answers arrive from the flusher's
   * promise chain, where a throw would become an unhandled rejection): rethrown by the loop.
   */
  let failure: unknown = null;
  const guarded =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A): void => {
      if (failure !== null) return;
      try {
        fn(...args);
      } catch (err) {
        failure = err;
      }
    };
  const rethrow = (): void => {
    if (failure !== null) throw failure;
  };
  const answer = (results: ArrayBuffer): void => {
    reader.reset(results);
    while (reader.next()) {
      if (reader.kind !== OpKind.SPEND) ledger.fail(`a late result of kind ${reader.kind}`, now);
      const s = sentSpends.get(reader.slot);
      if (s === undefined) return ledger.fail(`an answer for unknown slot ${reader.slot}`, now);
      sentSpends.delete(reader.slot);
      const want = s.duplicate ? OpStatus.DUPLICATE : OpStatus.APPLIED;
      // The spool answers a resend of an event that reached the store before the outage "applied"
      // (it cannot tell it from a new one) and corrects memory when it replays (docs/storage.md).
      const spoolAnsweredDuplicate = world !== null && s.duplicate && s.inMemory && reader.code === OpStatus.APPLIED;
      if (reader.code !== want && !spoolAnsweredDuplicate) ledger.fail(`event ${s.eventId} answered ${reader.code}, expected ${want}`, now);
      if (!s.duplicate) {
        const flag = s.matched ? SpendFlag.MATCHED_RESERVATION : SpendFlag.UNMATCHED;
        if ((reader.flags & flag) === 0) ledger.fail(`event ${s.eventId} flags ${reader.flags}, expected ${flag}`, now);
      }
      ledger.answered(s, reader.code === OpStatus.APPLIED, now);
      if (reader.code === OpStatus.APPLIED) driver?.acknowledged();
    }
    checkStore(campaign);
  };

  /** One life of the pacer process: its shard, and (with faults) its resilient store and spool. */
  const start = async (gen: number): Promise<{ shard: Shard; campaign: Campaign; store: SimStore; resilient: ResilientCounterStore | null }> => {
    const alive = (): boolean => gen === generation;
    const resilient = world === null ? null : world.resilientStore(gen, timersOf(gen), alive);
    const store = new SimStore(resilient ?? memory!, world !== null);
    const ports: ShardPorts = {
      clock: { now: () => now },
      random: gen === 0 ? sfc32(o.seed) : sfc32(o.seed, gen, 0x5eed, 0x2545f491),
      timers: timersOf(gen),
      store,
      sendResults: guarded((results: ArrayBuffer) => alive() && answer(results)),
      emit: guarded((event: ShardEvent) => {
        if (!alive()) return;
        if (event.type === 'breaker') breakerEvents.push(event.transition);
        if (event.type === 'fault') ledger.fail(`shard fault: ${event.message}`, now);
      }),
      batchIdPrefix: gen === 0 ? `sim:${o.seed}` : `sim:${o.seed}:${gen}`,
    };
    const shard = new Shard(ports, { reservationTtlMs: o.reservationTtlMs, flushIntervalMs: limits.flushIntervalMs });
    if (resilient !== null) {
      resilient.onLateDuplicate = guarded((id: string, day: string, amount: number) => {
        if (!alive()) return;
        shard.revertLateDuplicate(id, day, amount);
        ledger.corrected(day, amount, now);
        world!.report.lateDuplicateCorrections++;
      });
    }
    await shard.upsert(config);
    const found = shard.campaigns.get(campaignId);
    if (found === undefined) throw new Error('the shard did not create the campaign');
    return { shard, campaign: found, store, resilient };
  };
  let { shard, campaign, store, resilient } = await start(0);
  // A profile fitted before the first day (a backtest's history before its range): as the admin sends it at startup.
  if (o.initialProfile) await shard.loadProfiles([{ campaignId, profile: o.initialProfile }], null);

  // ---- traffic ----------------------------------------------------------------------------------
  // Flattened slots of all days: a Poisson process with a piecewise-constant rate.
  const nextArrival = poissonArrivals(slots, lastDay.endMs, traffic);
  const sigma = o.winDelayMs > 0 ? Math.log(noticeDelayMaxMs / Math.min(o.winDelayMs, noticeDelayMaxMs)) / 3.09 : 0;
  const noticeDelay = (): number =>
    o.winDelayMs <= 0 ? 0 : Math.min(noticeDelayMaxMs, Math.max(1, Math.round(o.winDelayMs * Math.exp(sigma * gaussian(traffic)))));

  // ---- the reported day's measurements ---------------------------------------------------------
  const reportStart = lastDay.startMs;
  const minuteCount = Math.ceil((lastDay.endMs - reportStart) / 60_000);
  // Spend by minute of every day (the daily table); the reported day's is the last.
  const spentByDay = days.map((d) => new Float64Array(Math.ceil((d.endMs - d.startMs) / 60_000)));
  const spentByMinute = spentByDay[spentByDay.length - 1]!;
  // The last plan the campaign held on each day: each day is measured against its own curve.
  /** Each day's curve and budget, as the campaign last planned them that day. */
  const plans = new Map<string, DayCurve>();
  let lastShape: DayShape | null = null;
  let lastBudget: Micros | null = null;
  const throttleByMinute = new Float64Array(minuteCount).fill(NaN);
  let decisions = 0;
  let wins = 0;
  let maxReserved = 0;
  let nextMinuteSample = reportStart;
  const dayIndexAt = (t: number): number => {
    for (let i = days.length - 1; i >= 0; i--) if (t >= days[i]!.startMs) return i;
    return 0;
  };

  // ---- the loop -----------------------------------------------------------------------------------
  const writer = new OpWriter();
  const batchDecides: (string | null)[] = [];
  const releaseWanted = new Map<number, number>();
  let nextSlot = 0;
  let requestSeq = 0;
  let eventSeq = 0;
  let steps = 0;
  let arrival = nextArrival(now);
  // The shard sweeps expired reservations every reservationSweepMs (src/shard/host.ts). A sweep
  // with nothing due changes nothing, so the loop visits only the grid points at which the
  // ledger has a reservation due: the same outcome, a third fewer steps.
  const sweepOrigin = now;
  const sweepMs = limits.reservationSweepMs;
  const nextSweepAfter = (t: number): number => {
    const due = Math.max(t + 1, ledger.nextExpiryMs());
    return due === Infinity ? Infinity : sweepOrigin + Math.ceil((due - sweepOrigin) / sweepMs) * sweepMs;
  };
  let nextSweep = Infinity;
  const endMs = lastDay.endMs;
  const timersDue: (() => void)[] = [];
  const faultsDue: ScheduledFault[] = [];
  const driver =
    world === null
      ? null
      : new FaultDriver(world, o.faults!, {
          campaignId,
          queue,
          ledger,
          sentSpends,
          now: () => now,
          advanceTo: (t) => {
            now = Math.max(now, t);
          },
          resilient: () => resilient!,
          kill: () => void generation++,
          async startNextLife() {
            ({ shard, campaign, store, resilient } = await start(generation));
            return campaign;
          },
          replanSweeps: () => {
            nextSweep = nextSweepAfter(now);
          },
        });
  driver?.schedule(days[0]!.startMs, endMs);

  // ---- restarts at fixed local times (--restart-at) and the minute history they fit from -------
  if (o.restartAt.length > 0 && world !== null) throw new Error('restarts at fixed times (restartAt) and store faults do not combine');
  const restartTimes: number[] = [];
  for (const hhmm of o.restartAt) {
    const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
    if (m === null) throw new Error(`a restart time must be HH:MM (got ${JSON.stringify(hhmm)})`);
    for (const d of days) {
      const at = localToEpoch(o.timezone, d.date, Number(m[1]) * 60 + Number(m[2]));
      if (at > days[0]!.startMs && at >= d.startMs && at < d.endMs) restartTimes.push(at);
    }
  }
  restartTimes.sort((a, b) => a - b);
  let nextRestart = restartTimes.shift() ?? Infinity;
  let restarts = 0;
  // The rows the admin thread would write: the shard's summaries, collected every minute.
  const history: MinuteTraffic[] = [];
  // The shadow's figures come from the summaries too, as the admin's minute history takes them.
  let nextHistoryMs = o.restartAt.length > 0 || shadowed ? days[0]!.startMs + 60_000 : Infinity;
  const shadowByMinute = new Float64Array(minuteCount);
  const shadowCounts = { decisions: 0, allowed: 0, estimatedMicros: 0, deniedByReason: {} as Record<string, number> };
  const collectHistory = (minuteMs: number): void => {
    for (const sum of shard.summaries()) {
      history.push({ minuteMs, decisions: sum.decisions, breakerState: sum.breakerState, deniedByReason: sum.deniedByReason });
      const s = sum.shadow;
      const m = Math.floor((minuteMs - reportStart) / 60_000);
      if (s === undefined || m < 0 || m >= minuteCount) continue;
      shadowByMinute[m]! += s.settledMicros;
      shadowCounts.decisions += s.decisions;
      shadowCounts.allowed += s.allowed;
      shadowCounts.estimatedMicros += s.estimatedMicros;
      for (const [k, v] of Object.entries(s.deniedByReason)) shadowCounts.deniedByReason[k] = (shadowCounts.deniedByReason[k] ?? 0) + v;
    }
  };
  const restart = async (): Promise<void> => {
    // A graceful stop: the shard writes what it holds, the admin its last summaries.
    await shard.drain();
    await store.idle();
    rethrow();
    if (sentSpends.size > 0) ledger.fail(`${sentSpends.size} spends unanswered after the drain before a restart`, now);
    collectHistory(Math.floor(now / 60_000) * 60_000);
    generation++;
    restarts++;
    ({ shard, campaign, store, resilient } = await start(generation));
    const fitted = fitProfile(history, o.timezone, now, o.profileHalfLifeDays);
    if (fitted !== null) await shard.loadProfiles([{ campaignId, profile: fitted }], null);
    const snapshot = await memory!.load(campaignId, campaign.day.bounds.key, null);
    ledger.restarted(snapshot.reservations, now);
    nextSweep = nextSweepAfter(now);
  };

  for (;;) {
    const ta = Math.floor(arrival);
    const t = Math.min(ta, queue.peekTime(), nextSweep, nextRestart, nextHistoryMs);
    if (t >= endMs) break;
    now = t;
    const onReportDay = t >= reportStart;

    // Every operation due now goes to the shard in one batch, as the router sends a turn's worth.
    const base = nextSlot;
    batchDecides.length = 0;
    releaseWanted.clear();
    while (Math.floor(arrival) === t) {
      const requestId = `r${(requestSeq++).toString(36)}`;
      writer.decide(nextSlot++, campaignId, o.bidMicros, requestId);
      batchDecides.push(requestId);
      arrival = nextArrival(arrival);
      if (onReportDay) decisions++;
    }
    while (queue.peekTime() === t) {
      const e = queue.pop()!;
      switch (e.kind) {
        case 'timer':
          if (!e.cancelled) timersDue.push(e.fn);
          break;
        case 'fault':
          faultsDue.push(e.fault);
          break;
        case 'spend': {
          const di = dayIndexAt(t);
          const day = days[di]!.key;
          const sent = ledger.spend(e.eventId, e.requestId, e.amount, day);
          sentSpends.set(nextSlot, sent);
          writer.spend(nextSlot++, campaignId, e.amount, e.eventId, e.requestId);
          batchDecides.push(null);
          if (!sent.duplicate && e.resent !== true) {
            if (day === lastDay.key) wins++;
            const m = Math.floor((t - days[di]!.startMs) / 60_000);
            spentByDay[di]![m]! += e.amount;
          }
          break;
        }
        case 'release': {
          // The ledger follows the batch in op order, as the shard does; the answer is checked below.
          releaseWanted.set(nextSlot, ledger.release(e.requestId) ? OpStatus.RELEASED : OpStatus.NOT_FOUND);
          writer.release(nextSlot++, campaignId, e.requestId);
          batchDecides.push(e.requestId);
          break;
        }
        default: {
          const bad: never = e;
          throw new RangeError(`unknown event ${String(bad)}`);
        }
      }
    }
    if (writer.count > 0) {
      reader.reset(shard.handleOps(writer.take()));
      while (reader.next()) {
        const id = batchDecides[reader.slot - base] ?? null;
        if (reader.kind === OpKind.DECIDE) {
          if (id === null) return ledger.fail(`a decide answer for slot ${reader.slot} that was no decide`, t);
          if (reader.code === Reason.OK) {
            if ((reader.flags & DecideFlag.RESERVED) === 0) ledger.fail(`allowed ${id} without a reservation`, t);
            ledger.reserve(id, o.bidMicros, t + o.reservationTtlMs, t);
            if (traffic() < o.winRate) {
              const f = clearingFraction.min + (clearingFraction.max - clearingFraction.min) * traffic();
              const price = Math.max(1, Math.floor(o.bidMicros * f));
              const eventId = `e${(eventSeq++).toString(36)}`;
              const at = t + noticeDelay();
              queue.push({ kind: 'spend', t: at, seq: queue.nextSeq(), requestId: id, eventId, amount: price });
              if (traffic() < o.duplicateRate) {
                queue.push({ kind: 'spend', t: at + noticeDelay(), seq: queue.nextSeq(), requestId: id, eventId, amount: price });
              }
            } else if (traffic() < o.lossNoticeRate) {
              queue.push({ kind: 'release', t: t + noticeDelay(), seq: queue.nextSeq(), requestId: id });
            }
          }
        } else if (reader.kind === OpKind.RELEASE) {
          const want = releaseWanted.get(reader.slot);
          if (id === null || want === undefined) return ledger.fail(`a release answer for slot ${reader.slot} that was no release`, t);
          if (reader.code !== want) ledger.fail(`release of ${id} answered ${reader.code}, expected ${want}`, t);
        } else {
          ledger.fail(`a spend answered before its flush (status ${reader.code})`, t);
        }
      }
      if (store.busy) await store.idle();
    }
    for (const fn of timersDue) {
      fn();
      // With faults a timer may also have set off work that is not a call of this life's shard
      // (a late reply, the spool's replay), so its promises always get to run.
      if (store.busy || world !== null) await store.idle();
    }
    timersDue.length = 0;
    for (const f of faultsDue) await driver!.run(f);
    faultsDue.length = 0;
    // Reservations are added in expiry order, so the first one's expiry only moves later: a sweep
    // planned for it may find nothing (harmless), and is re-planned after each sweep.
    if (nextSweep === t) {
      shard.sweep();
      ledger.expire(t);
      nextSweep = nextSweepAfter(t);
    } else if (nextSweep === Infinity) {
      nextSweep = nextSweepAfter(t);
    }

    if (onReportDay) {
      if (ledger.reservedSum > maxReserved) maxReserved = ledger.reservedSum;
      while (nextMinuteSample <= t) {
        const m = Math.floor((nextMinuteSample - reportStart) / 60_000);
        if (m < minuteCount) throttleByMinute[m] = campaign.controller.throttle * campaign.breaker.share(t);
        nextMinuteSample += 60_000;
      }
    }
    if (t === nextHistoryMs) {
      collectHistory(t - 60_000);
      nextHistoryMs += 60_000;
    }
    if (t === nextRestart) {
      await restart();
      nextRestart = restartTimes.shift() ?? Infinity;
    }
    if (campaign.day !== lastShape || campaign.budget !== lastBudget) {
      lastShape = campaign.day;
      lastBudget = campaign.budget;
      plans.set(lastShape.bounds.key, { curve: lastShape.curve, budgetMicros: campaign.budget });
    }
    rethrow();
    o.onStep?.(campaign, t);
    ledger.check(campaign, t);
    if (world !== null && world.report.errors.length > 0) ledger.fail(`the resilient store logged: ${world.report.errors[0]}`, t);
    if (++steps % 4096 === 0) campaign.checkInvariants();
  }
  await driver?.drain(rethrow);
  now = Math.max(now, endMs - 1);
  await shard.drain();
  await store.idle();
  rethrow();
  if (shadowed) collectHistory(Math.min(Math.floor(now / 60_000) * 60_000, lastDay.endMs - 60_000));
  ledger.checkFinal(campaign, audited(), now);
  driver?.finish();

  // ---- the report -------------------------------------------------------------------------------
  if (campaign.day.bounds.key !== lastDay.key) campaign.refresh(lastDay.endMs - 1);
  const status = campaign.status(lastDay.endMs - 1);
  // Spend a lossy store restart dropped was spent all the same.
  const spent = ledger.day(lastDay.key).settled + ledger.day(lastDay.key).lost;
  const measured = measure({
    curve: campaign.day.curve,
    budget: campaign.budget,
    dayStartMs: reportStart,
    dayEndMs: lastDay.endMs,
    spentByMinute,
  });
  // A day without a single step (no traffic at all) has no plan of its own and is left out.
  const daily: DayRow[] = [];
  days.forEach((d, i) => {
    const plan = i === days.length - 1 ? { curve: campaign.day.curve, budgetMicros: campaign.budget } : plans.get(d.key);
    if (plan === undefined) return;
    const m = measure({ curve: plan.curve, budget: plan.budgetMicros, dayStartMs: d.startMs, dayEndMs: d.endMs, spentByMinute: spentByDay[i]! });
    const spentMicros = spentByDay[i]!.reduce((a, x) => a + x, 0);
    const dayTrips = breakerEvents.filter((e) => e.atMs >= d.startMs && e.atMs < d.endMs && (e.reason === 'TRIP_FRACTION' || e.reason === 'TRIP_VELOCITY')).length;
    daily.push({ day: d.key, weekday: weekdays[d.weekday]!, budgetMicros: plan.budgetMicros, spentMicros, breakerTrips: dayTrips, ...m });
  });
  const trips = breakerEvents.filter((e) => e.atMs >= reportStart && (e.reason === 'TRIP_FRACTION' || e.reason === 'TRIP_VELOCITY')).length;
  return {
    strategy: o.strategy,
    days: o.days,
    seed: o.seed,
    budgetMicros: campaign.budget,
    spentMicros: spent,
    ...measured,
    breakerTrips: trips,
    decisions,
    allowed: status.counters.allowed,
    wins,
    maxExposureRatio: maxReserved / campaign.budget,
    restarts,
    mode: o.mode,
    shadow: shadowed ? shadowReport(campaign, reportStart, lastDay.endMs, shadowByMinute, shadowCounts) : null,
    detail: {
      day: lastDay.key,
      timezone: o.timezone,
      traffic: o.traffic.source,
      dayStartMs: reportStart,
      dayEndMs: lastDay.endMs,
      unthrottledMicros,
      hours: hourRows(o.timezone, campaign, reportStart, lastDay.endMs, spentByMinute, throttleByMinute, slots[slots.length - 1]!),
      minutes: minuteRows(campaign, reportStart, spentByMinute, throttleByMinute),
      breakerEvents: breakerEvents.filter((e) => e.atMs >= reportStart),
      deniedByReason: status.counters.deniedByReason,
      lateEvents: ledger.lateEvents,
      lateMicros: ledger.day(lastDay.key).late,
      duplicateEvents: ledger.duplicates,
      expiredReservations: status.counters.expiredReservations,
      auditedSteps: steps,
      daily,
      faults: world?.report ?? null,
    },
  };
}

export function shadowReport(
  c: Campaign,
  dayStartMs: number,
  dayEndMs: number,
  spentByMinute: Float64Array,
  counts: { decisions: number; allowed: number; estimatedMicros: number; deniedByReason: Record<string, number> },
): ShadowSimReport {
  const sim = c.shadow!.sim;
  let spent = 0;
  let exhaustedAtMs: number | null = null;
  for (let i = 0; i < spentByMinute.length; i++) {
    spent += spentByMinute[i]!;
    if (exhaustedAtMs === null && c.budget > 0 && spent >= 0.99 * c.budget) exhaustedAtMs = Math.min(dayEndMs, dayStartMs + (i + 1) * 60_000);
  }
  return {
    strategy: sim.config.strategy,
    ...measure({ curve: sim.day.curve, budget: c.budget, dayStartMs, dayEndMs, spentByMinute }),
    ...counts,
    spentMicros: spent,
    exhaustedAtMs,
    spentByMinute: [...spentByMinute],
  };
}

function hourRows(
  timeZone: string,
  c: Campaign,
  startMs: number,
  endMs: number,
  spentByMinute: Float64Array,
  throttleByMinute: Float64Array,
  slots: DaySlots,
): HourRow[] {
  const rows: HourRow[] = [];
  const fmt = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  for (let s = startMs, k = 0; s < endMs; s += 3_600_000, k++) {
    const e = Math.min(endMs, s + 3_600_000);
    let spent = 0;
    let thr = 0;
    let n = 0;
    for (let m = k * 60; m < Math.min(spentByMinute.length, (k + 1) * 60); m++) {
      spent += spentByMinute[m]!;
      if (!Number.isNaN(throttleByMinute[m]!)) {
        thr += throttleByMinute[m]!;
        n++;
      }
    }
    let requests = 0;
    for (let i = 0; i < slots.ratesPerMs.length; i++) {
      const a = Math.max(s, slots.starts[i]!);
      const b = Math.min(e, slots.starts[i + 1]!);
      if (b > a) requests += slots.ratesPerMs[i]! * (b - a);
    }
    rows.push({
      label: fmt.format(s),
      startMs: s,
      planMicros: c.budget * (c.day.curve.fraction(e) - c.day.curve.fraction(s)),
      spentMicros: spent,
      requests,
      throttle: n > 0 ? thr / n : 0,
    });
  }
  return rows;
}

function minuteRows(c: Campaign, startMs: number, spentByMinute: Float64Array, throttleByMinute: Float64Array) {
  const out: { spent: number; plan: number; throttle: number }[] = [];
  let cum = 0;
  let last = 0;
  for (let m = 0; m < spentByMinute.length; m++) {
    cum += spentByMinute[m]!;
    if (!Number.isNaN(throttleByMinute[m]!)) last = throttleByMinute[m]!;
    out.push({ spent: cum, plan: c.budget * c.day.curve.fraction(startMs + (m + 1) * 60_000), throttle: last });
  }
  return out;
}
