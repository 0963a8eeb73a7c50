import type { ScheduleWindow } from '../types.js';
import { weekdays } from '../types.js';
import { addDays, localToEpoch, weekdayOf, type DayBounds } from './zone.js';

/** A half-open interval of epoch ms. */
export interface Interval {
  start: number;
  end: number;
}

export function parseClock(hhmm: string): number {
  const h = Number(hhmm.slice(0, 2));
  const m = Number(hhmm.slice(3, 5));
  return h * 60 + m;
}

/**
 * The active intervals of one local day: the weekly windows (in local time, DST-aware) that fall
 * on this day, including the tail of yesterday's windows that run past midnight, intersected with
 * the flight. Without a schedule the whole day is active. The result is sorted and disjoint.
 */
export function activeIntervals(
  timeZone: string,
  day: DayBounds,
  schedule: readonly ScheduleWindow[] | null,
  flightStartMs: number | null,
  flightEndMs: number | null,
): Interval[] {
  let raw: Interval[];
  if (schedule === null) {
    raw = [{ start: day.startMs, end: day.endMs }];
  } else {
    raw = [];
    const yesterday = addDays(day.date, -1);
    const tomorrow = addDays(day.date, 1);
    for (const [date, next] of [[yesterday, day.date], [day.date, tomorrow]] as const) {
      const wd = weekdays[weekdayOf(date)]!;
      for (const w of schedule) {
        if (!w.days.includes(wd)) continue;
        const s = parseClock(w.start);
        const e = parseClock(w.end);
        const start = localToEpoch(timeZone, date, s);
        const end = e > s ? localToEpoch(timeZone, date, e) : localToEpoch(timeZone, next, e);
        raw.push({ start, end });
      }
    }
  }
  const lo = Math.max(day.startMs, flightStartMs ?? -Infinity);
  const hi = Math.min(day.endMs, flightEndMs ?? Infinity);
  const clipped = raw
    .map((i) => ({ start: Math.max(i.start, lo), end: Math.min(i.end, hi) }))
    .filter((i) => i.end > i.start)
    .sort((a, b) => a.start - b.start);
  const merged: Interval[] = [];
  for (const i of clipped) {
    const last = merged[merged.length - 1];
    if (last !== undefined && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else merged.push({ ...i });
  }
  return merged;
}

export function totalMs(intervals: readonly Interval[]): number {
  let sum = 0;
  for (const i of intervals) sum += i.end - i.start;
  return sum;
}

/** The first interval boundary strictly after t, or Infinity. */
export function nextBoundary(intervals: readonly Interval[], t: number): number {
  for (const i of intervals) {
    if (i.start > t) return i.start;
    if (i.end > t) return i.end;
  }
  return Infinity;
}

export function contains(intervals: readonly Interval[], t: number): boolean {
  for (const i of intervals) {
    if (t < i.start) return false;
    if (t < i.end) return true;
  }
  return false;
}
