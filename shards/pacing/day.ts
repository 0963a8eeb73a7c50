import { limits } from '../limits.js';
import { BoundedSet } from '../bounded-set.js';
import { floorMicros, type Micros } from '../money.js';
import { activeIntervals, parseClock, totalMs, type Interval } from '../time/schedule.js';
import { addDays, dayBounds, localToEpoch, weekdayOf, type DayBounds, type LocalDate } from '../time/zone.js';
import type { CampaignConfig } from '../types.js';
import { weekdays } from '../types.js';
import { Curve } from './curve.js';

/**
 * Everything about one campaign-day that is computed once, at rollover or on reconfiguration.
 * Everything but the budget is shared, frozen, between the campaigns of the same day shape (see
 * buildDayPlan): read it, never change it.
 */
export interface DayPlan {
  readonly bounds: DayBounds;
  /** Start of each local hour and the day's end: 25 instants (DST days have a 0- or 2-hour hour). */
  readonly hourStarts: readonly number[];
  readonly active: readonly Interval[];
  readonly curve: Curve;
  budgetMicros: Micros;
}

/**
 * The part of a day plan that follows from the zone, the day and the curve's settings alone: what
 * a campaign keeps (its budget is a number in its row), shared by the campaigns of the same shape.
 */
export type DayShape = Omit<DayPlan, 'budgetMicros'>;

/** A day's curve and budget: what a report measures a day's delivery against. */
export type DayCurve = Pick<DayPlan, 'curve' | 'budgetMicros'>;

/**
 * Day shapes by key, shared by every campaign with the same zone, day, strategy, schedule, flight
 * clipped to the day and hourly weights: a million campaigns on a few curves hold a few shapes,
 * not a million (about 1.5 KB each). Insertion order is age; past limits.dayShapesKept the oldest
 * go (their campaigns keep them).
 */
const shapes = new Map<string, DayShape>();
/** The keys of `shapes` in the order they came: past limits.dayShapesKept the oldest is dropped. */
const shapeKeys = new BoundedSet<string>(limits.dayShapesKept);

/** The shape's key, or null when it is not worth sharing (a campaign's own learned ADAPTIVE weights). */
function shapeKey(config: CampaignConfig, bounds: DayBounds, weights: readonly number[] | null, ownWeights: boolean): string | null {
  if (ownWeights) return null;
  const lo = Math.max(bounds.startMs, config.startAtMs ?? -Infinity);
  const hi = Math.min(bounds.endMs, config.endAtMs ?? Infinity);
  return [
    config.timezone,
    bounds.key,
    config.strategy,
    config.frontLoadedShare,
    config.aheadPercent,
    lo,
    hi,
    config.schedule === null ? '' : JSON.stringify(config.schedule),
    weights === null ? '' : weights.join(','),
  ].join('|');
}

function buildShape(config: CampaignConfig, bounds: DayBounds, weights: readonly number[] | null): DayShape {
  const hourStarts = Object.freeze(hourStartsOf(config.timezone, bounds));
  const active = Object.freeze(
    activeIntervals(config.timezone, bounds, config.schedule, config.startAtMs, config.endAtMs).map((i) => Object.freeze(i)),
  );
  const curve = new Curve({
    strategy: config.strategy,
    active,
    hourStarts,
    hourlyWeights: weights,
    frontLoadedShare: config.frontLoadedShare,
    aheadPercent: config.aheadPercent,
  });
  return Object.freeze({ bounds: Object.freeze(bounds), hourStarts, active, curve });
}

export function hourStartsOf(timeZone: string, day: DayBounds): number[] {
  const out: number[] = [];
  for (let h = 0; h < 24; h++) out.push(Math.max(day.startMs, localToEpoch(timeZone, day.date, h * 60)));
  out.push(day.endMs);
  // A skipped hour resolves past the gap; keep the instants monotonic.
  for (let h = 1; h < out.length; h++) if (out[h]! < out[h - 1]!) out[h] = out[h - 1]!;
  return out;
}

/**
 * Builds the plan of the local day that contains nowMs. `profile` is the hourly traffic profile
 * ADAPTIVE plans by (null: plan evenly); `lifetimeSettledMicros` is what earlier days of the flight
 * spent.
 */
export function buildDayPlan(
  config: CampaignConfig,
  nowMs: number,
  profile: ArrayLike<number> | null,
  lifetimeSettledMicros: number,
  /** The profile is one many campaigns plan by (the shard's), so the plan is worth sharing. */
  sharedProfile = false,
): DayPlan {
  const shape = buildDayShape(config, nowMs, profile, sharedProfile);
  const budgetMicros = dailyAllowance(config, shape.bounds, shape.active, lifetimeSettledMicros);
  return { bounds: shape.bounds, hourStarts: shape.hourStarts, active: shape.active, curve: shape.curve, budgetMicros };
}

