import { breakerAt, breakerIntsAt, controllerAt, defaultColumns, intsAt, deniedWidth, hourCountMax, hourCountsWidth, NONE, orNone, orNull, type ShardColumns } from './columns.js';
import type { Lease } from './lease.js';
import { limits } from './limits.js';
import { add, assert, micros, remaining, sub, ZERO, type Micros } from './money.js';
import { Breaker, type BreakerHost, type BreakerTransition, initBreakerRow, noBreakerEvents, type ResetReason } from './pacing/breaker.js';
import { Controller } from './pacing/controller.js';
import { buildDayShape, dailyAllowance, type DayShape } from './pacing/day.js';
import type { FittedProfile, GlobalProfile } from './pacing/profile.js';
import type { Shadow } from './pacing/shadow.js';
import { TrafficProfile } from './pacing/profile.js';
import { pacingTuning } from './pacing/tuning.js';
import { Reason, type ReasonCode, reasonNames } from './reasons.js';
import { contains, nextBoundary } from './time/schedule.js';
import { dayBounds } from './time/zone.js';
import type { BreakerConfig, BreakerEvent, CampaignConfig, CampaignStatus } from './types.js';
import { DecideFlag, SpendFlag } from './wire.js';
import { CompactConfig, settingsOf, type Settings } from './intern.js';
import type { ExpiryQueue } from './expiry.js';

export interface Reservation {
  amount: Micros;
  expiresAtMs: number;
  /** For the shard's expiry queue (shards/expiry.ts): whose reservation it is, and its place there (-1: not queued). */
  readonly campaign: Campaign;
  readonly requestId: string;
  slot: number;
}

export interface SettledReservation {
  requestId: string;
  reservation: Reservation;
  hold: Micros;
}

/**
 * Counters of one campaign since a point in time (today, or the last history summary). The denials
 * by reason are allocated on the first denial: a campaign that allows everything, or has no
 * traffic, holds none (memory per campaign, bench/README.md "Where the memory goes").
 */
export class Counters {
  decisions = 0;
  allowed = 0;
  /** Denials by reason code (index = Reason); null until the first denial. */
  denied: number[] | null = null;
  spendEvents = 0;
  settledMicros = 0;
  duplicateEvents = 0;
  unmatchedEvents = 0;
  overBidEvents = 0;
  expiredReservations = 0;

  reset(): void {
    this.decisions = 0;
    this.allowed = 0;
    this.denied = null;
    this.spendEvents = 0;
    this.settledMicros = 0;
    this.duplicateEvents = 0;
    this.unmatchedEvents = 0;
    this.overBidEvents = 0;
    this.expiredReservations = 0;
  }

  deny(reason: ReasonCode): void {
    const d = (this.denied ??= new Array<number>(reasonNames.length).fill(0));
    d[reason]!++;
  }

  deniedByReason(): Record<string, number> {
    const out: Record<string, number> = {};
    const d = this.denied;
    if (d === null) return out;
    for (let i = 1; i < d.length; i++) if (d[i]! > 0) out[reasonNames[i]!] = d[i]!;
    return out;
  }
}


/** Nothing counted: what `today` and `sinceSummary` read as before their first count. */
const noCounters: Readonly<Counters> = Object.freeze(new Counters());

/** No reservations: what `reservations` reads as before a campaign's first one. */
const noReservations: ReadonlyMap<string, Reservation> = new Map();

/**
 * The controller's traffic forecast is computed into this buffer on every control tick and read
 * only during that tick (Controller.update keeps no reference), so one buffer serves every
 * campaign of the thread instead of 24 numbers each.
 */
const forecastScratch = new Float64Array(24);

/** The view every campaign's `controller` returns, pointed at that campaign's row (see Campaign.controller). */
const controllerView = new Controller();

/**
 * What few campaigns have, in one object made when the first of it is set, instead of a field each
 * in every campaign: a store fault, a shadow, the breaker's last transitions.
 */
class Extras {
  countersFault: string | null = null;
  shadow: Shadow | null = null;
  breakerEvents: readonly BreakerEvent[] = noBreakerEvents;
  /** The campaign's name when it is not its ID (the default). */
  name: string | null = null;
  /** See Campaign.lease. */
  lease: Lease | null = null;
  /** See Campaign.vel. */
  vel: number[] | null = null;
}

/**
 * The reservation the thread's last applySpend settled, and the campaign whose it is (see
 * Campaign.takeLastSettled): one slot per thread instead of a field in every campaign, since the
 * caller takes it right after the spend.
 */
let settledBy: Campaign | null = null;
let settledLast: SettledReservation | null = null;

/** The view every campaign's `breaker` returns, pointed at that campaign (see Campaign.breaker). */
const breakerView = new Breaker();

export interface CampaignHooks {
  /** The shard's columns, where its campaigns keep their numbers (shards/columns.ts); default: the thread's. */
  columns?: ShardColumns;
  onBreaker(campaign: Campaign, transition: BreakerTransition): void;
  /** Live reservations of every campaign of the shard, kept by the campaigns (limits.reservationsPerShardMax). */
  liveReservations?: { count: number };
  onRollover(campaign: Campaign, endedDay: string, settled: Micros, budget: Micros): void;
  /** The shard's traffic profile, ADAPTIVE's fallback. */
  globalProfile: GlobalProfile;
  /** The shard's reservations by expiry time; the campaigns queue theirs and take them out when they go. */
  expiries?: ExpiryQueue;
}

/** Hooks with the columns and the live-reservation count resolved (the thread's columns and a count of their own by default). */
type CompleteHooks = CampaignHooks & { columns: ShardColumns; liveReservations: { count: number } };
const completed = new WeakMap<CampaignHooks, CompleteHooks>();
function complete(hooks: CampaignHooks): CompleteHooks {
  if (hooks.columns !== undefined && hooks.liveReservations !== undefined) return hooks as CompleteHooks;
  let c = completed.get(hooks);
  if (c === undefined) completed.set(hooks, (c = { ...hooks, columns: hooks.columns ?? defaultColumns(), liveReservations: hooks.liveReservations ?? { count: 0 } }));
  return c;
}

const velocityBuckets = pacingTuning.velocityBuckets;

/**
 * Offsets of a campaign's own doubles in its row (shards/columns.ts, campaignOwnWidth of them; the
 * controller's and breaker's follow, then the row's 32-bit integers). Null is NaN
 * (LAST_CONTROL_MS, MUTED_FROM_MS), money integer micros (a Float64 holds every safe integer
 * exactly).
 */
const SETTLED = 0;
const RESERVED = 1;
const LIFETIME_BEFORE = 2;
const PACING_INDEX = 3;
const PLAN_MICROS = 4;
const HELD = 5;
const MIN_BID_MICROS = 6;
const VALID_UNTIL_MS = 7;
const NEXT_CONTROL_MS = 8;
const LAST_CONTROL_MS = 9;
const PRESENT_SINCE_MS = 10;
const MUTED_FROM_MS = 11;
const CTL_SETTLED = 12;
const RHO_NUM = 13;
const RHO_DEN = 14;
/** Today's budget in micros (the day plan's allowance: the daily budget, or today's share of a lifetime budget). */
const BUDGET = 15;
/**
 * The velocity window's spend while it holds one second with spend (see `vel`): the second, NaN
 * for none, and its micros. A second second with spend moves both to `vel`.
 */
const VEL_SECOND = 16;
const VEL_MICROS = 17;
/**
 * The configuration's own numbers (the rest of it is the shared Settings, `s`): the daily budget,
 * the flight (NaN: open), the lifetime budget (NaN: none) and the version.
 */
const DAILY_BUDGET = 18;
const START_AT_MS = 19;
const END_AT_MS = 20;
const LIFETIME_BUDGET = 21;
const VERSION = 22;

