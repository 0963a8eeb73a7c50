import { sfc32 } from '../../shards/rng.js';
import { hourStartsOf } from '../../shards/pacing/day.js';
import type { Interval } from '../../shards/time/schedule.js';
import { type DayBounds, localToEpoch } from '../../shards/time/zone.js';

/**
 * Traffic shapes for the simulator: bid opportunities per local hour (24 slots) or per local
 * minute (1,440 slots) of the campaign's day. Within a slot, arrivals are Poisson at the slot's
 * rate; a slot that a DST day stretches (the repeated autumn hour) keeps its rate and so gets more
 * requests, and a slot that it skips (the spring hour) gets none, as real traffic would.
 */
export interface TrafficShape {
  slot: 'hour' | 'minute' | 'hourOfWeek' | 'timeline';
  /**
   * Requests per slot of an ordinary day, one entry per local slot (24 or 1,440); for 'hourOfWeek',
   * of an ordinary week: 168 local hours, 0 = Monday 00:00; for 'timeline', requests in each real
   * minute from startMs (minute i is [startMs + i·60 s, startMs + (i+1)·60 s)), zero outside.
   */
  requests: number[];
  /** 'timeline' only: the first minute's start, epoch ms (a whole UTC minute). */
  startMs?: number;
  /** Where it came from, for the report. */
  source: string;
}

/** Daily volume of the built-in curve: large enough for smooth hours, small enough to simulate a week in seconds. */
export const builtinDailyRequests = 400_000;

/**
 * The built-in diurnal curve: lowest at 04:00 and highest at 20:00 local time, its peak hour
 * carrying 9× the trough hour's traffic (the ratio the public iPinYou logs show).
 * It rises slowly over 16 hours and falls over 8 (a half-cosine each way), which is the usual
 * shape of consumer traffic: a quiet night, a ramp through the working day, an evening peak.
 * The hourly values are hour means of that curve, rescaled so that trough = 1 and peak = 9.
 */
export function diurnalLevel(hourOfDay: number): number {
  const t = ((hourOfDay % 24) + 24) % 24;
  const rise = 16;
  const u = t >= 4 ? t - 4 : t + 20; // hours since the 04:00 low
  const s = u <= rise ? (1 - Math.cos((Math.PI * u) / rise)) / 2 : (1 + Math.cos((Math.PI * (u - rise)) / (24 - rise))) / 2;
  return s;
}

/** Hour means of a smooth daily shape, rescaled so that the trough hour is 1 and the peak hour 9. */
export function nineToOneHourly(level: (hourOfDay: number) => number): number[] {
  const means: number[] = [];
  for (let h = 0; h < 24; h++) {
    let sum = 0;
    for (let k = 0; k < 60; k++) sum += level(h + (k + 0.5) / 60);
    means.push(sum / 60);
  }
  const lo = Math.min(...means);
  const hi = Math.max(...means);
  return means.map((m) => 1 + (8 * (m - lo)) / (hi - lo));
}

export function builtinHourlyWeights(): number[] {
  return nineToOneHourly(diurnalLevel);
}

export function builtinDiurnal(): TrafficShape {
  const w = builtinHourlyWeights();
  const total = w.reduce((s, x) => s + x, 0);
  return {
    slot: 'hour',
    requests: w.map((x) => Math.round((builtinDailyRequests * x) / total)),
    source: 'built-in diurnal (peak hour = 9 x trough hour)',
  };
}

/**
 * Parses `hour,requests` (24 rows), `minute,requests` (1,440 rows), `hourOfWeek,requests` (168 rows)
 * or a timeline `time,requests`: requests in each real minute, time an ISO 8601 UTC instant at a
 * whole minute (2026-11-23T00:00:00Z), rows in increasing time; minutes between the first and the
 * last row that have no row had no requests (what `npm run backtest -- --traffic-out FILE` writes
 * from the stored minute history).
 */
