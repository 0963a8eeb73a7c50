import { limits } from '../../shards/limits.js';
import { type DayBounds, dayBounds, type LocalDate, localToEpoch } from '../../shards/time/zone.js';
import { type CampaignConfig, strategies, type Strategy } from '../../shards/types.js';
import { clearingFraction, type DayRow, type SimOptions, simDefaults } from './run.js';
import type { TrafficShape } from './traffic.js';
import { fitProfile, fitRangeMs, profileHalfLifeDaysDefault } from '../profile/fit.js';
import { preview } from '../http/preview.js';

/**
 * Backtests (docs/pacing.md, "Backtests"): a campaign's stored minute history, replayed through the
 * simulator (src/sim/run.ts, the production shard on a simulated clock) under each strategy.
 *
 * The traffic is the campaign's own: the decisions recorded in each minute of the range become the
 * requests of that minute of a `time,requests` timeline (src/sim/traffic.ts), Poisson within the
 * minute. The campaign's daily budget, time zone, schedule and strategy parameters are its current
 * configuration; the bid and the win rate are what its history shows (mean price / mean clearing
 * fraction, wins / allowed), or the simulator's defaults when it spent nothing. Each strategy's row
 * sums or averages the simulator's daily rows (each day against its own plan) over the range.
 *
 * What is not replayed: flights and lifetime budgets (every day has the daily budget), the exact
 * prices (the simulator's second-price model), and bidders' reactions: minutes in which the real
 * campaign was exhausted or paused carry what bidders asked then.
 *
 * Thinning: the simulator's cost grows with the requests it replays, so above
 * limits.backtestRequestsPerStrategyMax recorded decisions the traffic is thinned by the smallest
 * integer k that brings it under the limit: each simulated request stands for k recorded ones.
 * Minute i gets floor(C_i / k) − floor(C_{i−1} / k) requests (C: the cumulative recorded count, so
 * the thinned total is floor(total / k) and no minute's share drifts), and the bid is k times the
 * recorded one, so a request's expected spend (win rate × price) is k times a recorded request's:
 * the same spend per recorded decision. The budget, the schedule and the strategy are unchanged.
 * What it costs: reservations and wins come in k-times coarser steps (against the same budget),
 * and the Poisson noise of a minute is that of C/k arrivals (docs/pacing.md, "Backtests").
 */

/** The body of POST /v1/campaigns/:id/backtest and the options of `npm run backtest`. */
export interface BacktestRange {
  from: LocalDate;
  to: LocalDate;
  fromKey: string;
  toKey: string;
  days: number;
  /** [start of from, end of to) in the campaign's zone. */
  startMs: number;
  endMs: number;
}

export class BacktestInputError extends Error {
  constructor(
    readonly code: 'INVALID_FIELD' | 'RANGE_TOO_LARGE' | 'UNKNOWN_STRATEGY',
    message: string,
  ) {
    super(message);
  }
}

function parseDay(name: string, raw: unknown): LocalDate {
  const m = typeof raw === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw) : null;
  const date = m === null ? null : { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
  // Strict: 2026-02-30 is refused, not rolled over into March.
  const check = date === null ? null : new Date(Date.UTC(date.year, date.month - 1, date.day));
  if (date === null || check === null || check.getUTCFullYear() !== date.year || check.getUTCMonth() + 1 !== date.month || check.getUTCDate() !== date.day || date.year < 1970 || date.year > 9999) {
    throw new BacktestInputError('INVALID_FIELD', `${name} must be a local date YYYY-MM-DD (got ${preview(raw)})`);
  }
  return date;
}