/**
 * Offsets of the campaign's integers in the 32-bit part of its row (`i`, from `ix`): flags and
 * codes, counts within one control tick, and row numbers of other pools. A boolean is 0 or 1.
 */
const LAST_FLAGS = 0;
const LAST_RESERVED_NEW = 1;
const INACTIVE = 2;
const HOUR = 3;
const CTL_DECISIONS = 4;
const CTL_ALLOWED = 5;
const CTL_SPEND_EVENTS = 6;
/** Rows of today's counters and of the counters since the last summary in the counters pool; -1: none. */
const TODAY_ROW = 7;
const SINCE_ROW = 8;
/**
 * Today's traffic counts while the campaign has no profile (its first day with traffic): a row of
 * the hour counts pool, handed to the profile when one is made (the rollover makes it); -1: none.
 */
const COUNTS_ROW = 9;

/** Offsets in a counters row (countersWidth): the counts of Counters, and the row of its denials (-1: none). */
const C_DECISIONS = 0;
const C_ALLOWED = 1;
const C_SPEND_EVENTS = 2;
const C_SETTLED_MICROS = 3;
const C_DUPLICATE_EVENTS = 4;
const C_UNMATCHED_EVENTS = 5;
const C_OVER_BID_EVENTS = 6;
const C_EXPIRED_RESERVATIONS = 7;
const C_DENIED_ROW = 8;

/**
 * The actor state of one campaign: today's money, live reservations, the pacing controller, the
 * breaker and the day's plan. All methods take the current time; none reads a clock.
 *
 * Invariant (asserted): settled and reserved are non-negative safe integers and reserved equals the
 * sum of live reservations. The hard cap settled + reserved + bid ≤ budget is checked before every
 * reservation, which is what keeps overspend at zero for bids that carry a requestId.
 */
export class Campaign implements BreakerHost {
  readonly id: string;
  /**
   * The configuration's settings, one frozen object shared by the campaigns with the same ones
   * (shards/intern.ts); its ID is `id`, its name in the extras when it is not the ID, its numbers
   * in the row. `config` rebuilds the whole configuration when asked.
   */
  private s: Settings;
  /** Today's shape (shared with the campaigns of the same zone, day and curve); today's budget is `budget`. */
  day!: DayShape;
  /** Live reservations by requestId; allocated with the first one (see `reservations`). */
  private res: Map<string, Reservation> | null = null;
  /** The traffic profile, built on the first decision (or when asked for): idle campaigns hold none. */
  private prof: TrafficProfile | null = null;
  /** What few campaigns have (see Extras): null until the first of it is set. */
  private x: Extras | null = null;

  /** Set when the store held counters outside the money bounds at load: the campaign stays paused. */
  get countersFault(): string | null {
    return this.x === null ? null : this.x.countersFault;
  }

  set countersFault(v: string | null) {
    if (v !== null || this.x !== null) (this.x ??= new Extras()).countersFault = v;
  }

  /** The breaker's last transitions (BreakerHost); a shared empty list until the first. */
  get breakerEvents(): readonly BreakerEvent[] {
    return this.x === null ? noBreakerEvents : this.x.breakerEvents;
  }

  set breakerEvents(v: readonly BreakerEvent[]) {
    if (v !== noBreakerEvents || this.x !== null) (this.x ??= new Extras()).breakerEvents = v;
  }
  /**
   * The campaign's numbers (and its controller's and breaker's) are a row of the shard's columns
   * (shards/columns.ts): `f` is the row's chunk, `o` its offset; after dispose, the dead row.
   */
  private f: Float64Array;
  private o: number;
  /** The chunk's integers (ShardColumns.intsOf): the row's are at `ix`. */
  private i: Int32Array;

  /** Where the row's integers start in `i`. */
  private get ix(): number {
    return (this.o + intsAt) * 2;
  }

  /**
   * The reservation the last applySpend settled, and what of it stays held (a spend below its
   * reservation keeps the difference committed until the store confirms the event, so that a
   * duplicate found by the store can put the reservation back without exceeding the cap), handed
   * over to the caller (the flusher's record of the spend) and no longer kept. Take it right after
   * the spend: the next applySpend of any campaign of the thread replaces it.
   */
  takeLastSettled(): SettledReservation | null {
    if (settledBy !== this) return null;
    const s = settledLast;
    settledBy = null;
    settledLast = null;
    return s;
  }

  get settled(): Micros {
    return this.f[this.o + SETTLED]! as Micros;
  }

  set settled(v: Micros) {
    this.f[this.o + SETTLED] = v;
  }

  get reserved(): Micros {
    return this.f[this.o + RESERVED]! as Micros;
  }

  set reserved(v: Micros) {
    this.f[this.o + RESERVED] = v;
  }

  get lifetimeBefore(): Micros {
    return this.f[this.o + LIFETIME_BEFORE]! as Micros;
  }

  set lifetimeBefore(v: Micros) {
    this.f[this.o + LIFETIME_BEFORE] = v;
  }

  /** Flags of the last decision: DecideFlag bits; and whether it made a new reservation. */
  get lastFlags(): number {
    return this.i[this.ix + LAST_FLAGS]!;
  }

  set lastFlags(v: number) {
    this.i[this.ix + LAST_FLAGS] = v;
  }

  get lastReservedNew(): boolean {
    return this.i[this.ix + LAST_RESERVED_NEW] !== 0;
  }

  set lastReservedNew(v: boolean) {
    this.i[this.ix + LAST_RESERVED_NEW] = v ? 1 : 0;
  }

  get pacingIndex(): number {
    return this.f[this.o + PACING_INDEX]!;
  }

  set pacingIndex(v: number) {
    this.f[this.o + PACING_INDEX] = v;
  }

  get planMicros(): number {
    return this.f[this.o + PLAN_MICROS]!;
  }

  set planMicros(v: number) {
    this.f[this.o + PLAN_MICROS] = v;
  }

  get inactive(): ReasonCode | 0 {
    return this.i[this.ix + INACTIVE]! as ReasonCode | 0;
  }

  set inactive(v: ReasonCode | 0) {
    this.i[this.ix + INACTIVE] = v;
  }

  /** Σ of the holds of spends not yet confirmed by the store; counts as committed. */
  get held(): Micros {
    return this.f[this.o + HELD]! as Micros;
  }

  set held(v: Micros) {
    this.f[this.o + HELD] = v;
  }

  /**
   * The smallest positive bid seen today: once less than that is left to spend, nothing more can be
   * spent (EXHAUSTED). Before any bid, 1 micro: EXHAUSTED means settled has reached the budget.
   */
  get minBidMicros(): number {
    return this.f[this.o + MIN_BID_MICROS]!;
  }

  set minBidMicros(v: number) {
    this.f[this.o + MIN_BID_MICROS] = v;
  }

  /**
   * The budget lease when several instances share budgets (shards/lease.ts; null: this instance
   * alone caps the campaign). With one, a decision must fit the lease too, and pacing and the
   * breaker count other holders' spend (ARCHITECTURE.md, "Budget leases").
   */
  get lease(): Lease | null {
    return this.x === null ? null : this.x.lease;
  }

  set lease(v: Lease | null) {
    if (v !== null || this.x !== null) (this.x ??= new Extras()).lease = v;
  }

  /** Settled spend of other instances, as of the last lease renewal (0 without a lease). */
  private elsewhere(): number {
    return this.lease === null ? 0 : this.lease.othersMicros;
  }

  private get validUntilMs(): number {
    return this.f[this.o + VALID_UNTIL_MS]!;
  }

  private set validUntilMs(v: number) {
    this.f[this.o + VALID_UNTIL_MS] = v;
  }

  private get nextControlMs(): number {
    return this.f[this.o + NEXT_CONTROL_MS]!;
  }

