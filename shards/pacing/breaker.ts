import { breakerWidth, NONE, orNone, orNull } from '../columns.js';
import type { BreakerConfig, BreakerEvent, BreakerState } from '../types.js';
import { pacingTuning } from './tuning.js';

/** Why the breaker moved, as stored in history and shown to operators. */
export type BreakerReason =
  | 'TRIP_FRACTION'
  | 'TRIP_VELOCITY'
  | 'COOLDOWN_ELAPSED'
  | 'RECOVERED'
  | 'EXHAUSTED'
  | 'BUDGET_RAISED'
  | 'MANUAL_RESET'
  | 'DAY_ROLLOVER'
  | 'CONFIG_CHANGED'
  | 'SPEND_REVERTED'
  | 'SMALLER_BID';

export type ResetReason = 'BUDGET_RAISED' | 'MANUAL_RESET' | 'DAY_ROLLOVER' | 'CONFIG_CHANGED' | 'SPEND_REVERTED' | 'SMALLER_BID';

export interface BreakerTransition {
  atMs: number;
  from: BreakerState;
  to: BreakerState;
  reason: BreakerReason;
}

const noEvents: readonly BreakerEvent[] = Object.freeze([]);

/** The states as numbers in the breaker's row, and back. */
const CLOSED = 0;
const stateNames: readonly BreakerState[] = ['CLOSED', 'OPEN', 'HALF_OPEN', 'EXHAUSTED'];
function stateCode(s: BreakerState): number {
  switch (s) {
    case 'CLOSED':
      return 0;
    case 'OPEN':
      return 1;
    case 'HALF_OPEN':
      return 2;
    case 'EXHAUSTED':
      return 3;
    default: {
      const bad: never = s;
      throw new RangeError(`unknown breaker state ${String(bad)}`);
    }
  }
}

/** Offsets in the breaker's part of a row (shards/columns.ts). */
const STATE = 0;
/** Since when the breaker is in its state; NaN (null) before its first transition. */
const SINCE_MS = 1;
const TRIPS = 2;
const FRACTION_ARMED = 3;
const OPEN_UNTIL_MS = 4;
const HALF_OPEN_START_MS = 5;

/**
 * The budget circuit breaker of one campaign (PACING.md §5).
 *
 *   CLOSED ──committed crosses tripAtFraction, or velocity──▶ OPEN ──cooldownMs──▶ HALF_OPEN
 *   HALF_OPEN ──steps done──▶ CLOSED;  HALF_OPEN ──velocity (or a first fraction crossing)──▶ OPEN
 *   any ──nothing more can be spent──▶ EXHAUSTED;  any ──raise, manual reset, rollover──▶ CLOSED
 *
 * It protects the budget without capping delivery. The fraction trip fires when committed spend
 * CROSSES the threshold, once per day and budget: after the cooldown HALF_OPEN steps back up to
 * the full paced share, returns to CLOSED, and the controller paces the rest of the budget under
 * the hard cap. The predecessor compared "above 95%" on every event, so it re-tripped as long as
 * spend stayed above 95%, which silently capped delivery there. A velocity trip can fire again at
 * any time: that is the runaway guard. A reset re-arms the fraction trip only if committed spend is
 * below the threshold of the (new) budget, so raising a budget by 1% at 96% does not pause the
 * campaign for another cooldown.
 *
 * Time is passed in; transitions that fall due between calls are dated when they fell due.
 */
export class Breaker {
  /** @internal The chunk and offset of the numbers (shards/columns.ts); moved only by the owning campaign. */
  f: Float64Array;
  o: number;
  /** The last transitions (breakerEventsKept); a shared empty list until the first. */
  events: readonly BreakerEvent[] = noEvents;

  constructor(
    private config: BreakerConfig,
    /** Told of every transition, with `owner`: one function can serve every breaker of a shard. */
    private readonly onTransition: (t: BreakerTransition, owner: unknown) => void,
    private readonly owner: unknown = null,
    f?: Float64Array,
    o = 0,
  ) {
    if (f === undefined) {
      f = new Float64Array(breakerWidth);
      o = 0;
    }
    this.f = f;
    this.o = o;
    f[o + STATE] = CLOSED;
    f[o + SINCE_MS] = NONE;
    f[o + TRIPS] = 0;
    f[o + FRACTION_ARMED] = 1;
    f[o + OPEN_UNTIL_MS] = 0;
    f[o + HALF_OPEN_START_MS] = 0;
  }

  get state(): BreakerState {
    return stateNames[this.f[this.o + STATE]!]!;
  }

  set state(s: BreakerState) {
    this.f[this.o + STATE] = stateCode(s);
  }

  get sinceMs(): number | null {
    return orNull(this.f[this.o + SINCE_MS]!);
  }

  set sinceMs(v: number | null) {
    this.f[this.o + SINCE_MS] = orNone(v);
  }

  /** Trips (fraction and velocity) since the day began. */
  get trips(): number {
    return this.f[this.o + TRIPS]!;
  }

  set trips(v: number) {
    this.f[this.o + TRIPS] = v;
  }

  /** False once the fraction trip fired for this day and budget. */
  get fractionArmed(): boolean {
    return this.f[this.o + FRACTION_ARMED] !== 0;
  }

