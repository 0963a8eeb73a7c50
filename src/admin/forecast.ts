import { limits } from '../../shards/limits.js';
import { buildDayPlan } from '../../shards/pacing/day.js';
import { weekHours } from '../../shards/pacing/profile.js';
import { dayBounds, offsetMs } from '../../shards/time/zone.js';
import type { CampaignConfig } from '../../shards/types.js';

/**
 * The forecast of GET /v1/campaigns/:id/forecast (docs/pacing.md, "Forecast"): where today's spend
 * ends and when the budget runs out, if it does, at the pace of the last minutes.
 *
 * The rest of the day is divided into minutes. Each minute's expected spend is the recent spend
 * rate r (settled micros per minute over the last forecastRecentMinutes minutes of today's
 * history) scaled by how much busier that minute is than the recent ones: by the campaign's
 * traffic profile (its opportunities per minute at that local weekday and hour, zero outside the
 * active window) when it has one, else by the plan's rate (the plan's spend in that minute). The
 * throttle is taken to stay where it is: the forecast says where the current pace leads, which is
 * what an operator watching a campaign wants before the pacer corrects it. Without recent spend
 * to scale (the first minutes of the day, or none of them active) the rest of the plan is the
 * forecast. The expected spend is capped at the budget; the exhaustion time is the first minute
 * whose cumulative expected spend reaches it (null if none before the day ends).
 */
export interface ForecastInput {
  config: CampaignConfig;
  nowMs: number;
  /** Today's settled spend and budget (the shard's status). */
  spentMicros: number;
  budgetMicros: number;
  /** Settled micros by minute start (epoch ms), of today's stored history. */
  settledByMinute: ReadonlyMap<number, number>;
  /** The campaign's traffic profile (density by weekday × 24 + hour, weekday 0 = Sunday), or null. */
  profile: readonly (number | null)[] | null;
}

export interface Forecast {
  campaignId: string;
  day: string;
  timezone: string;
  asOf: string;
  dayEndsAt: string;
  basis: 'profile' | 'plan';
  budgetMicros: number;
  spentMicros: number;
  recentMinutes: number;
  recentRateMicrosPerMinute: number;
  expectedSpendMicros: number;
  expectedExhaustionAt: string | null;
}

const minuteMs = 60_000;

/** The profile's weekday-hour values, the unknown ones filled with their weekday's mean; null without any. */
function filledProfile(p: readonly (number | null)[] | null): number[] | null {
  if (p === null || p.length !== weekHours) return null;
  const out: number[] = [];
  let any = false;
  for (let d = 0; d < 7; d++) {
    const known = p.slice(d * 24, d * 24 + 24).filter((v): v is number => typeof v === 'number' && v >= 0);
    const mean = known.length > 0 ? known.reduce((s, v) => s + v, 0) / known.length : 0;
    for (let h = 0; h < 24; h++) {
      const v = p[d * 24 + h];
      out.push(typeof v === 'number' && v >= 0 ? v : mean);
    }
    if (known.length > 0) any = true;
  }
  return any ? out : null;
}

export function forecast(input: ForecastInput): Forecast {
  const { config, nowMs } = input;
  const tz = config.timezone;
  const day = dayBounds(tz, nowMs);
  const plan = buildDayPlan(config, nowMs, null, 0);
  const budget = input.budgetMicros;
  const spent = input.spentMicros;
  const density = filledProfile(input.profile);
  const basis: Forecast['basis'] = density === null ? 'plan' : 'profile';
  const activeAt = (t: number): boolean => plan.active.some((iv) => t >= iv.start && t < iv.end);
  /** The shape's weight of the minute starting at t: traffic by the profile, or the plan's spend. */
  const weight = (t: number): number => {
    const e = Math.min(day.endMs, t + minuteMs);
    if (density === null) return Math.max(0, plan.curve.fraction(e) - plan.curve.fraction(t));
    if (!activeAt(t)) return 0;
    const local = new Date(t + offsetMs(tz, t));
    return density[local.getUTCDay() * 24 + local.getUTCHours()]! * ((e - t) / minuteMs);
  };

  // The recent rate: whole minutes of today before now's minute.
  const nowMinute = Math.floor(nowMs / minuteMs) * minuteMs;
  const recentStart = Math.max(day.startMs, nowMinute - limits.forecastRecentMinutes * minuteMs);
  const recentMinutes = Math.max(0, Math.round((nowMinute - recentStart) / minuteMs));
  let recentSpend = 0;
  let recentWeight = 0;
  for (let t = recentStart; t < nowMinute; t += minuteMs) {
    recentSpend += input.settledByMinute.get(t) ?? 0;
    recentWeight += weight(t);
  }
  const rate = recentMinutes > 0 ? recentSpend / recentMinutes : 0;
  const scaled = recentMinutes > 0 && recentWeight > 0 && recentSpend > 0;
  const perWeight = scaled ? recentSpend / recentWeight : 0;
  const planRemaining = (t: number): number => budget * Math.max(0, plan.curve.fraction(Math.min(day.endMs, t + minuteMs)) - plan.curve.fraction(t));

  let total = spent;
  let exhaustedAt: number | null = spent >= budget && budget > 0 ? nowMs : null;
  // The current minute counts from now; the ones after it whole.
  for (let t = nowMinute; t < day.endMs && exhaustedAt === null; t += minuteMs) {
    const share = t === nowMinute ? (Math.min(day.endMs, t + minuteMs) - nowMs) / Math.min(minuteMs, day.endMs - t) : 1;
    const add = share * (scaled ? perWeight * weight(t) : recentSpend === 0 && recentMinutes > 0 && recentWeight > 0 ? 0 : planRemaining(t));
    total += add;
    if (budget > 0 && total >= budget) exhaustedAt = Math.min(day.endMs, t + minuteMs);
  }
  return {
    campaignId: config.id,
    day: day.key,
    timezone: tz,
    asOf: new Date(nowMs).toISOString(),
    dayEndsAt: new Date(day.endMs).toISOString(),
    basis,
    budgetMicros: budget,
    spentMicros: spent,
    recentMinutes,
    recentRateMicrosPerMinute: Math.round(rate * 1000) / 1000,
    expectedSpendMicros: Math.round(Math.min(budget, total)),
    expectedExhaustionAt: exhaustedAt === null ? null : new Date(exhaustedAt).toISOString(),
  };
}