  private set nextControlMs(v: number) {
    this.f[this.o + NEXT_CONTROL_MS] = v;
  }

  private get lastControlMs(): number | null {
    return orNull(this.f[this.o + LAST_CONTROL_MS]!);
  }

  private set lastControlMs(v: number | null) {
    this.f[this.o + LAST_CONTROL_MS] = orNone(v);
  }

  private get hour(): number {
    return this.i[this.ix + HOUR]!;
  }

  private set hour(v: number) {
    this.i[this.ix + HOUR] = v;
  }

  private get presentSinceMs(): number {
    return this.f[this.o + PRESENT_SINCE_MS]!;
  }

  private set presentSinceMs(v: number) {
    this.f[this.o + PRESENT_SINCE_MS] = v;
  }

  /** Since when the campaign is muted (exhausted or paused) for its profile, or null. */
  private get mutedFromMs(): number | null {
    return orNull(this.f[this.o + MUTED_FROM_MS]!);
  }

  private set mutedFromMs(v: number | null) {
    this.f[this.o + MUTED_FROM_MS] = orNone(v);
  }

  /** Decisions, allowed decisions, settled micros and spend events since the last control tick. */
  private get ctlDecisions(): number {
    return this.i[this.ix + CTL_DECISIONS]!;
  }

  private set ctlDecisions(v: number) {
    this.i[this.ix + CTL_DECISIONS] = v;
  }

  private get ctlAllowed(): number {
    return this.i[this.ix + CTL_ALLOWED]!;
  }

  private set ctlAllowed(v: number) {
    this.i[this.ix + CTL_ALLOWED] = v;
  }

  private get ctlSettled(): number {
    return this.f[this.o + CTL_SETTLED]!;
  }

  private set ctlSettled(v: number) {
    this.f[this.o + CTL_SETTLED] = v;
  }

  private get ctlSpendEvents(): number {
    return this.i[this.ix + CTL_SPEND_EVENTS]!;
  }

  private set ctlSpendEvents(v: number) {
    this.i[this.ix + CTL_SPEND_EVENTS] = v;
  }

  /** Realised spend and the bids it settled (decayed): the spend ÷ bid ratio of reservations. */
  private get rhoNum(): number {
    return this.f[this.o + RHO_NUM]!;
  }

  private set rhoNum(v: number) {
    this.f[this.o + RHO_NUM] = v;
  }

  private get rhoDen(): number {
    return this.f[this.o + RHO_DEN]!;
  }

  private set rhoDen(v: number) {
    this.f[this.o + RHO_DEN] = v;
  }

  /**
   * Spend of the last velocityBuckets seconds for the velocity breaker, as pairs
   * [second, micros, second, micros, …] in increasing second order, only for seconds with spend;
   * null when there was none in that window, or when only one second had spend: that one pair is
   * in the row (VEL_SECOND, VEL_MICROS), and most of a million campaigns, which spend now and then,
   * hold no array (64 bytes each). A campaign that spends once a second holds at most
   * velocityBuckets pairs.
   */
  private get vel(): number[] | null {
    return this.x === null ? null : this.x.vel;
  }

  private set vel(v: number[] | null) {
    if (v !== null || this.x !== null) (this.x ??= new Extras()).vel = v;
  }
  /**
   * The shadow strategy's actor (shards/pacing/shadow.ts), kept by the shard; null without one. A
   * campaign in mode SHADOW always has one, and its `unenforced` says so: every decision the pacer
   * would pace (schedule, flight, budget, breaker, throttle) is then allowed.
   */
  get shadow(): Shadow | null {
    return this.x === null ? null : this.x.shadow;
  }

  set shadow(v: Shadow | null) {
    if (v !== null || this.x !== null) (this.x ??= new Extras()).shadow = v;
  }

  constructor(
    config: CampaignConfig,
    nowMs: number,
    hooks: CampaignHooks,
  ) {
    this.id = config.id;
    this.s = settingsOf(config);
    const h = (this.hooks = complete(hooks));
    const cols = h.columns;
    const row = cols.campaigns.take();
    const f = (this.f = cols.campaigns.chunkOf(row));
    const o = (this.o = cols.campaigns.offsetOf(row));
    const i = (this.i = cols.intsOf(f));
    const ix = (o + intsAt) * 2;
    f[o + SETTLED] = ZERO;
    f[o + RESERVED] = ZERO;
    f[o + LIFETIME_BEFORE] = ZERO;
    i[ix + LAST_FLAGS] = 0;
    i[ix + LAST_RESERVED_NEW] = 0;
    f[o + PACING_INDEX] = 1;
    f[o + PLAN_MICROS] = 0;
    i[ix + INACTIVE] = 0;
    f[o + HELD] = ZERO;
    f[o + MIN_BID_MICROS] = Infinity;
    f[o + VALID_UNTIL_MS] = -Infinity;
    f[o + NEXT_CONTROL_MS] = -Infinity;
    f[o + LAST_CONTROL_MS] = NONE;
    i[ix + HOUR] = 0;
    f[o + PRESENT_SINCE_MS] = nowMs;
    f[o + MUTED_FROM_MS] = NONE;
    i[ix + CTL_DECISIONS] = 0;
    i[ix + CTL_ALLOWED] = 0;
    f[o + CTL_SETTLED] = 0;
    i[ix + CTL_SPEND_EVENTS] = 0;
    f[o + RHO_NUM] = 0;
    f[o + RHO_DEN] = 0;
    i[ix + TODAY_ROW] = -1;
    i[ix + SINCE_ROW] = -1;
    i[ix + COUNTS_ROW] = -1;
    f[o + BUDGET] = 0;
    f[o + VEL_SECOND] = NONE;
    f[o + VEL_MICROS] = 0;
    this.setOwn(config);
    Controller.initRow(f, o + controllerAt);
    initBreakerRow(f, o + breakerAt, i, ix + breakerIntsAt);
    this.controller.startFor(config.strategy);
    this.plan(nowMs);
  }

  /**
   * Gives the campaign's rows back to the shard's columns (a campaign the shard drops: a shadow
   * that is no longer wanted). The campaign, its controller and its breaker then point at the
   * dead row: whatever still holds them cannot read or write another campaign's numbers.
   */
  dispose(): void {
    const pool = this.cols.campaigns;
    if (this.f === pool.dead) return;
    this.dropCounters(TODAY_ROW);
    this.dropCounters(SINCE_ROW);
    this.prof?.dispose();
    const counts = this.i[this.ix + COUNTS_ROW]!;
    if (counts >= 0) this.cols.hourCounts.give(counts);
    const row = pool.rowAt(this.f, this.o);
    this.f = pool.dead;
    this.i = this.cols.intsOf(pool.dead);
    this.o = 0;
    pool.give(row);
  }

  /** The shard's hooks, with its columns and its count of live reservations (one field, not three). */
  private readonly hooks: CompleteHooks;

  private get cols(): ShardColumns {
    return this.hooks.columns;
  }

  private get live(): { count: number } {
    return this.hooks.liveReservations;
  }

  /**
   * The configuration, rebuilt from the shared settings and the row (a new object on every read:
   * read it, do not keep it to compare with a later one).
   */
  get config(): CampaignConfig {
    const f = this.f;
    const o = this.o;
    return new CompactConfig(
      this.id,
      this.name,
      f[o + DAILY_BUDGET]! as Micros,
      orNull(f[o + START_AT_MS]!),
      orNull(f[o + END_AT_MS]!),
      orNull(f[o + LIFETIME_BUDGET]!) as Micros | null,
      f[o + VERSION]!,
      this.s,
    );
  }

  get name(): string {
    return this.x === null || this.x.name === null ? this.id : this.x.name;
  }