  set fractionArmed(v: boolean) {
    this.f[this.o + FRACTION_ARMED] = v ? 1 : 0;
  }

  private get openUntilMs(): number {
    return this.f[this.o + OPEN_UNTIL_MS]!;
  }

  private set openUntilMs(v: number) {
    this.f[this.o + OPEN_UNTIL_MS] = v;
  }

  private get halfOpenStartMs(): number {
    return this.f[this.o + HALF_OPEN_START_MS]!;
  }

  private set halfOpenStartMs(v: number) {
    this.f[this.o + HALF_OPEN_START_MS] = v;
  }

  reconfigure(config: BreakerConfig): void {
    this.config = config;
    // A breaker switched off must not keep a campaign paused.
    if (!config.enabled && (this.state === 'OPEN' || this.state === 'HALF_OPEN')) {
      this.move(this.sinceMs ?? 0, 'CLOSED', 'CONFIG_CHANGED');
    }
  }

  /** Share of the paced traffic admitted now: 1 CLOSED, 0 OPEN or EXHAUSTED, a step HALF_OPEN. */
  share(nowMs: number): number {
    if (this.f[this.o + STATE] === CLOSED) return 1;
    this.advance(nowMs);
    const state = this.state as BreakerState;
    switch (state) {
      case 'CLOSED':
        return 1;
      case 'OPEN':
      case 'EXHAUSTED':
        return 0;
      case 'HALF_OPEN': {
        const steps = this.config.halfOpenSteps;
        const k = Math.floor((nowMs - this.halfOpenStartMs) / this.config.halfOpenStepMs);
        return steps[Math.min(Math.max(k, 0), steps.length - 1)]!;
      }
      default: {
        const bad: never = state;
        throw new RangeError(`unknown breaker state ${String(bad)}`);
      }
    }
  }

  /** Moves OPEN to HALF_OPEN after the cooldown, and HALF_OPEN to CLOSED after its last step. */
  advance(nowMs: number): void {
    if (this.state === 'OPEN' && nowMs >= this.openUntilMs) {
      this.halfOpenStartMs = this.openUntilMs;
      this.move(this.openUntilMs, 'HALF_OPEN', 'COOLDOWN_ELAPSED');
    }
    if (this.state === 'HALF_OPEN') {
      const doneAt = this.halfOpenStartMs + this.config.halfOpenSteps.length * this.config.halfOpenStepMs;
      if (nowMs >= doneAt) this.move(doneAt, 'CLOSED', 'RECOVERED');
    }
  }

  /** Called whenever committed spend (settled + reserved at face value) grows. */
  onCommitted(nowMs: number, committedMicros: number, budgetMicros: number): void {
    if (!this.fractionArmed || !this.config.enabled) return;
    if (this.state !== 'CLOSED' && this.state !== 'HALF_OPEN') return;
    if (committedMicros >= this.config.tripAtFraction * budgetMicros) {
      this.fractionArmed = false;
      this.open(nowMs, 'TRIP_FRACTION');
    }
  }

  /** Called on the control tick with the spend of the last velocity window and the planned spend. */
  onVelocity(nowMs: number, windowSpendMicros: number, plannedPerWindowMicros: number, budgetMicros: number): void {
    if (!this.config.enabled) return;
    if (this.state !== 'CLOSED' && this.state !== 'HALF_OPEN') return;
    if (windowSpendMicros < pacingTuning.velocityMinShare * budgetMicros) return;
    if (windowSpendMicros > this.config.velocityMultiple * plannedPerWindowMicros) {
      this.open(nowMs, 'TRIP_VELOCITY');
    }
  }

  /** Nothing more can be spent today. */
  exhaust(nowMs: number): void {
    if (this.state !== 'EXHAUSTED') this.move(nowMs, 'EXHAUSTED', 'EXHAUSTED');
  }

  /**
   * A budget raise, a manual reset, the day's rollover (or a reverted duplicate that leaves money
   * to spend): back to CLOSED. The fraction trip is re-armed only below its threshold.
   */
  reset(nowMs: number, reason: ResetReason, committedMicros: number, budgetMicros: number): void {
    this.fractionArmed = committedMicros < this.config.tripAtFraction * budgetMicros;
    if (reason === 'DAY_ROLLOVER') this.trips = 0;
    if (this.state !== 'CLOSED') this.move(nowMs, 'CLOSED', reason);
  }

  private open(nowMs: number, reason: 'TRIP_FRACTION' | 'TRIP_VELOCITY'): void {
    this.trips++;
    this.openUntilMs = nowMs + this.config.cooldownMs;
    this.move(nowMs, 'OPEN', reason);
    // A zero cooldown goes straight on to HALF_OPEN.
    this.advance(nowMs);
  }

  private move(atMs: number, to: BreakerState, reason: BreakerReason): void {
    const from = this.state;
    this.state = to;
    this.sinceMs = atMs;
    const events = this.events === noEvents ? (this.events = []) : (this.events as BreakerEvent[]);
    events.push({ at: new Date(atMs).toISOString(), from, to, reason });
    if (events.length > pacingTuning.breakerEventsKept) events.shift();
    this.onTransition({ atMs, from, to, reason }, this.owner);
  }
}