const keyOf = (d: LocalDate): string => `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;

/** Validates from and to (local dates of the campaign's zone, to not after today there). */
export function parseBacktestRange(fromRaw: unknown, toRaw: unknown, timeZone: string, nowMs: number): BacktestRange {
  const from = parseDay('from', fromRaw);
  const to = parseDay('to', toRaw);
  const days = Math.round((Date.UTC(to.year, to.month - 1, to.day) - Date.UTC(from.year, from.month - 1, from.day)) / 86_400_000) + 1;
  if (days < 1) throw new BacktestInputError('INVALID_FIELD', `from (${keyOf(from)}) must not be after to (${keyOf(to)})`);
  if (days > limits.backtestDaysMax) {
    throw new BacktestInputError('RANGE_TOO_LARGE', `a backtest spans at most backtestDaysMax = ${limits.backtestDaysMax} days (asked for ${days})`);
  }
  const today = dayBounds(timeZone, nowMs).key;
  if (keyOf(to) > today) throw new BacktestInputError('INVALID_FIELD', `to (${keyOf(to)}) is after today (${today} in ${timeZone}): there is no history yet`);
  const startMs = localToEpoch(timeZone, from, 0);
  const last: DayBounds = dayBounds(timeZone, localToEpoch(timeZone, to, 0));
  return { from, to, fromKey: keyOf(from), toKey: keyOf(to), days, startMs, endMs: last.endMs };
}

/** Validates the strategies asked for; none: every strategy. */
export function parseStrategies(raw: unknown): Strategy[] {
  if (raw === undefined || raw === null) return [...strategies];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > strategies.length * 2) {
    throw new BacktestInputError('INVALID_FIELD', `strategies must be a non-empty array of ${strategies.join(', ')}`);
  }
  const out: Strategy[] = [];
  for (const s of raw) {
    const name = typeof s === 'string' ? s.toUpperCase() : s;
    if (!strategies.includes(name as Strategy)) {
      throw new BacktestInputError('UNKNOWN_STRATEGY', `unknown strategy ${preview(s)}: one of ${strategies.join(', ')}`);
    }
    if (!out.includes(name as Strategy)) out.push(name as Strategy);
  }
  return out;
}

/** What a backtest reads of one stored minute (src/store/config-store.ts MinuteRow). */
export interface HistoryMinute {
  minuteMs: number;
  decisions: number;
  allowed: number;
  spendEvents: number;
  settledMicros: number;
  breakerState: string;
  deniedByReason: Record<string, number>;
}

/**
 * The history a backtest reads: the range, and before it what a fit at the range's start reads
 * (src/profile/fit.ts fitRangeMs, within the history's retention), so that the campaign starts
 * the range with the profile the admin would have sent it then.
 */
export function backtestReadFromMs(range: BacktestRange, halfLifeDays: number, retentionDays: number, nowMs: number): number {
  return Math.max(fitRangeMs(range.startMs, halfLifeDays).fromMs, nowMs - retentionDays * 86_400_000);
}

/** The simulator's options for a backtest of one campaign over a range, without the strategy. */
export interface BacktestSetup {
  options: Partial<SimOptions>;
  /** Decisions in the range's history (recorded requests). */
  requests: number;
  /** Each simulated request stands for this many recorded ones (1: no thinning). */
  thinning: number;
  /** Requests the simulator replays per strategy: floor(requests / thinning). */
  simulatedRequests: number;
  /** The bid the history shows, before it is multiplied by thinning (options.bidMicros is after). */
  recordedBidMicros: number;
  /** Minutes of the range with a stored row. */
  minutesWithHistory: number;
}

/**
 * Null when the range holds no recorded decision. Minutes before the range (if any) are fitted
 * into the profile the campaign starts with (halfLifeDays: PACER_PROFILE_HALF_LIFE_DAYS).
 */
/**
 * The thinning factor of a backtest of `total` recorded requests: at least `forced` (1 by default),
 * or exactly `forced` when `exact` (`npm run backtest -- --thinning K` on the operator's machine,
 * which may replay every request above the limit; the API only thins more, never less).
 */
export function thinningFor(total: number, forced = 1, exact = false): number {
  if (exact) return Math.max(1, forced);
  return Math.max(forced, Math.ceil(total / limits.backtestRequestsPerStrategyMax), 1);
}

/** Requests per minute thinned by k: cumulative rounding, so the total is floor(Σ / k). */
export function thinTraffic(requests: readonly number[], k: number): number[] {
  if (k === 1) return [...requests];
  const out = new Array<number>(requests.length);
  let cum = 0;
  let before = 0;
  for (let i = 0; i < requests.length; i++) {
    cum += requests[i]!;
    const now = Math.floor(cum / k);
    out[i] = now - before;
    before = now;
  }
  return out;
}

export function backtestSetup(
  config: CampaignConfig,
  minutes: readonly HistoryMinute[],
  range: BacktestRange,
  seed: number,
  halfLifeDays: number = profileHalfLifeDaysDefault,
  /** Thin by at least this factor even under the limit (`--thinning K`: to measure what thinning costs). */
  forcedThinning = 1,
  /** Thin by exactly forcedThinning, even 1 above the limit (the command's --thinning). */
  exactThinning = false,
): BacktestSetup | null {
  const n = Math.round((range.endMs - range.startMs) / 60_000);
  const requests = new Array<number>(n).fill(0);
  let total = 0;
  let allowed = 0;
  let wins = 0;
  let settled = 0;
  let rows = 0;
  for (const m of minutes) {
    const i = Math.floor((m.minuteMs - range.startMs) / 60_000);
    if (i < 0 || i >= n) continue;
    rows++;
    const d = Number.isFinite(m.decisions) && m.decisions > 0 ? m.decisions : 0;
    requests[i]! += d;
    total += d;
    allowed += Math.max(0, m.allowed);
    wins += Math.max(0, m.spendEvents);
    settled += Math.max(0, m.settledMicros);
  }
  if (total === 0) return null;
  const earlier = minutes.filter((m) => m.minuteMs < range.startMs);
  const fitted = earlier.length === 0 ? null : fitProfile(earlier, config.timezone, range.startMs, halfLifeDays);
  const k = thinningFor(total, forcedThinning, exactThinning);
  const thinned = thinTraffic(requests, k);
  const source = `minute history of ${config.id}, ${range.fromKey} to ${range.toKey}${k === 1 ? '' : `, thinned by ${k}`}`;
  const traffic: TrafficShape = { slot: 'timeline', requests: thinned, startMs: range.startMs, source };
  const meanFraction = (clearingFraction.min + clearingFraction.max) / 2;
  const recordedBidMicros = wins > 0 && settled > 0 ? Math.max(1, Math.round(settled / wins / meanFraction)) : simDefaults.bidMicros;
  const bidMicros = Math.min(limits.bidMicrosMax, recordedBidMicros * k);
  const winRate = wins > 0 && allowed > 0 ? Math.min(1, wins / allowed) : simDefaults.winRate;
  return {
    requests: total,
    thinning: k,
    simulatedRequests: Math.floor(total / k),
    recordedBidMicros,
    minutesWithHistory: rows,
    options: {
      days: range.days,
      date: range.toKey,
      seed,
      timezone: config.timezone,
      traffic,
      trafficScale: 1,
      dailyBudgetMicros: config.dailyBudgetMicros,
      bidMicros,
      winRate: Number(winRate.toFixed(6)),
      frontLoadedShare: config.frontLoadedShare,
      aheadPercent: config.aheadPercent,
      hourlyWeights: config.hourlyWeights,
      schedule: config.schedule,
      breakerEnabled: config.breaker.enabled,
      initialProfile: fitted === null ? null : { density: fitted.density, fittedAtMs: fitted.fittedAtMs },
    },
  };
}

/** One strategy's backtest: the range's daily rows of the simulator, summed or averaged. */
export interface BacktestRow {
  strategy: Strategy;
  /** Days with traffic (the simulator leaves a day without a single request out). */
  days: number;
  /** Σ spend / Σ budget over the days. */
  deliveryRatio: number;
  /** The largest day's max(0, S − B) / B. */
  overspend: number;
  /** The mean over the days of the slot pacing error (NRMSE of hourly spend against the plan). */
  slotPacingError: number;
  /** The mean over the days of the early-exhaustion fraction. */
  earlyExhaustion: number;
  /** Breaker trips over the days. */
  breakerTrips: number;
  budgetMicros: number;
  spentMicros: number;
  daily: { day: string; weekday: string; budgetMicros: number; spentMicros: number; deliveryRatio: number; overspendRatio: number; slotNrmse: number; earlyExhaustionFraction: number; breakerTrips: number }[];
}

type DailyIn = Pick<DayRow, 'day' | 'weekday' | 'budgetMicros' | 'spentMicros' | 'deliveryRatio' | 'overspendRatio' | 'slotNrmse' | 'earlyExhaustionFraction' | 'breakerTrips'>;

/** The row of a strategy from the simulator's daily rows (a report's detail.daily, or --json's daily). */
export function summarize(strategy: Strategy, daily: readonly DailyIn[]): BacktestRow {
  let budget = 0;
  let spent = 0;
  let over = 0;
  let nrmse = 0;
  let early = 0;
  let trips = 0;
  for (const d of daily) {
    budget += d.budgetMicros;
    spent += d.spentMicros;
    over = Math.max(over, d.overspendRatio);
    nrmse += d.slotNrmse;
    early += d.earlyExhaustionFraction;
    trips += d.breakerTrips;
  }
  const n = Math.max(1, daily.length);
  return {
    strategy,
    days: daily.length,
    deliveryRatio: budget > 0 ? spent / budget : 0,
    overspend: over,
    slotPacingError: nrmse / n,
    earlyExhaustion: early / n,
    breakerTrips: trips,
    budgetMicros: budget,
    spentMicros: spent,
    daily: daily.map((d) => ({
      day: d.day,
      weekday: d.weekday,
      budgetMicros: d.budgetMicros,
      spentMicros: d.spentMicros,
      deliveryRatio: d.deliveryRatio,
      overspendRatio: d.overspendRatio,
      slotNrmse: d.slotNrmse,
      earlyExhaustionFraction: d.earlyExhaustionFraction,
      breakerTrips: d.breakerTrips,
    })),
  };
}

/**
 * The `npm run simulate` command that replays the same run (with the traffic written by
 * --traffic-out), or null when the campaign's schedule is not one window on every day.
 */
export function simulateCommand(setup: BacktestSetup, strategy: Strategy, trafficFile: string, profileFile: string | null = null): string | null {
  const o = setup.options;
  let window = '';
  if (o.schedule !== null && o.schedule !== undefined) {
    const w = o.schedule;
    if (w.length !== 1 || w[0]!.days.length !== 7) return null;
    window = ` --window ${w[0]!.start}-${w[0]!.end}`;
  }
  const custom = strategy === 'CUSTOM' && o.hourlyWeights !== null && o.hourlyWeights !== undefined ? ` --hourly-weights ${o.hourlyWeights.join(',')}` : '';
  return (
    `npm run simulate -- --strategy ${strategy} --traffic ${trafficFile} --days ${o.days} --date ${o.date} --seed ${o.seed}` +
    ` --timezone ${o.timezone} --daily-budget-micros ${o.dailyBudgetMicros} --bid-micros ${o.bidMicros} --win-rate ${o.winRate}` +
    ` --front-loaded-share ${o.frontLoadedShare} --ahead-percent ${o.aheadPercent}${custom}${window}${o.breakerEnabled === false ? ' --no-breaker' : ''}` +
    `${o.initialProfile && profileFile !== null ? ` --profile ${profileFile}` : ''} --json`
  );
}

/** The line above the table: how many recorded requests each simulated one stands for. */
export function thinningNote(setup: BacktestSetup): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  return setup.thinning === 1
    ? `thinning: 1 (every recorded request replayed: ${n(setup.requests)} per strategy; backtestRequestsPerStrategyMax = ${n(limits.backtestRequestsPerStrategyMax)})`
    : `thinning: ${setup.thinning} (each simulated request stands for ${setup.thinning} recorded ones, bid ${setup.options.bidMicros} micros: ` +
        `${n(setup.simulatedRequests)} simulated requests per strategy for ${n(setup.requests)} recorded; backtestRequestsPerStrategyMax = ${n(limits.backtestRequestsPerStrategyMax)})`;
}

/** The table `npm run backtest` prints. */
export function backtestTable(rows: readonly BacktestRow[]): string {
  const head = ['strategy', 'days', 'delivery', 'overspend', 'slot error', 'early exh.', 'breaker trips'];
  const body = rows.map((r) => [
    r.strategy,
    String(r.days),
    `${(100 * r.deliveryRatio).toFixed(1)}%`,
    `${(100 * r.overspend).toFixed(2)}%`,
    r.slotPacingError.toFixed(3),
    `${(100 * r.earlyExhaustion).toFixed(1)}%`,
    String(r.breakerTrips),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** One strategy's run as a piscina task (src/sim/backtest-task.ts). */
export interface BacktestJob {
  options: Partial<SimOptions>;
  strategy: Strategy;
}

/** Runs every strategy on the pool, one task each, in parallel as far as its threads go. */
export async function runBacktest(setup: BacktestSetup, list: readonly Strategy[], run: (job: BacktestJob) => Promise<BacktestRow>): Promise<BacktestRow[]> {
  return Promise.all(list.map((strategy) => run({ options: setup.options, strategy })));
}

/** The task file for piscina. */
export const backtestTaskUrl = new URL('./backtest-task.js', import.meta.url).href;