  /** The configuration's own numbers into the row, its name into the extras when it is not the ID. */
  private setOwn(config: CampaignConfig): void {
    const f = this.f;
    const o = this.o;
    f[o + DAILY_BUDGET] = config.dailyBudgetMicros;
    f[o + START_AT_MS] = orNone(config.startAtMs);
    f[o + END_AT_MS] = orNone(config.endAtMs);
    f[o + LIFETIME_BUDGET] = orNone(config.lifetimeBudgetMicros);
    f[o + VERSION] = config.version;
    const name = config.name === config.id ? null : config.name;
    if (name !== null || this.x !== null) (this.x ??= new Extras()).name = name;
  }

  private get startAtMs(): number | null {
    return orNull(this.f[this.o + START_AT_MS]!);
  }

  private get endAtMs(): number | null {
    return orNull(this.f[this.o + END_AT_MS]!);
  }

  private get lifetimeBudget(): number | null {
    return orNull(this.f[this.o + LIFETIME_BUDGET]!);
  }

  get version(): number {
    return this.f[this.o + VERSION]!;
  }

  get timezone(): string {
    return this.s.timezone;
  }

  /**
   * The pacing controller, over this campaign's row: the thread's one Controller object, pointed
   * at the row on every read, instead of an object per campaign (40 bytes each at a million). Use
   * it at once (`c.controller.throttle`), never keep it: the next read, for any campaign, moves it.
   * Safe because a controller keeps no reference and calls nothing back.
   */
  get controller(): Controller {
    const c = controllerView;
    c.f = this.f;
    c.o = this.o + controllerAt;
    return c;
  }

  /**
   * The budget breaker, over this campaign (BreakerHost): the thread's one Breaker view, pointed
   * at the campaign on every read, instead of an object per campaign (72 bytes at a million). Use
   * it at once, never keep it: the next read, for any campaign, moves it. Each of its methods reads
   * the campaign once, on entry, so a transition's listener that reads another campaign's breaker
   * does not move the method that told it.
   */
  get breaker(): Breaker {
    const b = breakerView;
    b.h = this;
    return b;
  }

  /** @internal BreakerHost: the breaker's numbers are in the campaign's row. */
  get breakerRow(): Float64Array {
    return this.f;
  }

  /** @internal */
  get breakerOffset(): number {
    return this.o + breakerAt;
  }

  /** @internal BreakerHost: the breaker's integers are in the row's integers. */
  get breakerInts(): Int32Array {
    return this.i;
  }

  /** @internal */
  get breakerIntsOffset(): number {
    return (this.o + intsAt) * 2 + breakerIntsAt;
  }

  /** @internal BreakerHost: the breaker's settings are the configuration's. */
  get breakerConfig(): BreakerConfig {
    return this.s.breaker;
  }

  set breakerConfig(c: BreakerConfig) {
    assert(c === this.s.breaker, 'a campaign\'s breaker settings change with its configuration');
  }

  /** @internal BreakerHost */
  breakerMoved(t: BreakerTransition): void {
    this.hooks.onBreaker(this, t);
  }

  get budget(): Micros {
    return this.f[this.o + BUDGET]! as Micros;
  }

  /**
   * Today's counters (status) and the counters since the last history summary, as of now (a copy:
   * zeros until something is counted). Each is a row of the shard's counters columns, taken on its
   * first count and given back at the rollover (today) or when the summary takes it, so a campaign
   * without traffic holds neither.
   */
  get today(): Readonly<Counters> {
    return this.countersOf(TODAY_ROW) ?? noCounters;
  }

  get sinceSummary(): Readonly<Counters> {
    return this.countersOf(SINCE_ROW) ?? noCounters;
  }

  /** Today's allowed decisions and settled micros (what the shadow's estimate reads on its hot path). */
  get allowedToday(): number {
    return this.counterOf(TODAY_ROW, C_ALLOWED);
  }

  get settledMicrosToday(): number {
    return this.counterOf(TODAY_ROW, C_SETTLED_MICROS);
  }

  /** The counters since the last summary, handed over to the summary (null: nothing counted). */
  takeSummary(): Counters | null {
    const s = this.countersOf(SINCE_ROW);
    this.dropCounters(SINCE_ROW);
    return s;
  }

  private counterOf(which: number, field: number): number {
    const r = this.i[this.ix + which]!;
    if (r < 0) return 0;
    const pool = this.cols.counters;
    return pool.chunkOf(r)[pool.offsetOf(r) + field]!;
  }

  /** A copy of the counters in the row `which` names (TODAY_ROW, SINCE_ROW), or null without one. */
  private countersOf(which: number): Counters | null {
    const r = this.i[this.ix + which]!;
    if (r < 0) return null;
    const cols = this.cols;
    const f = cols.counters.chunkOf(r);
    const o = cols.counters.offsetOf(r);
    const c = new Counters();
    c.decisions = f[o + C_DECISIONS]!;
    c.allowed = f[o + C_ALLOWED]!;
    c.spendEvents = f[o + C_SPEND_EVENTS]!;
    c.settledMicros = f[o + C_SETTLED_MICROS]!;
    c.duplicateEvents = f[o + C_DUPLICATE_EVENTS]!;
    c.unmatchedEvents = f[o + C_UNMATCHED_EVENTS]!;
    c.overBidEvents = f[o + C_OVER_BID_EVENTS]!;
    c.expiredReservations = f[o + C_EXPIRED_RESERVATIONS]!;
    const d = f[o + C_DENIED_ROW]!;
    if (d >= 0) {
      const df = cols.denied.chunkOf(d);
      const dof = cols.denied.offsetOf(d);
      c.denied = Array.from(df.subarray(dof, dof + deniedWidth));
    }
    return c;
  }

  /** Gives the counters row `which` names back, with its denials (nothing holds them but this row). */
  private dropCounters(which: number): void {
    const r = this.i[this.ix + which]!;
    if (r < 0) return;
    const cols = this.cols;
    const d = cols.counters.chunkOf(r)[cols.counters.offsetOf(r) + C_DENIED_ROW]!;
    if (d >= 0) cols.denied.give(d);
    cols.counters.give(r);
    this.i[this.ix + which] = -1;
  }

  /** The counters row `which` names, taken (zeroed) on its first count. */
  private countersRow(which: number): number {
    let r = this.i[this.ix + which]!;
    if (r < 0) {
      const pool = this.cols.counters;
      r = pool.take();
      this.i[this.ix + which] = r;
      const f = pool.chunkOf(r);
      const o = pool.offsetOf(r);
      f.fill(0, o, o + C_DENIED_ROW);
      f[o + C_DENIED_ROW] = -1;
    }
    return r;
  }

  /** Adds `by` to counter `field` of today's counters and of those since the last summary. */
  private count(field: number, by: number): void {
    const pool = this.cols.counters;
    const t = this.countersRow(TODAY_ROW);
    const ft = pool.chunkOf(t);
    const it = pool.offsetOf(t) + field;
    ft[it] = ft[it]! + by;
    const s = this.countersRow(SINCE_ROW);
    const fs = pool.chunkOf(s);
    const is = pool.offsetOf(s) + field;
    fs[is] = fs[is]! + by;
  }

  /** Counts a denial by reason in both counters (each takes its row of denials on its first). */
  private countDenial(reason: ReasonCode): void {
    this.denyIn(this.countersRow(TODAY_ROW), reason);
    this.denyIn(this.countersRow(SINCE_ROW), reason);
  }

  private denyIn(r: number, reason: ReasonCode): void {
    const cols = this.cols;
    const f = cols.counters.chunkOf(r);
    const o = cols.counters.offsetOf(r);
    let d = f[o + C_DENIED_ROW]!;
    if (d < 0) {
      d = cols.denied.take();
      f[o + C_DENIED_ROW] = d;
      const off = cols.denied.offsetOf(d);
      cols.denied.chunkOf(d).fill(0, off, off + deniedWidth);
    }
    cols.denied.chunkOf(d)[cols.denied.offsetOf(d) + reason]!++;
  }

