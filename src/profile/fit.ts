import { type FittedProfile, weekHours } from '../../shards/pacing/profile.js';
import { offsetMs } from '../../shards/time/zone.js';

/**
 * Fits a campaign's traffic profile from its stored minute history (migrations/0003_history.sql):
 * opportunities per ms by local weekday and hour, each past hour weighted by an exponential decay
 * of its age, so that last week counts fully and older weeks fade with the half-life. Pure: the
 * admin thread runs it on its piscina pool (src/profile/task.ts), the simulator runs it inline.
 *
 * Which minutes teach something. A minute row exists when the campaign had activity in it. A row
 * is left out when the campaign was exhausted (breaker state EXHAUSTED) or paused, archived or
 * outside its flight in that minute (such denials in the row): bidders stop asking a campaign that
 * cannot buy, so those minutes show the campaign's state, not the traffic. An hour of one date is
 * used when at least fitMinutesPerHourMin of its minutes remain, and its density is its decisions
 * over those minutes; a minute without a row counts as not observed (the process was down, or
 * nothing came), which overstates very sparse hours a little: such campaigns have too little
 * traffic for a shape to matter.
 */
export interface MinuteTraffic {
  minuteMs: number;
  decisions: number;
  breakerState: string;
  deniedByReason: Record<string, number>;
}

/** An hour of one date teaches the profile only with at least this many observed minutes. */
export const fitMinutesPerHourMin = 30;
/** PACER_PROFILE_HALF_LIFE_DAYS's default: last week weighs 1, the week before about 0.7. */
export const profileHalfLifeDaysDefault = 14;
/** How far back a fit reads: beyond eight half-lives an hour weighs under 0.4%. */
export const fitHalfLivesRead = 8;

const minuteMs = 60_000;
const hourMs = 3_600_000;
const dayMs = 86_400_000;

/** Denials that mean the bidder was not asking for the traffic's sake (see above). */
const mutedReasons = ['CAMPAIGN_PAUSED', 'CAMPAIGN_ARCHIVED', 'OUTSIDE_FLIGHT', 'COUNTERS_OUT_OF_RANGE'];

function muted(row: MinuteTraffic): boolean {
  if (row.breakerState === 'EXHAUSTED') return true;
  for (const r of mutedReasons) if ((row.deniedByReason[r] ?? 0) > 0) return true;
  return false;
}

/** The rows a fit at nowMs reads: [nowMs − fitHalfLivesRead half-lives, nowMs). */
export function fitRangeMs(nowMs: number, halfLifeDays: number): { fromMs: number; toMs: number } {
  return { fromMs: nowMs - Math.ceil(fitHalfLivesRead * halfLifeDays * dayMs), toMs: nowMs };
}

/**
 * The fitted profile at nowMs from minute rows (any order) in the campaign's time zone; null when
 * no hour had enough observed minutes. Only hours that ended before nowMs count.
 */
export function fitProfile(rows: readonly MinuteTraffic[], timeZone: string, nowMs: number, halfLifeDays: number): (FittedProfile & { hoursUsed: number }) | null {
  // Local hours (local epoch ms / hour) → decisions and observed minutes.
  const hours = new Map<number, { decisions: number; minutes: number; endMs: number }>();
  for (const row of rows) {
    if (!(row.minuteMs + minuteMs <= nowMs) || muted(row)) continue;
    const local = Math.floor((row.minuteMs + offsetMs(timeZone, row.minuteMs)) / hourMs);
    let h = hours.get(local);
    if (h === undefined) {
      h = { decisions: 0, minutes: 0, endMs: 0 };
      hours.set(local, h);
    }
    h.decisions += Number.isFinite(row.decisions) && row.decisions > 0 ? row.decisions : 0;
    h.minutes++;
    h.endMs = Math.max(h.endMs, row.minuteMs + minuteMs);
  }
  const sum = new Float64Array(weekHours);
  const weight = new Float64Array(weekHours);
  const halfLifeMs = halfLifeDays * dayMs;
  let hoursUsed = 0;
  for (const [local, h] of hours) {
    // A repeated autumn hour holds up to 120 minutes: its density is per minute all the same.
    if (h.minutes < fitMinutesPerHourMin) continue;
    hoursUsed++;
    const date = new Date(local * hourMs);
    const i = date.getUTCDay() * 24 + date.getUTCHours();
    const w = 2 ** (-Math.max(0, nowMs - h.endMs) / halfLifeMs);
    sum[i]! += (w * h.decisions) / (h.minutes * minuteMs);
    weight[i]! += w;
  }
  let any = false;
  const density: (number | null)[] = [];
  for (let i = 0; i < weekHours; i++) {
    if (weight[i]! > 0) {
      density.push(sum[i]! / weight[i]!);
      any = true;
    } else density.push(null);
  }
  return any ? { density, fittedAtMs: nowMs, hoursUsed } : null;
}

/**
 * The shard-wide fallback from the campaigns' fitted profiles: each campaign-weekday's shape
 * normalised to a mean of 1 over its known hours (so a big campaign does not drown the others'
 * shape), averaged hour by hour. Null without any.
 */
export function fitGlobalProfile(profiles: readonly FittedProfile[], nowMs: number): FittedProfile | null {
  const sum = new Float64Array(weekHours);
  const count = new Float64Array(weekHours);
  for (const p of profiles) {
    for (let d = 0; d < 7; d++) {
      let s = 0;
      let n = 0;
      for (let h = 0; h < 24; h++) {
        const v = p.density[d * 24 + h];
        if (typeof v === 'number' && v > 0) {
          s += v;
          n++;
        }
      }
      if (n === 0 || s <= 0) continue;
      for (let h = 0; h < 24; h++) {
        const v = p.density[d * 24 + h];
        if (typeof v === 'number' && v > 0) {
          sum[d * 24 + h]! += v / (s / n);
          count[d * 24 + h]!++;
        }
      }
    }
  }
  const density = Array.from(sum, (s, i) => (count[i]! > 0 ? s / count[i]! : null));
  return density.some((v) => v !== null) ? { density, fittedAtMs: nowMs } : null;
}