export function parseTrafficCsv(text: string, source: string): TrafficShape {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const header = lines.shift()?.toLowerCase().replace(/\s+/g, '');
  if (header === 'time,requests') return parseTimeline(lines, source);
  let slot: Exclude<TrafficShape['slot'], 'timeline'>;
  if (header === 'hour,requests') slot = 'hour';
  else if (header === 'minute,requests') slot = 'minute';
  else if (header === 'hourofweek,requests') slot = 'hourOfWeek';
  else throw new Error(`${source}: the header must be "hour,requests", "minute,requests", "hourOfWeek,requests" or "time,requests" (got ${JSON.stringify(header)})`);
  const n = slot === 'hour' ? 24 : slot === 'hourOfWeek' ? 168 : 1440;
  const requests = new Array<number>(n).fill(NaN);
  for (const [i, line] of lines.entries()) {
    const [a, b, ...rest] = line.split(',');
    const k = Number(a);
    const v = Number(b);
    if (rest.length > 0 || !Number.isInteger(k) || k < 0 || k >= n || !Number.isFinite(v) || v < 0) {
      throw new Error(`${source}: line ${i + 2}: expected "${slot},requests" with ${slot} 0-${n - 1} and requests ≥ 0 (got ${JSON.stringify(line)})`);
    }
    if (!Number.isNaN(requests[k]!)) throw new Error(`${source}: ${slot} ${k} appears twice`);
    requests[k] = v;
  }
  const missing = requests.findIndex((v) => Number.isNaN(v));
  if (missing >= 0) throw new Error(`${source}: ${slot} ${missing} is missing (${n} rows are needed)`);
  if (requests.every((v) => v === 0)) throw new Error(`${source}: all slots are zero`);
  return { slot, requests, source };
}

/** The largest timeline the simulator reads: 400 days of minutes. */
export const timelineMinutesMax = 400 * 1440;

function parseTimeline(lines: string[], source: string): TrafficShape {
  const minutes: number[] = [];
  const values: number[] = [];
  for (const [i, line] of lines.entries()) {
    const [a, b, ...rest] = line.split(',');
    const t = Date.parse(a ?? '');
    const v = Number(b);
    if (rest.length > 0 || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$/.test(a ?? '') || !Number.isFinite(t) || t % 60_000 !== 0 || !Number.isFinite(v) || v < 0) {
      throw new Error(`${source}: line ${i + 2}: expected "time,requests" with time an ISO 8601 UTC instant at a whole minute and requests ≥ 0 (got ${JSON.stringify(line)})`);
    }
    if (minutes.length > 0 && t <= minutes[minutes.length - 1]!) throw new Error(`${source}: line ${i + 2}: times must increase`);
    minutes.push(t);
    values.push(v);
  }
  if (minutes.length === 0) throw new Error(`${source}: no rows`);
  const startMs = minutes[0]!;
  const n = (minutes[minutes.length - 1]! - startMs) / 60_000 + 1;
  if (n > timelineMinutesMax) throw new Error(`${source}: the timeline spans more than ${timelineMinutesMax} minutes`);
  if (values.every((v) => v === 0)) throw new Error(`${source}: all minutes are zero`);
  const requests = new Array<number>(n).fill(0);
  minutes.forEach((t, i) => (requests[(t - startMs) / 60_000] = values[i]!));
  return { slot: 'timeline', requests, startMs, source };
}

/** A timeline shape as `time,requests` CSV (rows with zero requests left out). */
export function timelineCsv(shape: TrafficShape): string {
  if (shape.slot !== 'timeline' || shape.startMs === undefined) throw new Error('timelineCsv needs a timeline shape');
  const rows = ['time,requests'];
  shape.requests.forEach((r, i) => {
    if (r > 0 || i === 0 || i === shape.requests.length - 1) rows.push(`${new Date(shape.startMs! + i * 60_000).toISOString()},${r}`);
  });
  return `${rows.join('\n')}\n`;
}

/** One local day of traffic in real time: slot i spans [starts[i], starts[i+1]) at rates[i] per ms. */
export interface DaySlots {
  starts: number[];
  ratesPerMs: number[];
}