  /** Live reservations by requestId (read-only: they change through decide, spend, release, expire). */
  get reservations(): ReadonlyMap<string, Reservation> {
    return this.res ?? noReservations;
  }

  /**
   * The campaign's traffic profile; built when first needed. Until then the campaign has counted
   * no opportunity and learned nothing, which is exactly what a fresh profile holds.
   */
  get profile(): TrafficProfile {
    let p = this.prof;
    if (p === null) {
      p = this.prof = new TrafficProfile(this.cols.hourCounts, this.cols.densities);
      const row = this.i[this.ix + COUNTS_ROW]!;
      if (row >= 0) {
        p.adoptCounts(row);
        this.i[this.ix + COUNTS_ROW] = -1;
      }
    }
    return p;
  }

  /**
   * Counts one opportunity in local hour h: in the profile when there is one, else in the
   * campaign's own row of counts (what the profile's count does, without a profile object for a
   * campaign that has learned nothing yet).
   */
  private countOpportunity(h: number): void {
    const p = this.prof;
    if (p !== null) {
      p.count(h);
      return;
    }
    const pool = this.cols.hourCounts;
    let row = this.i[this.ix + COUNTS_ROW]!;
    if (row < 0) {
      row = pool.take();
      this.i[this.ix + COUNTS_ROW] = row;
      const off = pool.offsetOf(row);
      pool.chunkOf(row).fill(0, off, off + hourCountsWidth);
    }
    const c = pool.chunkOf(row);
    const i = pool.offsetOf(row) + h;
    const v = c[i]!;
    if (v !== hourCountMax) c[i] = v + 1;
  }

  /** Opportunities counted today in local hour h. */
  private todayCount(h: number): number {
    const p = this.prof;
    if (p !== null) return p.todayCount(h);
    const row = this.i[this.ix + COUNTS_ROW]!;
    if (row < 0) return 0;
    const pool = this.cols.hourCounts;
    return pool.chunkOf(row)[pool.offsetOf(row) + h]!;
  }

  /**
   * Restores counters from the store after a restart (before any traffic). Values outside the
   * money bounds (written before the bounds existed, or by hand) do not stop the shard: they are
   * clamped to the ceiling, which leaves nothing to spend, and the campaign is flagged and paused.
   */
  restore(settledRaw: number, lifetimeRaw: number, nowMs: number): void {
    const settled = boundedTotal(settledRaw, limits.dayTotalMicrosMax);
    const lifetime = boundedTotal(lifetimeRaw, limits.flightTotalMicrosMax);
    if (settled === null || lifetime === null) {
      this.countersFault =
        `stored counters out of range (day settled ${String(settledRaw)}, earlier flight days ${String(lifetimeRaw)}; ` +
        `ceilings ${limits.dayTotalMicrosMax} and ${limits.flightTotalMicrosMax} micros): correct them in the store and restart`;
    }
    this.settled = settled ?? (limits.dayTotalMicrosMax as Micros);
    this.lifetimeBefore = lifetime ?? (limits.flightTotalMicrosMax as Micros);
    this.plan(nowMs);
    this.validUntilMs = -Infinity;
    this.checkExhausted(nowMs);
  }

  /** Plans the local day that contains nowMs: its shape (`day`) and its budget. */
  private plan(nowMs: number): void {
    const config = this.config;
    const weekday = dayBounds(config.timezone, nowMs).weekday;
    const own = this.prof?.weightsFor(weekday) ?? null;
    // The shard's profile is the same for all its campaigns, so their plans can share one shape.
    const day = (this.day = buildDayShape(config, nowMs, own ?? this.hooks.globalProfile.weightsFor(weekday), own === null));
    this.f[this.o + BUDGET] = dailyAllowance(config, day.bounds, day.active, this.lifetimeBefore);
  }

  /** ADAPTIVE's traffic shape of a weekday: the campaign's own profile, else the shard's. */
  private shapeOf(weekday: number): Float64Array | null {
    return this.prof?.weightsFor(weekday) ?? this.hooks.globalProfile.weightsFor(weekday);
  }

  /**
   * Takes a profile the admin thread fitted from the stored history (at startup, at local midnight,
   * on demand) and replans today by it, as a reconfiguration does: the money stays, the curve
   * follows the profile.
   */
  loadProfile(fitted: FittedProfile, nowMs: number): void {
    if (nowMs >= this.day.bounds.endMs) this.rollover(nowMs);
    this.profile.load(fitted);
    this.plan(nowMs);
    this.hour = 0;
    this.validUntilMs = -Infinity;
    this.nextControlMs = -Infinity;
  }

  // ---- hot path -------------------------------------------------------------------------------

  /** Decides one opportunity; returns the reason and leaves DecideFlag bits in lastFlags. */
  decide(nowMs: number, bidMicros: number, requestId: string, random: () => number, ttlMs: number, reservable = true): ReasonCode {
    if (nowMs >= this.validUntilMs) this.refresh(nowMs);
    else if (nowMs >= this.nextControlMs) this.control(nowMs);
    this.ctlDecisions++;
    this.count(C_DECISIONS, 1);
    const muted = this.muted();
    if (muted !== (this.mutedFromMs !== null)) this.mutedChanged(nowMs, muted);
    if (!muted) this.countOpportunity(this.hour);
    this.lastFlags = 0;
    this.lastReservedNew = false;
    // SHADOW mode allows outside the schedule and flight too; paused, archived and faulty campaigns still deny.
    if (this.inactive !== 0 && !(this.inactive <= Reason.OUTSIDE_FLIGHT && this.shadow !== null && this.shadow.unenforced)) return this.deny(this.inactive);

    const bid = bidMicros > 0 ? (bidMicros as Micros) : ZERO;
    if (bid > 0 && bid < this.minBidMicros) this.smallerBid(nowMs, bid);
    const reserving = bid > 0 && requestId !== '';
    if (reserving) {
      // A retried decide for a live reservation gets the same answer and reserves nothing more.
      if (this.res !== null && this.res.has(requestId)) {
        this.lastFlags = DecideFlag.ALLOW | DecideFlag.RESERVED;
        return Reason.OK;
      }
      if (!reservable) return this.shadow !== null && this.shadow.unenforced ? this.allow(nowMs, bid, requestId, ttlMs, false) : this.deny(Reason.RESERVATIONS_FULL);
    }
    if (this.shadow !== null && this.shadow.unenforced) return this.allow(nowMs, bid, requestId, ttlMs, reserving);
    const committed = this.settled + this.elsewhere() + this.reserved + this.held;
    const budget = this.budget;
    if (committed >= budget || committed + bid > budget) return this.deny(Reason.BUDGET_EXHAUSTED);
    if (this.lease !== null && !this.lease.covers(nowMs, this.day.bounds.key, this.reserved + this.held, bid)) return this.deny(Reason.LEASE_EMPTY);

    const share = this.breaker.share(nowMs);
    if (share === 0) {
      return this.deny(this.breaker.state === 'EXHAUSTED' ? Reason.BUDGET_EXHAUSTED : Reason.BREAKER_OPEN);
    }
    const p = this.controller.throttle;
    const u = random();
    if (u >= p) return this.deny(Reason.PACED);
    if (u >= p * share) return this.deny(Reason.BREAKER_OPEN);
    return this.allow(nowMs, bid, requestId, ttlMs, reserving);
  }

