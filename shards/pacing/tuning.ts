/**
 * Every tuning constant of the pacing machinery in one place (STYLE.md habit 4), each with its unit
 * last in the name and the reason for its value. Per-campaign knobs (strategy shares, breaker
 * settings, velocity cap) live in the campaign configuration instead; these are the ones an
 * operator should not need to touch.
 */
export const pacingTuning = {
  /** Throttle before the spend of an allowed decision has been observed (LinkedIn's slow start). */
  slowStartThrottle: 0.1,
  /**
   * Spend events seen before the spend-per-allowed estimate is trusted. Few, because the money loop
   * corrects a rough estimate while a long slow start at 10% leaves a small campaign hours behind.
   */
  valueSamplesMin: 10,
  /** How far ahead each control tick plans: long enough to smooth Poisson noise, short enough to follow the curve. */
  horizonMs: 60_000,
  /** Time constant of the opportunity-rate estimate: a few seconds of traffic even at 1 request/s. */
  trafficTauMs: 20_000,
  /** Time constant of spend per allowed decision: win notices arrive seconds to a minute late. */
  valueTauMs: 600_000,
  /** Share of the gap to the new throttle taken per tick: damps the noise of the rate estimates. */
  gain: 0.5,
  /**
   * Fast finish: the plan is compressed to end this long before the active window does, so that a
   * small deficit from noise is still made up and in-flight win notices land inside the day. Short,
   * because every minute of it moves plan out of the last hour.
   */
  fastFinishMs: 5 * 60_000,
  /** …but never more than this share of a short active window. */
  fastFinishMaxShare: 0.02,
  /**
   * Bounded catch-up: a deficit is spread over the remaining plan, and the rate it asks for never
   * exceeds this multiple of the plan's own rate, so a campaign resumed late does not dump its
   * budget in a burst (PACING.md §7.6). The finish phase is bounded by the velocity cap instead.
   */
  catchUpMaxRatio: 3,
  /**
   * Capacity look-ahead: the share of a forecast hour's traffic the plan may count on at p = 1.
   * Below 1 because forecasts err, and an hour found short can no longer be made up before it.
   */
  capacityMargin: 0.8,
  /** Opportunities seen today before today's level is taken from them rather than from the last seconds. */
  forecastLevelSamplesMin: 200,
  /** Spend-velocity buckets of one second each; the breaker's window is at most this many seconds. */
  velocityBuckets: 60,
  /**
   * A window that spent under this share of the budget is never a runaway, whatever the plan says:
   * with a few hundred wins a day, Poisson bursts alone reach 10× the plan rate in some minute.
   */
  velocityMinShare: 0.01,
  /** Time constant of the realised spend ÷ bid ratio used to value live reservations. */
  reservationValueTauMs: 600_000,
  /** ADAPTIVE: weight of a new day in the learned traffic profile (one odd day moves it a little). */
  profileLearningRate: 0.3,
  /** Weight of a campaign-day in the shard's global profile (many campaigns feed it). */
  globalProfileLearningRate: 0.05,
  /** Breaker transitions kept in a campaign's status. */
  breakerEventsKept: 20,
} as const;
