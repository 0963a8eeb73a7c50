import type { Curve } from '../../shards/pacing/curve.js';

/**
 * The report's pacing metrics, with the formulas of PACING.md §6. Slots are the real hours of the
 * campaign's local day from its midnight (23, 24 or 25 of them); the plan is the campaign's own
 * curve F on that day: b_k = B·(F(t_k) − F(t_{k−1})), and c_k is the spend the actor settled in
 * slot k. Tracking error compares S(t) with P(t) = B·F(t) at the end of every minute.
 */
export interface Measured {
  /** S(T) / B. */
  deliveryRatio: number;
  /** max(0, S(T) − B) / B. */
  overspendRatio: number;
  /** sqrt(Σ(c_k − b_k)² / K) / (B / K). */
  slotNrmse: number;
  /** max_t |S(t) − P(t)| / B. */
  maxTrackingError: number;
  /** mean_t |S(t) − P(t)| / B. */
  meanTrackingError: number;
  /**
   * (T − t_ex) / (T − T0): T0 and T the start and end of the day's active window, t_ex the first
   * instant with S ≥ 0.99·B (0 if never). For an all-day window this is PACING.md's (T − t_ex) / T.
   */
  earlyExhaustionFraction: number;
}

export interface MeasureInput {
  curve: Curve;
  budget: number;
  dayStartMs: number;
  dayEndMs: number;
  spentByMinute: Float64Array;
}

export function measure(m: MeasureInput): Measured {
  const { curve, budget: B, dayStartMs, dayEndMs, spentByMinute } = m;
  const hourMs = 3_600_000;
  const K = Math.ceil((dayEndMs - dayStartMs) / hourMs);
  let sq = 0;
  for (let k = 0; k < K; k++) {
    const a = dayStartMs + k * hourMs;
    const b = Math.min(dayEndMs, a + hourMs);
    const plan = B * (curve.fraction(b) - curve.fraction(a));
    let actual = 0;
    for (let i = k * 60; i < Math.min(spentByMinute.length, (k + 1) * 60); i++) actual += spentByMinute[i]!;
    sq += (actual - plan) ** 2;
  }
  const slotNrmse = Math.sqrt(sq / K) / (B / K);

  let S = 0;
  let maxErr = 0;
  let sumErr = 0;
  let tEx = Infinity;
  for (let i = 0; i < spentByMinute.length; i++) {
    S += spentByMinute[i]!;
    const t = Math.min(dayEndMs, dayStartMs + (i + 1) * 60_000);
    const err = Math.abs(S - B * curve.fraction(t)) / B;
    if (err > maxErr) maxErr = err;
    sumErr += err;
    if (tEx === Infinity && S >= 0.99 * B) tEx = t;
  }
  const T0 = Math.max(dayStartMs, curve.activeStartMs);
  const T = Math.min(dayEndMs, curve.activeEndMs);
  const early = tEx < T && T > T0 ? (T - tEx) / (T - T0) : 0;
  return {
    deliveryRatio: S / B,
    overspendRatio: Math.max(0, S - B) / B,
    slotNrmse,
    maxTrackingError: maxErr,
    meanTrackingError: spentByMinute.length > 0 ? sumErr / spentByMinute.length : 0,
    earlyExhaustionFraction: early,
  };
}