  private allow(nowMs: number, bid: Micros, requestId: string, ttlMs: number, reserving: boolean): ReasonCode {
    this.ctlAllowed++;
    this.count(C_ALLOWED, 1);
    this.lastFlags = DecideFlag.ALLOW;
    if (reserving) {
      const r: Reservation = { amount: bid, expiresAtMs: nowMs + ttlMs, campaign: this, requestId, slot: -1 };
      (this.res ??= new Map()).set(requestId, r);
      this.hooks.expiries?.push(r);
      this.live.count++;
      this.reserved = add(this.reserved, bid);
      this.lastFlags |= DecideFlag.RESERVED;
      this.lastReservedNew = true;
      this.breaker.onCommitted(nowMs, this.settled + this.elsewhere() + this.reserved, this.budget);
    }
    return Reason.OK;
  }

  /**
   * Exhausted or paused: bidders stop asking such a campaign, so the time it spends so is not
   * observed and its decide calls are not counted: they would teach the profile the campaign's
   * state, not the traffic (seen at the next decide call, and at rollover).
   */
  private muted(): boolean {
    return (this.breaker.state === 'EXHAUSTED' && (this.shadow === null || !this.shadow.unenforced)) || this.inactive === Reason.CAMPAIGN_PAUSED || this.inactive === Reason.CAMPAIGN_ARCHIVED;
  }

  private mutedChanged(nowMs: number, muted: boolean): void {
    if (muted) this.mutedFromMs = nowMs;
    else if (this.mutedFromMs !== null) {
      this.unobserve(this.mutedFromMs, nowMs);
      this.mutedFromMs = null;
    }
  }

  /** Takes [fromMs, toMs) of today out of the profile's observed time. */
  private unobserve(fromMs: number, toMs: number): void {
    const hs = this.day.hourStarts;
    for (let h = 0; h < 24; h++) {
      const a = Math.max(fromMs, hs[h]!, this.presentSinceMs);
      const b = Math.min(toMs, hs[h + 1]!);
      if (b > a) this.profile.observe(h, a - b);
    }
  }

  /**
   * EXHAUSTED was judged against the smallest bid seen so far; a smaller one that still fits what
   * is left reopens the day, so each bid is judged on its own.
   */
  private smallerBid(nowMs: number, bid: Micros): void {
    this.minBidMicros = bid;
    if (this.breaker.state === 'EXHAUSTED' && this.budget - this.settled - this.elsewhere() >= bid) this.breakerReset(nowMs, 'SMALLER_BID');
  }

  private deny(reason: ReasonCode): ReasonCode {
    this.countDenial(reason);
    return reason;
  }

  /**
   * Applies a spend event to memory, before the store confirms it (the store may still find it a
   * duplicate: see revertSpend). Returns SpendFlag bits.
   */
  applySpend(nowMs: number, amountMicros: number, requestId: string): number {
    if (nowMs >= this.validUntilMs) this.refresh(nowMs);
    const amount = micros(amountMicros);
    let flags = 0;
    settledBy = null;
    settledLast = null;
    if (requestId !== '') {
      const r = this.res?.get(requestId);
      if (r !== undefined) {
        this.dropReservation(requestId, r);
        const hold = r.amount > amount ? ((r.amount - amount) as Micros) : ZERO;
        this.held = add(this.held, hold);
        settledBy = this;
        settledLast = { requestId, reservation: r, hold };
        flags |= SpendFlag.MATCHED_RESERVATION;
        if (amount > r.amount) flags |= SpendFlag.OVER_BID;
        this.rhoNum += amount;
        this.rhoDen += r.amount;
      } else {
        flags |= SpendFlag.UNMATCHED;
      }
    }
    this.settled = add(this.settled, amount);
    // With several holders, a win notice for another instance's reservation says nothing about
    // what this instance's allowed decisions spend: it stays out of the controller's estimate
    // (else an instance receiving others' notices throttles itself to nothing; docs/pacing.md, "Fleet").
    if (this.lease === null || (flags & SpendFlag.UNMATCHED) === 0) {
      this.ctlSettled += amount;
      this.ctlSpendEvents++;
    }
    this.addVelocity(nowMs, amount);
    this.count(C_SPEND_EVENTS, 1);
    this.count(C_SETTLED_MICROS, amount);
    if (flags & SpendFlag.OVER_BID) this.count(C_OVER_BID_EVENTS, 1);
    if (flags & SpendFlag.UNMATCHED) this.count(C_UNMATCHED_EVENTS, 1);
    this.breaker.onCommitted(nowMs, this.settled + this.elsewhere() + this.reserved, this.budget);
    this.checkExhausted(nowMs);
    return flags;
  }

  /** EXHAUSTED once less than the smallest bid is left: not even a released reservation helps. */
  private checkExhausted(nowMs: number): void {
    const smallest = Number.isFinite(this.minBidMicros) ? this.minBidMicros : 1;
    if (this.budget - this.settled - this.elsewhere() < smallest) this.breaker.exhaust(nowMs);
  }

  private breakerReset(nowMs: number, reason: ResetReason): void {
    this.breaker.reset(nowMs, reason, this.settled + this.elsewhere() + this.reserved, this.budget);
    this.checkExhausted(nowMs);
  }

  /**
   * The store found an event already applied: take back the money and the counts applySpend added.
   * A reservation it settled stays gone: the original event settled it already. `day` is the local
   * day the event was applied to: when the campaign rolled over since, today's money never held
   * it, so only the duplicate is counted.
   */
  revertSpend(nowMs: number, amountMicros: number, flags: number, day: string): void {
    if (day !== this.day.bounds.key) {
      this.countDuplicate();
      return;
    }
    const amount = micros(amountMicros);
    this.settled = sub(this.settled, amount);
    if (this.lease === null || (flags & SpendFlag.UNMATCHED) === 0) this.ctlSettled -= amount;
    if (this.breaker.state === 'EXHAUSTED' && this.budget - this.settled - this.elsewhere() >= (Number.isFinite(this.minBidMicros) ? this.minBidMicros : 1)) {
      this.breakerReset(nowMs, 'SPEND_REVERTED');
    }
    this.count(C_SPEND_EVENTS, -1);
    this.count(C_SETTLED_MICROS, -amount);
    this.count(C_DUPLICATE_EVENTS, 1);
    if (flags & SpendFlag.OVER_BID) this.count(C_OVER_BID_EVENTS, -1);
    if (flags & SpendFlag.UNMATCHED) this.count(C_UNMATCHED_EVENTS, -1);
  }

  /** The store answered for a spend that settled a reservation: its hold is no longer needed. */
  releaseHold(hold: Micros): void {
    this.held = sub(this.held, hold);
  }

  countDuplicate(): void {
    this.count(C_DUPLICATE_EVENTS, 1);
  }

  release(requestId: string): boolean {
    const r = this.res?.get(requestId);
    if (r === undefined) return false;
    this.dropReservation(requestId, r);
    this.rhoDen += r.amount;
    return true;
  }

  /**
   * Expires a reservation if it is still the one the expiry queue knew: its amount, or -1 when
   * there was nothing to expire.
   */
  expire(requestId: string, expiresAtMs: number): number {
    const r = this.res?.get(requestId);
    if (r === undefined || r.expiresAtMs !== expiresAtMs) return -1;
    this.dropReservation(requestId, r);
    this.rhoDen += r.amount;
    this.count(C_EXPIRED_RESERVATIONS, 1);
    return r.amount;
  }

  /** Puts back a reservation restored from the store (or one a duplicate spend wrongly settled). */
  restoreReservation(requestId: string, amount: Micros, expiresAtMs: number): boolean {
    if (this.res !== null && this.res.has(requestId)) return false;
    const r: Reservation = { amount, expiresAtMs, campaign: this, requestId, slot: -1 };
    (this.res ??= new Map()).set(requestId, r);
    this.hooks.expiries?.push(r);
    this.live.count++;
    this.reserved = add(this.reserved, amount);
    return true;
  }

  private dropReservation(requestId: string, r: Reservation): void {
    // The last one gone, the map goes too: a Map keeps its grown table after deletes.
    if (this.res!.size === 1) this.res = null;
    else this.res!.delete(requestId);
    this.hooks.expiries?.remove(r);
    this.live.count--;
    this.reserved = sub(this.reserved, r.amount);
  }


