import type { Curve } from './curve.js';

/**
 * The pacing controller of one campaign: a throttle probability p, updated on a control tick, that
 * makes committed spend track the plan (PACING.md §4).
 *
 * Each tick it asks: of the budget still unspent, how much does the plan put into the next
 * horizon? That amount, divided by the spend the traffic would bring at p = 1 (the opportunity rate
 * times the spend per allowed decision, both estimated online), is the new p. Spreading what
 * remains over the rest of the plan gives bounded catch-up by construction: a deficit is paid back
 * in proportion to the remaining plan, not in a burst; a surplus slows the rest of the day.
 * Feed-forward on the traffic estimate makes it follow a traffic step within seconds.
 *
 * - slow start: until spend per allowed decision has been observed, p stays at slowStartThrottle
 *   (ASAP starts at 1);
 * - fast finish: the plan is aimed to complete fastFinishMs of active time before the window ends,
 *   so that late win notices and expiring reservations still land inside the day;
 * - velocity cap: the target rate never exceeds velocityCapMultiple × the even rate.
 */
export const controllerTuning = {
  slowStartThrottle: 0.1,
  /** How far ahead the controller plans each tick. */
  horizonMs: 60_000,
  /** Time constant of the opportunity-rate estimate: short, to follow traffic steps. */
  trafficTauMs: 15_000,
  /** Time constant of spend per allowed decision: long, because win notices arrive late. */
  valueTauMs: 600_000,
  /** Fraction of each new throttle taken per tick; damps oscillation from noisy estimates. */
  gain: 0.5,
  fastFinishMs: 30 * 60_000,
  fastFinishMaxShare: 0.03,
  /** Spend events seen before the spend-per-allowed estimate is trusted. */
  valueSamplesMin: 20,
} as const;

export interface ControlInput {
  nowMs: number;
  curve: Curve;
  budgetMicros: number;
  /** Settled spend plus the expected value of live reservations. */
  committedMicros: number;
  decisions: number;
  allowed: number;
  settledDeltaMicros: number;
  spendEvents: number;
  velocityCapMultiple: number;
}

export class Controller {
  throttle: number = controllerTuning.slowStartThrottle;
  /** Opportunities per ms. */
  private trafficRate = 0;
  private allowedRate = 0;
  private spendRate = 0;
  private valueSamples = 0;
  private lastMs: number | null = null;

  /** Estimated spend of one allowed decision, in micros, or null before it is known. */
  get valuePerAllowed(): number | null {
    if (this.valueSamples < controllerTuning.valueSamplesMin || this.allowedRate <= 0) return null;
    return this.spendRate / this.allowedRate;
  }

  get opportunitiesPerSecond(): number {
    return this.trafficRate * 1000;
  }

  /**
   * The throttle used until spend per allowed decision is known: slowStartThrottle, except for ASAP,
   * whose plan is "everything now" and whose only limits are the safety margins (velocity cap,
   * breaker, hard cap).
   */
  startFor(strategy: string): void {
    if (this.valuePerAllowed !== null) return;
    this.throttle = strategy === 'ASAP' ? 1 : controllerTuning.slowStartThrottle;
  }

  /** Forgets the time base (used after a long pause so the first tick does not average over it). */
  restart(nowMs: number): void {
    this.lastMs = nowMs;
  }

  update(input: ControlInput): void {
    const { nowMs, curve } = input;
    if (this.lastMs === null) {
      this.lastMs = nowMs;
      return;
    }
    const dt = nowMs - this.lastMs;
    if (dt <= 0) return;
    this.lastMs = nowMs;
    this.trafficRate = ewma(this.trafficRate, input.decisions / dt, dt, controllerTuning.trafficTauMs);
    this.allowedRate = ewma(this.allowedRate, input.allowed / dt, dt, controllerTuning.valueTauMs);
    this.spendRate = ewma(this.spendRate, input.settledDeltaMicros / dt, dt, controllerTuning.valueTauMs);
    this.valueSamples += input.spendEvents;

    if (nowMs < curve.activeStartMs || nowMs >= curve.activeEndMs) return;
    const value = this.valuePerAllowed;
    if (value === null || value <= 0 || this.trafficRate <= 0) return;

    const desired = desiredRate(input, curve);
    const full = this.trafficRate * value;
    const target = Math.min(1, Math.max(0, desired / full));
    this.throttle += controllerTuning.gain * (target - this.throttle);
    if (this.throttle < 1e-6) this.throttle = 0;
  }
}

/** Micros per ms that the plan asks for over the next horizon. */
export function desiredRate(input: ControlInput, curve: Curve): number {
  const { nowMs, budgetMicros } = input;
  const left = Math.max(0, budgetMicros - input.committedMicros);
  if (left <= 0) return 0;
  const lead = Math.min(controllerTuning.fastFinishMs, curve.activeMs * controllerTuning.fastFinishMaxShare);
  const finishAt = curve.activeInstantBeforeEnd(lead);
  const finishFraction = Math.max(curve.fraction(finishAt), 1e-9);
  const target = (t: number): number => Math.min(1, curve.fraction(t) / finishFraction);
  const horizonEnd = nowMs + controllerTuning.horizonMs;
  const activeAhead = Math.max(curve.activeBetween(nowMs, horizonEnd), 1);
  const now = target(nowMs);
  let amount: number;
  if (now >= 1 - 1e-9) {
    amount = left;
  } else {
    amount = (left * (target(horizonEnd) - now)) / (1 - now);
  }
  const evenRate = budgetMicros / Math.max(curve.activeMs, 1);
  return Math.min(amount / activeAhead, input.velocityCapMultiple * evenRate);
}

function ewma(prev: number, sample: number, dtMs: number, tauMs: number): number {
  const a = 1 - Math.exp(-dtMs / tauMs);
  return prev + a * (sample - prev);
}
