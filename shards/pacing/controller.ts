import { controllerWidth, NONE } from '../columns.js';
import type { Strategy } from '../types.js';
import type { Curve } from './curve.js';
import { pacingTuning } from './tuning.js';

/**
 * The pacing controller of one campaign: a throttle probability p, updated on a control tick, that
 * makes committed spend track the plan (PACING.md §4).
 *
 * Each tick asks: of the budget still unspent, how much does the plan put into the next horizon?
 * That amount, divided by what the traffic would spend at p = 1 (the opportunity rate times the
 * spend per allowed decision, both estimated online), is the new p. This is feed-forward on the
 * traffic estimate, so p follows a traffic step within seconds, and it is closed-loop on money,
 * because "what is still unspent" already contains every past error: a deficit is paid back in
 * proportion to the remaining plan, a surplus slows the rest of the day, and nothing winds up
 * while the breaker holds the campaign.
 *
 * - slow start: until the spend of an allowed decision has been observed, p stays at
 *   slowStartThrottle (ASAP starts at 1: its plan is "everything now");
 * - bounded catch-up: the rate asked for never exceeds catchUpMaxRatio × the plan's own rate;
 * - fast finish: the plan is aimed to complete fastFinishMs of active time before the window ends;
 * - capacity look-ahead: when the traffic forecast says that later hours cannot carry their part
 *   of the plan even at p = 1 (EVEN's plan on a curve whose evening is quiet), the part they
 *   cannot carry is spent now, as late as possible but while traffic is there (see carryAhead);
 * - velocity cap: the rate asked for never exceeds velocityCapMultiple × the even rate. For ASAP
 *   this cap is the only pacing there is (its safety margin, with the breaker and the hard cap).
 */
export interface ControlInput {
  nowMs: number;
  curve: Curve;
  budgetMicros: number;
  /** Settled spend plus the expected value of live reservations. */
  committedMicros: number;
  /** Decisions, allowed decisions, settled micros and spend events since the last tick. */
  decisions: number;
  allowed: number;
  settledDeltaMicros: number;
  spendEvents: number;
  velocityCapMultiple: number;
  /** Start of each local hour of the day and the day's end: 25 instants. */
  hourStarts: readonly number[];
  /** Expected opportunities per ms in each local hour of the day, or null when nothing is known. */
  forecast: Float64Array | null;
}

/** Offsets in the controller's part of a row (shards/columns.ts). */
const THROTTLE = 0;
/** Opportunities per ms. */
const TRAFFIC_RATE = 1;
/** Allowed decisions and settled micros per ms, with the same (long) time constant. */
const ALLOWED_RATE = 2;
const SPEND_RATE = 3;
const VALUE_SAMPLES = 4;
/** The last update's time; NaN before the first. */
const LAST_MS = 5;

/**
 * The controller's numbers live in a row of the shard's columns (shards/columns.ts), in its
 * campaign's row when it has one: `f` is the row's chunk and `o` the offset of the controller's
 * part in it. A controller made on its own (tests) holds a row of its own.
 */
export class Controller {
  /** @internal The chunk and offset of the numbers; moved only by the owning campaign. */
  f: Float64Array;
  o: number;

  constructor(f?: Float64Array, o = 0) {
    if (f === undefined) {
      f = new Float64Array(controllerWidth);
      o = 0;
    }
    this.f = f;
    this.o = o;
    Controller.initRow(f, o);
  }

  /** Sets a fresh controller's numbers at offset `o` of `f` (what the constructor does, without an object). */
  static initRow(f: Float64Array, o: number): void {
    f[o + THROTTLE] = pacingTuning.slowStartThrottle;
    f[o + TRAFFIC_RATE] = 0;
    f[o + ALLOWED_RATE] = 0;
    f[o + SPEND_RATE] = 0;
    f[o + VALUE_SAMPLES] = 0;
    f[o + LAST_MS] = NONE;
  }

  get throttle(): number {
    return this.f[this.o + THROTTLE]!;
  }

  set throttle(v: number) {
    this.f[this.o + THROTTLE] = v;
  }

  /** Estimated spend of one allowed decision, in micros, or null before it is known. */
  get valuePerAllowed(): number | null {
    const f = this.f;
    const o = this.o;
    const allowedRate = f[o + ALLOWED_RATE]!;
    if (f[o + VALUE_SAMPLES]! < pacingTuning.valueSamplesMin || allowedRate <= 0) return null;
    return f[o + SPEND_RATE]! / allowedRate;
  }

  get opportunitiesPerSecond(): number {
    return this.f[this.o + TRAFFIC_RATE]! * 1000;
  }

  /** The smoothed opportunity rate, per ms. */
  get opportunitiesPerMs(): number {
    return this.f[this.o + TRAFFIC_RATE]!;
  }

  /** Sets the slow-start throttle for a strategy, unless spend per decision is already known. */
  startFor(strategy: Strategy): void {
    if (this.valuePerAllowed !== null) return;
    this.throttle = strategy === 'ASAP' ? 1 : pacingTuning.slowStartThrottle;
  }