/**
 * The shape of the local day that contains nowMs (buildDayPlan without the budget): the same frozen
 * object for every campaign of the same zone, day and curve settings, unless `profile` is the
 * campaign's own (`sharedProfile` false with ADAPTIVE).
 */
export function buildDayShape(
  config: CampaignConfig,
  nowMs: number,
  profile: ArrayLike<number> | null,
  sharedProfile = false,
): DayShape {
  const bounds = dayBounds(config.timezone, nowMs);
  let weights: readonly number[] | null = null;
  if (config.strategy === 'CUSTOM') weights = config.hourlyWeights;
  else if (config.strategy === 'ADAPTIVE' && profile !== null) weights = Array.from(profile);
  const key = shapeKey(config, bounds, weights, config.strategy === 'ADAPTIVE' && profile !== null && !sharedProfile);
  let shape = key === null ? undefined : shapes.get(key);
  if (shape === undefined) {
    shape = buildShape(config, bounds, weights);
    if (key !== null) {
      shapes.set(key, shape);
      const forgotten = shapeKeys.add(key);
      if (forgotten !== undefined) shapes.delete(forgotten);
    }
  }
  return shape;
}

/**
 * The day's budget. Without a lifetime budget it is the daily budget. With one, the remaining
 * lifetime budget is spread over the remaining active time of the flight, today's share in
 * proportion to its active time, and capped at catchUpMaxRatio × the even share (so that a paused
 * or underdelivering flight does not dump its remainder in a few days) and at the daily budget.
 */
export function dailyAllowance(
  config: CampaignConfig,
  today: DayBounds,
  todayActive: readonly Interval[],
  lifetimeSettledMicros: number,
): Micros {
  const lifetime = config.lifetimeBudgetMicros;
  if (lifetime === null) return config.dailyBudgetMicros;
  const left = Math.max(0, lifetime - lifetimeSettledMicros);
  if (config.endAtMs === null) return Math.min(config.dailyBudgetMicros, left) as Micros;
  const todayMs = totalMs(todayActive);
  if (todayMs <= 0) return Math.min(config.dailyBudgetMicros, left) as Micros;
  const remainingMs = todayMs + activeMsBetween(config, addDays(today.date, 1), config.endAtMs);
  const flightStart = config.startAtMs ?? today.startMs;
  const flightMs = activeMsBetween(config, dayBounds(config.timezone, flightStart).date, config.endAtMs);
  const share = floorMicros((left * todayMs) / Math.max(remainingMs, todayMs));
  const cap = floorMicros((config.catchUpMaxRatio * lifetime * todayMs) / Math.max(flightMs, todayMs));
  return Math.min(share, cap, config.dailyBudgetMicros) as Micros;
}

/**
 * Active ms of the flight from the start of local date `from` to endAtMs. Whole days in between
 * count by the weekly schedule (exact but for the DST hour, a negligible error in a share); the
 * first and last days are computed exactly.
 */
function activeMsBetween(config: CampaignConfig, from: LocalDate, endAtMs: number): number {
  const tz = config.timezone;
  const first = localToEpoch(tz, from, 0);
  if (first >= endAtMs) return 0;
  const last = dayBounds(tz, endAtMs - 1);
  const perWeekday = weeklyActiveMs(config);
  let sum = 0;
  let date = from;
  for (let i = 0; i < 3660; i++) {
    const bounds = dayBounds(tz, localToEpoch(tz, date, 0));
    if (bounds.key === last.key || i === 0) {
      sum += totalMs(activeIntervals(tz, bounds, config.schedule, config.startAtMs, endAtMs));
      if (bounds.key === last.key) break;
    } else {
      sum += perWeekday[weekdayOf(date)]!;
    }
    date = addDays(date, 1);
  }
  return sum;
}

/** Active ms of a 24-hour day by weekday, from the weekly schedule. */
function weeklyActiveMs(config: CampaignConfig): number[] {
  const out = new Array<number>(7).fill(config.schedule === null ? 86_400_000 : 0);
  if (config.schedule === null) return out;
  for (const w of config.schedule) {
    const s = parseClock(w.start);
    const e = parseClock(w.end);
    for (const d of w.days) {
      const wd = weekdays.indexOf(d);
      if (e > s) out[wd]! += (e - s) * 60_000;
      else {
        out[wd]! += (1440 - s) * 60_000;
        out[(wd + 1) % 7]! += e * 60_000;
      }
    }
  }
  return out.map((ms) => Math.min(ms, 86_400_000));
}
