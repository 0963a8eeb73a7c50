import type { SimReport } from './run.js';

function shadowJson(s: NonNullable<SimReport['shadow']>): Record<string, unknown> {
  const { spentByMinute: _minutes, exhaustedAtMs, ...rest } = s;
  return { ...rest, exhaustedAt: exhaustedAtMs === null ? null : new Date(exhaustedAtMs).toISOString() };
}

/** The fields of --json, in the order of the issue. */
export function jsonOfReport(r: SimReport): Record<string, unknown> {
  return {
    strategy: r.strategy,
    days: r.days,
    seed: r.seed,
    budgetMicros: r.budgetMicros,
    spentMicros: r.spentMicros,
    deliveryRatio: r.deliveryRatio,
    overspendRatio: r.overspendRatio,
    slotNrmse: r.slotNrmse,
    maxTrackingError: r.maxTrackingError,
    meanTrackingError: r.meanTrackingError,
    earlyExhaustionFraction: r.earlyExhaustionFraction,
    breakerTrips: r.breakerTrips,
    decisions: r.decisions,
    allowed: r.allowed,
    wins: r.wins,
    maxExposureRatio: r.maxExposureRatio,
    ...(r.restarts > 0 ? { restarts: r.restarts } : {}),
    // Only with --shadow or --mode SHADOW: the shadow's would-be figures beside the real ones.
    ...(r.mode === 'SHADOW' ? { mode: r.mode } : {}),
    ...(r.shadow === null ? {} : { shadow: shadowJson(r.shadow) }),
    // Only with more than one day: the pacing of every day, each against its own plan.
    ...(r.detail.daily.length > 1
      ? { daily: r.detail.daily.map((x) => ({ day: x.day, weekday: x.weekday, deliveryRatio: x.deliveryRatio, slotNrmse: x.slotNrmse, earlyExhaustionFraction: x.earlyExhaustionFraction, budgetMicros: x.budgetMicros, spentMicros: x.spentMicros, overspendRatio: x.overspendRatio, breakerTrips: x.breakerTrips })) }
      : {}),
    // Only with --faults, so the output of a run without them is unchanged.
    ...(r.detail.faults === null ? {} : { faults: r.detail.faults }),
  };
}
