/**
 * Wall-clock arithmetic in IANA time zones, on top of Intl (no library: Intl carries the tz
 * database that ships with Node, and we need only offsets and local fields).
 *
 * These functions are pure; they run when a campaign is configured and at its day and schedule
 * boundaries, never per decision. Formatters are cached per zone because building one costs tens
 * of microseconds.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when Intl knows the zone (IANA names such as 'America/New_York', and 'UTC'). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

export interface LocalFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export function localFields(timeZone: string, epochMs: number): LocalFields {
  const out: LocalFields = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(epochMs)) {
    switch (part.type) {
      case 'year': out.year = Number(part.value); break;
      case 'month': out.month = Number(part.value); break;
      case 'day': out.day = Number(part.value); break;
      case 'hour': out.hour = Number(part.value); break;
      case 'minute': out.minute = Number(part.value); break;
      case 'second': out.second = Number(part.value); break;
      default: break;
    }
  }
  return out;
}

/*
 * Offsets memoised by zone and whole second. Building a day plan asks for the same few dozen
 * instants (local midnights, hour and schedule boundaries) for every campaign of a zone, and one
 * formatToParts costs microseconds: onboarding 50,000 campaigns spent most of a shard's time here.
 * The function is pure, so a hit is exact; the table is dropped whole when it grows past its bound.
 */
const offsets = new Map<string, Map<number, number>>();
let offsetsSize = 0;
const offsetsSizeMax = 100_000;

/** The zone's offset from UTC at an instant, in ms (local = utc + offset). */
export function offsetMs(timeZone: string, epochMs: number): number {
  const second = epochMs - (((epochMs % 1000) + 1000) % 1000);
  let zone = offsets.get(timeZone);
  const known = zone?.get(second);
  if (known !== undefined) return known;
  const f = localFields(timeZone, epochMs);
  const offset = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second) - second;
  if (offsetsSize >= offsetsSizeMax) {
    offsets.clear();
    offsetsSize = 0;
    zone = undefined;
  }
  if (zone === undefined) offsets.set(timeZone, (zone = new Map()));
  zone.set(second, offset);
  offsetsSize++;
  return offset;
}

export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

/** The calendar date that follows (or precedes, with delta −1) a local date. */
export function addDays(date: LocalDate, delta: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + delta));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** 0 = Sunday … 6 = Saturday, of a calendar date (independent of any zone). */
export function weekdayOf(date: LocalDate): number {
  return new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay();
}

export function dayKey(date: LocalDate): string {
  const m = date.month < 10 ? `0${date.month}` : String(date.month);
  const d = date.day < 10 ? `0${date.day}` : String(date.day);
  return `${date.year}-${m}-${d}`;
}

const hourMs = 3_600_000;

/**
 * The instant at which the local wall clock shows `minuteOfDay` minutes past midnight of `date`
 * (1440 means the next midnight). Disambiguation follows Temporal's 'compatible': a time that
 * occurs twice (autumn) resolves to the first occurrence; a time skipped by a spring-forward gap
 * resolves to the same distance past the gap, so a midnight that does not exist resolves to the
 * transition itself.
 */
export function localToEpoch(timeZone: string, date: LocalDate, minuteOfDay: number): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day) + minuteOfDay * 60_000;
  const before = offsetMs(timeZone, wall - 14 * hourMs);
  const after = offsetMs(timeZone, wall + 14 * hourMs);
  const tBefore = wall - before;
  const tAfter = wall - after;
  const validBefore = offsetMs(timeZone, tBefore) === before;
  const validAfter = offsetMs(timeZone, tAfter) === after;
  if (validBefore && validAfter) return Math.min(tBefore, tAfter);
  if (validBefore) return tBefore;
  if (validAfter) return tAfter;
  return tBefore;
}

export interface DayBounds {
  key: string;
  date: LocalDate;
  weekday: number;
  startMs: number;
  endMs: number;
}

/** The campaign's local calendar day that contains an instant: 23, 24 or 25 hours long. */
/*
 * The last day asked for, per zone: every instant in [startMs, endMs) has that day, so a hit is
 * exact. A shard loading a million campaigns asks for the same few zones' today a million times.
 */
const lastDays = new Map<string, DayBounds>();

export function dayBounds(timeZone: string, epochMs: number): DayBounds {
  const last = lastDays.get(timeZone);
  if (last !== undefined && epochMs >= last.startMs && epochMs < last.endMs) return last;
  const bounds = computeDayBounds(timeZone, epochMs);
  if (lastDays.size >= offsetsSizeMax) lastDays.clear();
  Object.freeze(bounds.date);
  lastDays.set(timeZone, Object.freeze(bounds));
  return bounds;
}

function computeDayBounds(timeZone: string, epochMs: number): DayBounds {
  const f = localFields(timeZone, epochMs);
  let date: LocalDate = { year: f.year, month: f.month, day: f.day };
  let startMs = localToEpoch(timeZone, date, 0);
  // In a zone whose midnight is skipped, the instant can lie before the resolved day start.
  if (epochMs < startMs) {
    date = addDays(date, -1);
    startMs = localToEpoch(timeZone, date, 0);
  }
  const endMs = localToEpoch(timeZone, addDays(date, 1), 0);
  return { key: dayKey(date), date, weekday: weekdayOf(date), startMs, endMs };
}