export function daySlots(shape: TrafficShape, scale: number, timeZone: string, day: DayBounds): DaySlots {
  let starts: number[];
  let slotMs: number;
  if (shape.slot === 'hourOfWeek') {
    // Row 0 is Monday 00:00; DayBounds.weekday counts from Sunday.
    const first = ((day.weekday + 6) % 7) * 24;
    const rates = shape.requests.slice(first, first + 24).map((r) => (r * scale) / 3_600_000);
    return { starts: hourStartsOf(timeZone, day), ratesPerMs: rates };
  }
  if (shape.slot === 'timeline') {
    // Real minutes of the day, each at the rate its row recorded (none outside the timeline).
    starts = [];
    const rates: number[] = [];
    const origin = shape.startMs ?? 0;
    for (let s = day.startMs; s < day.endMs; s += 60_000) {
      starts.push(s);
      const i = Math.floor((s - origin) / 60_000);
      rates.push(i >= 0 && i < shape.requests.length ? (shape.requests[i]! * scale) / 60_000 : 0);
    }
    starts.push(day.endMs);
    return { starts, ratesPerMs: rates };
  }
  if (shape.slot === 'hour') {
    starts = hourStartsOf(timeZone, day);
    slotMs = 3_600_000;
  } else {
    starts = [];
    for (let m = 0; m < 1440; m++) starts.push(Math.max(day.startMs, localToEpoch(timeZone, day.date, m)));
    starts.push(day.endMs);
    for (let i = 1; i < starts.length; i++) if (starts[i]! < starts[i - 1]!) starts[i] = starts[i - 1]!;
    slotMs = 60_000;
  }
  return { starts, ratesPerMs: shape.requests.map((r) => (r * scale) / slotMs) };
}

/** Expected requests of a day within the given intervals (what the Poisson arrivals average to). */
export function expectedRequests(slots: DaySlots, within: readonly Interval[]): number {
  let sum = 0;
  for (let i = 0; i < slots.ratesPerMs.length; i++) {
    for (const iv of within) {
      const a = Math.max(iv.start, slots.starts[i]!);
      const b = Math.min(iv.end, slots.starts[i + 1]!);
      if (b > a) sum += slots.ratesPerMs[i]! * (b - a);
    }
  }
  return sum;
}

/**
 * A seeded weekly traffic pattern (`hourOfWeek,requests` rows, 0 = Monday 00:00), for tests and
 * measurements on shapes no file in the repository holds: weekdays peak in the working day
 * (09:00-13:00, a broad peak), the weekend in the evening (18:00-22:00, sharper, with 75% of the
 * volume), every day and hour with its own noise; each peak hour is 9× the level far from it before
 * the noise. `dailyRequests` is a weekday's mean volume.
 */
export function seededWeeklyCsv(seed: number, dailyRequests: number): string {
  const u = sfc32(seed, 0x77ee, 0x1234, 0xbeef);
  const peakWeekday = 9 + Math.floor(u() * 5);
  const peakWeekend = 18 + Math.floor(u() * 5);
  const rows = ['hourOfWeek,requests'];
  for (let d = 0; d < 7; d++) {
    const weekend = d >= 5;
    const peak = weekend ? peakWeekend : peakWeekday;
    const width = weekend ? 6 + 4 * u() : 14 + 8 * u();
    const volume = (weekend ? 0.75 : 1) * (0.9 + 0.2 * u());
    const levels: number[] = [];
    for (let h = 0; h < 24; h++) {
      const dist = Math.min(Math.abs(h - peak), 24 - Math.abs(h - peak));
      levels.push((1 + 8 * Math.exp(-(dist * dist) / width)) * (0.9 + 0.2 * u()));
    }
    const sum = levels.reduce((s, x) => s + x, 0);
    for (let h = 0; h < 24; h++) rows.push(`${d * 24 + h},${Math.round((dailyRequests * volume * levels[h]!) / sum)}`);
  }
  return `${rows.join('\n')}\n`;
}

/**
 * Arrival times of a Poisson process whose rate is constant within each slot of these days
 * (the days' slots flattened, ending at endMs): next(from) is the first arrival after `from`,
 * Infinity past the last slot. Calls must come with non-decreasing `from`; draws come from `random`.
 */
export function poissonArrivals(slots: readonly DaySlots[], endMs: number, random: () => number): (from: number) => number {
  const starts: number[] = [];
  const rates: number[] = [];
  for (const s of slots) {
    for (let i = 0; i < s.ratesPerMs.length; i++) {
      starts.push(s.starts[i]!);
      rates.push(s.ratesPerMs[i]!);
    }
  }
  starts.push(endMs);
  let slot = 0;
  return (from: number): number => {
    let t = from;
    while (slot < rates.length) {
      const end = starts[slot + 1]!;
      const r = rates[slot]!;
      if (r > 0 && end > t) {
        const dt = -Math.log(1 - random()) / r;
        if (t + dt < end) return t + dt;
      }
      t = Math.max(t, end);
      slot++;
    }
    return Infinity;
  };
}