  // ---- time -----------------------------------------------------------------------------------

  /** Rolls the day over when due, recomputes whether the campaign is active, runs the controller. */
  refresh(nowMs: number): void {
    if (nowMs >= this.day.bounds.endMs) this.rollover(nowMs);
    const { s, day } = this;
    const startAtMs = this.startAtMs;
    const endAtMs = this.endAtMs;
    const hourStarts = day.hourStarts;
    while (this.hour < 23 && nowMs >= hourStarts[this.hour + 1]!) this.hour++;
    let until = Math.min(day.bounds.endMs, hourStarts[this.hour + 1]!);
    if (s.archived === true) {
      this.inactive = Reason.CAMPAIGN_ARCHIVED;
    } else if (this.countersFault !== null) {
      this.inactive = Reason.COUNTERS_OUT_OF_RANGE;
    } else if (s.status === 'PAUSED') {
      this.inactive = Reason.CAMPAIGN_PAUSED;
    } else if (startAtMs !== null && nowMs < startAtMs) {
      this.inactive = Reason.OUTSIDE_FLIGHT;
      until = Math.min(until, startAtMs);
    } else if (endAtMs !== null && nowMs >= endAtMs) {
      this.inactive = Reason.OUTSIDE_FLIGHT;
    } else {
      this.inactive = contains(day.active, nowMs) ? 0 : Reason.OUTSIDE_SCHEDULE;
      if (endAtMs !== null) until = Math.min(until, endAtMs);
    }
    this.validUntilMs = Math.min(until, nextBoundary(day.active, nowMs));
    this.control(nowMs);
  }

  private rollover(nowMs: number): void {
    const ended = this.day;
    if (this.mutedFromMs !== null) this.unobserve(this.mutedFromMs, ended.bounds.endMs);
    this.mutedFromMs = null;
    // Without a profile or counts the campaign counted nothing: the day would teach it nothing either.
    const profile = this.prof !== null || this.i[this.ix + COUNTS_ROW]! >= 0 ? this.profile : null;
    if (profile !== null) {
      const hourMs: number[] = [];
      for (let h = 0; h < 24; h++) {
        const s = Math.max(ended.hourStarts[h]!, this.presentSinceMs);
        const e = ended.hourStarts[h + 1]!;
        profile.observe(h, Math.max(0, e - s));
        hourMs.push(ended.hourStarts[h + 1]! - ended.hourStarts[h]!);
      }
      const density = profile.endDay(hourMs, ended.bounds.weekday);
      if (density !== null) this.hooks.globalProfile.add(density, ended.bounds.weekday);
    }
    const settled = this.settled;
    this.hooks.onRollover(this, ended.bounds.key, settled, this.budget);
    // Saturates at the flight ceiling, above any lifetime budget: such a flight is finished either way.
    if (this.lifetimeBudget !== null) {
      this.lifetimeBefore = Math.min(add(this.lifetimeBefore, settled), limits.flightTotalMicrosMax) as Micros;
    }
    // Reservations made yesterday stay reserved: their win notices land today and count today.
    this.settled = ZERO;
    this.minBidMicros = Infinity;
    this.dropCounters(TODAY_ROW);
    this.hour = 0;
    this.plan(nowMs);
    this.presentSinceMs = this.day.bounds.startMs;
    this.breakerReset(this.day.bounds.startMs, 'DAY_ROLLOVER');
  }

  /** The control tick: at most once per controlTickMs, driven by traffic (lazy, no timer per campaign). */
  control(nowMs: number): void {
    if (nowMs < this.nextControlMs) return;
    this.nextControlMs = nowMs + limits.controlTickMs;
    // Age the realised spend ÷ bid ratio by the time that passed (ticks are lazy, so not regular).
    if (this.lastControlMs !== null) {
      const decay = Math.exp(-(nowMs - this.lastControlMs) / pacingTuning.reservationValueTauMs);
      this.rhoNum *= decay;
      this.rhoDen *= decay;
    }
    this.lastControlMs = nowMs;
    const committed = this.expectedCommitted();
    const curve = this.day.curve;
    this.breaker.advance(nowMs);
    // With several holders the plan is global: this holder plans its share of it.
    const share = this.lease === null ? 1 : this.lease.share;
    this.controller.update({
      nowMs,
      curve,
      budgetMicros: this.budget * share,
      committedMicros: committed * share,
      decisions: this.ctlDecisions,
      allowed: this.ctlAllowed,
      settledDeltaMicros: this.ctlSettled,
      spendEvents: this.ctlSpendEvents,
      velocityCapMultiple: this.s.velocityCapMultiple,
      hourStarts: this.day.hourStarts,
      forecast: this.forecast(nowMs),
    });
    this.ctlDecisions = 0;
    this.ctlAllowed = 0;
    this.ctlSettled = 0;
    this.ctlSpendEvents = 0;

    const fraction = curve.fraction(nowMs);
    this.planMicros = Math.floor(this.budget * fraction);
    this.pacingIndex = this.planMicros > 0 ? committed / this.planMicros : committed > 0 ? Infinity : 1;
    this.checkVelocity(nowMs, fraction);
  }

  /**
   * Expected opportunities per ms in each local hour of today, for the controller's capacity
   * look-ahead; null when nothing is known yet.
   *
   * With a learned shape (the campaign's own profile, else the shard's), the shape is scaled to
   * today's level: today's opportunities so far over what the shape expected so far. Without one
   * (a campaign's first day), traffic is taken to be continuous across midnight: tonight's last
   * hour should look like this morning's first hour, which today has seen, and the hours between
   * now and then are interpolated linearly from the current rate.
   */
  private forecast(nowMs: number): Float64Array | null {
    const hs = this.day.hourStarts;
    const out = forecastScratch;
    const rateNow = this.controller.opportunitiesPerMs;
    const shape = this.shapeOf(this.day.bounds.weekday);
    const from = Math.max(hs[0]!, this.presentSinceMs);
    if (shape !== null) {
      let seen = 0;
      let expected = 0;
      for (let h = 0; h <= this.hour; h++) {
        const a = Math.max(hs[h]!, from);
        const b = Math.min(hs[h + 1]!, nowMs);
        if (b > a) expected += shape[h]! * (b - a);
        seen += this.todayCount(h);
      }
      let level: number;
      if (seen >= pacingTuning.forecastLevelSamplesMin && expected > 0) level = seen / expected;
      else if (shape[this.hour]! > 0 && rateNow > 0) level = rateNow / shape[this.hour]!;
      else return null;
      for (let h = 0; h < 24; h++) out[h] = shape[h]! * level;
      return out;
    }
    if (rateNow <= 0) return null;
    let rateAtMidnight = rateNow;
    const firstHourMs = hs[1]! - hs[0]!;
    if (this.hour >= 1 && this.presentSinceMs <= hs[0]! && firstHourMs > 0) {
      rateAtMidnight = this.todayCount(0) / firstHourMs;
    }
    const span = hs[24]! - nowMs;
    for (let h = 0; h < 24; h++) {
      const mid = (hs[h]! + hs[h + 1]!) / 2;
      const x = span > 0 ? Math.min(1, Math.max(0, (mid - nowMs) / span)) : 1;
      out[h] = rateNow + (rateAtMidnight - rateNow) * x;
    }
    return out;
  }

  /** Settled spend plus live reservations valued at the realised spend ÷ bid ratio. */
  expectedCommitted(): number {
    const rho = this.rhoDen > 0 ? Math.min(1, this.rhoNum / this.rhoDen) : 1;
    return this.settled + this.elsewhere() + this.reserved * rho;
  }

