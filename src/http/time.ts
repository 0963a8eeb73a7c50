/**
 * The one parser of instants for every API that takes a time (admin history `from`/`to`, campaign
 * `startAt`/`endAt`): ISO 8601 / RFC 3339 date-time with a zone, `YYYY-MM-DDTHH:MM[:SS[.fraction]]`
 * then `Z` or `±HH:MM`. Each field is checked against its range, so `2026-02-30T00:00:00Z` or
 * `T24:00` are refused rather than rolled over into the next month or day the way `Date.parse` does;
 * a time without a zone is refused too, since it would be read in the server's zone. A fraction
 * finer than milliseconds is accepted and truncated.
 */
const instantPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

export const instantFormat = 'an ISO 8601 date-time with a zone, like 2026-12-01T00:00:00Z or 2026-12-01T09:30:00+01:00';

/** Milliseconds since the epoch, or null when `s` is not a valid instant in the format above. */
export function parseInstant(s: string): number | null {
  if (s.length > 40) return null;
  const m = instantPattern.exec(s);
  if (m === null) return null;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const d = new Date(0);
  // setUTCFullYear, unlike Date.UTC, keeps years 0-99 as they are.
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime() - offsetMinutes * 60_000;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