  update(input: ControlInput): void {
    const { nowMs, curve } = input;
    const f = this.f;
    const o = this.o;
    const lastMs = f[o + LAST_MS]!;
    if (lastMs !== lastMs) {
      f[o + LAST_MS] = nowMs;
      return;
    }
    const dt = nowMs - lastMs;
    if (dt <= 0) return;
    f[o + LAST_MS] = nowMs;
    const trafficRate = ewma(f[o + TRAFFIC_RATE]!, input.decisions / dt, dt, pacingTuning.trafficTauMs);
    f[o + TRAFFIC_RATE] = trafficRate;
    f[o + ALLOWED_RATE] = ewma(f[o + ALLOWED_RATE]!, input.allowed / dt, dt, pacingTuning.valueTauMs);
    f[o + SPEND_RATE] = ewma(f[o + SPEND_RATE]!, input.settledDeltaMicros / dt, dt, pacingTuning.valueTauMs);
    f[o + VALUE_SAMPLES] = f[o + VALUE_SAMPLES]! + input.spendEvents;

    if (nowMs < curve.activeStartMs || nowMs >= curve.activeEndMs) return;
    const value = this.valuePerAllowed;
    if (value === null || value <= 0 || trafficRate <= 0) return;

    const full = trafficRate * value;
    const target = Math.min(1, Math.max(0, desiredRate(input, value) / full));
    let throttle = f[o + THROTTLE]!;
    throttle += pacingTuning.gain * (target - throttle);
    if (throttle < 1e-6) throttle = 0;
    f[o + THROTTLE] = throttle;
  }
}

/**
 * The spend rate (micros per ms) the plan asks for over the next horizon: the budget still
 * unspent, spread over the remaining (fast-finish) plan, with the catch-up and velocity bounds,
 * plus what later hours cannot carry. `valuePerAllowed` (micros) turns the traffic forecast into
 * spend capacity; null skips the look-ahead.
 */
export function desiredRate(input: ControlInput, valuePerAllowed: number | null = null): number {
  const { nowMs, budgetMicros, curve } = input;
  const left = budgetMicros - input.committedMicros;
  if (left <= 0 || curve.activeMs <= 0) return 0;
  const horizonEnd = nowMs + pacingTuning.horizonMs;
  const activeAhead = curve.activeBetween(nowMs, horizonEnd);
  if (activeAhead <= 0) return 0;
  const finish = finishFraction(curve);
  const target = (t: number): number => Math.min(1, curve.fraction(t) / finish);
  const now = target(nowMs);
  let amount: number;
  if (now >= 1 - 1e-9) {
    // Finish phase (and all of ASAP): whatever is left, now; only the velocity cap bounds it.
    amount = left;
  } else {
    const planShare = target(horizonEnd) - now;
    amount = Math.min((left * planShare) / (1 - now), pacingTuning.catchUpMaxRatio * budgetMicros * planShare);
  }
  let rate = amount / activeAhead;
  if (now < 1 - 1e-9 && input.forecast !== null && valuePerAllowed !== null && valuePerAllowed > 0) {
    rate += carryAhead(input, target, now, left, valuePerAllowed);
  }
  const evenRate = budgetMicros / curve.activeMs;
  return Math.min(rate, input.velocityCapMultiple * evenRate);
}

/**
 * Capacity look-ahead, as a rate to add now (micros per ms). Walking back from the day's last
 * hour, each hour's part of the remaining plan that exceeds the spend its forecast traffic can
 * bring (at p = 1, discounted by capacityMargin) is carried to the hour before it; what reaches
 * the current hour must be spent in what is left of it. So nothing moves earlier than it must,
 * and a plan that the traffic can carry is left alone.
 */
function carryAhead(
  input: ControlInput,
  target: (t: number) => number,
  now: number,
  left: number,
  valuePerAllowed: number,
): number {
  const { nowMs, curve, hourStarts } = input;
  const forecast = input.forecast!;
  let h = 0;
  while (h < 23 && nowMs >= hourStarts[h + 1]!) h++;
  const perUnit = left / (1 - now);
  let carry = 0;
  for (let k = 23; k > h; k--) {
    const a = Math.max(hourStarts[k]!, nowMs);
    const b = hourStarts[k + 1]!;
    if (b <= a) continue;
    const plan = perUnit * (target(b) - target(a));
    const capacity = forecast[k]! * curve.activeBetween(a, b) * valuePerAllowed * pacingTuning.capacityMargin;
    carry = Math.max(0, plan + carry - capacity);
  }
  if (carry <= 0) return 0;
  const rest = curve.activeBetween(nowMs, hourStarts[h + 1]!);
  return carry / Math.max(rest, pacingTuning.horizonMs);
}

/** F at the fast-finish instant: the target curve is F ÷ this, capped at 1. */
export function finishFraction(curve: Curve): number {
  const lead = Math.min(pacingTuning.fastFinishMs, curve.activeMs * pacingTuning.fastFinishMaxShare);
  return Math.max(curve.fraction(curve.activeInstantBeforeEnd(lead)), 1e-9);
}

function ewma(prev: number, sample: number, dtMs: number, tauMs: number): number {
  const a = 1 - Math.exp(-dtMs / tauMs);
  return prev + a * (sample - prev);
}