  private addVelocity(nowMs: number, amount: number): void {
    const second = Math.floor(nowMs / 1000);
    let v = this.vel;
    if (v === null) {
      const f = this.f;
      const o = this.o;
      const only = f[o + VEL_SECOND]!;
      if (only !== only) {
        f[o + VEL_SECOND] = second;
        f[o + VEL_MICROS] = amount;
        return;
      }
      if (only === second) {
        f[o + VEL_MICROS] = f[o + VEL_MICROS]! + amount;
        return;
      }
      // A second second with spend: both pairs go to the array, which then works as it always did.
      v = this.vel = [only, f[o + VEL_MICROS]!];
      f[o + VEL_SECOND] = NONE;
      f[o + VEL_MICROS] = 0;
    }
    let i = v.length - 2;
    // Pairs are in second order; a clock that stepped back lands its spend in its own second.
    while (i >= 0 && v[i]! > second) i -= 2;
    if (i >= 0 && v[i] === second) v[i + 1]! += amount;
    else if (i === v.length - 2) v.push(second, amount);
    else v.splice(i + 2, 0, second, amount);
    // Seconds that fell out of the window would have been overwritten in a ring of velocityBuckets.
    const newest = v[v.length - 2]!;
    let drop = 0;
    while (drop < v.length && v[drop]! <= newest - velocityBuckets) drop += 2;
    if (drop > 0) v.splice(0, drop);
  }

  private checkVelocity(nowMs: number, fraction: number): void {
    const v = this.vel;
    const f = this.f;
    const o = this.o;
    const newest = v === null ? f[o + VEL_SECOND]! : v[v.length - 2]!;
    if (newest !== newest) return;
    const windowMs = Math.min(this.s.breaker.velocityWindowMs, velocityBuckets * 1000);
    const second = Math.floor(nowMs / 1000);
    // The window's spend went stale: drop it (an idle campaign keeps no velocity state).
    if (newest <= second - velocityBuckets) {
      this.vel = null;
      f[o + VEL_SECOND] = NONE;
      f[o + VEL_MICROS] = 0;
      return;
    }
    const seconds = Math.ceil(windowMs / 1000);
    let spend = 0;
    if (v === null) {
      if (newest <= second && newest > second - seconds) spend = f[o + VEL_MICROS]!;
    } else {
      for (let i = 0; i < v.length; i += 2) {
        const s = v[i]!;
        if (s <= second && s > second - seconds) spend += v[i + 1]!;
      }
    }
    if (spend === 0) return;
    const curve = this.day.curve;
    const activeMs = Math.max(curve.activeMs, 1);
    const even = this.budget / activeMs;
    let planned: number;
    if (this.s.strategy === 'ASAP') {
      planned = this.s.velocityCapMultiple * even * windowMs;
    } else {
      const ahead = this.budget * (curve.fraction(nowMs + windowMs) - fraction);
      const left = curve.activeBetween(nowMs, curve.activeEndMs);
      const catchUp = left > 0 ? (remaining(this.budget, this.settled) / left) * windowMs : 0;
      planned = Math.max(ahead, catchUp, even * windowMs);
    }
    this.breaker.onVelocity(nowMs, spend, planned, this.budget);
  }

  // ---- control plane --------------------------------------------------------------------------

  reconfigure(config: CampaignConfig, nowMs: number): void {
    // Close a day that ended before this message arrived, or its spend would count today.
    if (nowMs >= this.day.bounds.endMs) this.rollover(nowMs);
    const oldBudget = this.budget;
    this.s = settingsOf(config);
    this.setOwn(config);
    this.breaker.reconfigure(this.s.breaker);
    this.controller.startFor(this.s.strategy);
    this.plan(nowMs);
    this.hour = 0;
    this.validUntilMs = -Infinity;
    this.nextControlMs = -Infinity;
    if (this.budget > oldBudget) this.breakerReset(nowMs, 'BUDGET_RAISED');
    else if (this.breaker.state === 'EXHAUSTED') this.breakerReset(nowMs, 'CONFIG_CHANGED');
    else this.checkExhausted(nowMs);
  }

  /**
   * A time-zone change that moves the campaign to another local date. Today's settled spend stays
   * today's: it is carried into the new day on top of what the store already holds under the new
   * day's key (`storedMicros`, loaded by the shard), so neither day can reach its budget plus the
   * spend of the day in progress. Returns the carried amount, which the shard writes under the
   * new key so that a restart loads it too.
   */
  changeZone(config: CampaignConfig, nowMs: number, storedMicros: number): Micros {
    if (nowMs >= this.day.bounds.endMs) this.rollover(nowMs);
    const carried = this.settled;
    this.reconfigure(config, nowMs);
    const total = boundedTotal(storedMicros + carried, limits.dayTotalMicrosMax);
    if (total === null) {
      this.countersFault = `stored settled spend of ${this.day.bounds.key} (${String(storedMicros)}) plus today's carried ${carried} is out of range`;
    }
    this.settled = total ?? (limits.dayTotalMicrosMax as Micros);
    this.checkExhausted(nowMs);
    return carried;
  }

  /** The admin's manual reset: back to CLOSED (or straight to EXHAUSTED if nothing is left). */
  resetBreaker(nowMs: number): void {
    if (nowMs >= this.validUntilMs) this.refresh(nowMs);
    this.breakerReset(nowMs, 'MANUAL_RESET');
  }

  status(nowMs: number): CampaignStatus {
    if (nowMs >= this.validUntilMs) this.refresh(nowMs);
    else this.control(nowMs);
    this.breaker.advance(nowMs);
    this.checkInvariants();
    const c = this.today;
    return {
      campaignId: this.id,
      version: this.version,
      day: this.day.bounds.key,
      timezone: this.s.timezone,
      budgetMicros: this.budget,
      settledMicros: this.settled,
      reservedMicros: this.reserved,
      remainingMicros: remaining(this.budget, add(add(this.settled, this.reserved), this.held)),
      reservations: this.reservations.size,
      strategy: this.s.strategy,
      throttle: this.controller.throttle,
      pacingIndex: Number.isFinite(this.pacingIndex) ? this.pacingIndex : null as unknown as number,
      planMicros: this.planMicros,
      active: this.inactive === 0,
      inactiveReason:
        this.inactive === 0 ? null : (reasonNames[this.inactive] as CampaignStatus['inactiveReason']),
      countersFault: this.countersFault,
      breaker: {
        state: this.breaker.state,
        since: this.breaker.sinceMs === null ? null : new Date(this.breaker.sinceMs).toISOString(),
        halfOpenShare: this.breaker.share(nowMs),
        tripArmed: this.breaker.fractionArmed,
        trips: this.breaker.trips,
        events: [...this.breaker.events],
      },
      counters: {
        decisions: c.decisions,
        allowed: c.allowed,
        deniedByReason: c.deniedByReason(),
        spendEvents: c.spendEvents,
        duplicateEvents: c.duplicateEvents,
        unmatchedEvents: c.unmatchedEvents,
        overBidEvents: c.overBidEvents,
        expiredReservations: c.expiredReservations,
      },
    };
  }

  checkInvariants(): void {
    let sum = 0;
    for (const r of this.reservations.values()) sum += r.amount;
    assert(this.res === null || this.res.size > 0, `campaign ${this.id}: an empty reservation map kept`);
    assert(sum === this.reserved, `campaign ${this.id}: reserved ${this.reserved} ≠ Σ reservations ${sum}`);
    assert(Number.isSafeInteger(this.settled) && this.settled >= 0, `campaign ${this.id}: bad settled`);
  }
}

/** A stored total as micros when it is a non-negative safe integer within its ceiling, else null. */
function boundedTotal(value: number, ceiling: number): Micros | null {
  return Number.isSafeInteger(value) && value >= 0 && value <= ceiling ? (value as Micros) : null;
}
