import type { BreakerConfig, BreakerEvent, BreakerState } from '../types.js';

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
  | 'CONFIG_CHANGED';

export interface BreakerTransition {
  atMs: number;
  from: BreakerState;
  to: BreakerState;
  reason: BreakerReason;
}

const eventsKept = 20;

/**
 * The budget circuit breaker of one campaign (PACING.md §5).
 *
 * It protects the budget without capping delivery: the fraction trip fires once per day (or per
 * budget), and after the cooldown HALF_OPEN steps back up to the full paced share and stays there,
 * pacing the rest of the budget under the hard cap. Only a velocity trip can send it back to OPEN.
 * The predecessor re-tripped while spend stayed above 95%, which silently capped delivery there.
 *
 * Time is passed in; transitions that fall due between calls are dated when they fell due.
 */
export class Breaker {
  state: BreakerState = 'CLOSED';
  sinceMs: number | null = null;
  trips = 0;
  readonly events: BreakerEvent[] = [];
  private openUntilMs = 0;
  private halfOpenStartMs = 0;
  private fractionTripped = false;

  constructor(
    private config: BreakerConfig,
    private readonly onTransition: (t: BreakerTransition) => void,
  ) {}

  reconfigure(config: BreakerConfig): void {
    this.config = config;
  }

  /** Share of the paced traffic admitted now: 1 CLOSED, 0 OPEN or EXHAUSTED, steps HALF_OPEN. */
  share(nowMs: number): number {
    if (this.state === 'CLOSED') return 1;
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
        return steps[Math.min(k, steps.length - 1)]!;
      }
      default: {
        const bad: never = state;
        throw new RangeError(`unknown breaker state ${String(bad)}`);
      }
    }
  }

  /** Moves OPEN to HALF_OPEN after the cooldown, and HALF_OPEN on through its steps. */
  advance(nowMs: number): void {
    if (this.state === 'OPEN' && nowMs >= this.openUntilMs) {
      this.halfOpenStartMs = this.openUntilMs;
      this.move(this.openUntilMs, 'HALF_OPEN', 'COOLDOWN_ELAPSED');
    }
    if (this.state === 'HALF_OPEN' && !this.fractionTripped) {
      const doneAt = this.halfOpenStartMs + this.config.halfOpenSteps.length * this.config.halfOpenStepMs;
      if (nowMs >= doneAt) this.move(doneAt, 'CLOSED', 'RECOVERED');
    }
  }

  /** Called whenever committed spend grows. */
  onCommitted(nowMs: number, committedMicros: number, budgetMicros: number): void {
    if (!this.config.enabled || this.state !== 'CLOSED' || this.fractionTripped) return;
    if (committedMicros >= this.config.tripAtFraction * budgetMicros) {
      this.fractionTripped = true;
      this.open(nowMs, 'TRIP_FRACTION');
    }
  }

  /** Called by the controller with the spend of the last velocity window and the planned rate. */
  onVelocity(nowMs: number, windowSpendMicros: number, plannedPerWindowMicros: number, budgetMicros: number): void {
    if (!this.config.enabled) return;
    if (this.state !== 'CLOSED' && this.state !== 'HALF_OPEN') return;
    // A window that spent under 0.5% of the budget is never a runaway, whatever the plan says.
    if (windowSpendMicros < 0.005 * budgetMicros) return;
    if (windowSpendMicros > this.config.velocityMultiple * plannedPerWindowMicros) {
      this.open(nowMs, 'TRIP_VELOCITY');
    }
  }

  /** Nothing more can be spent today. */
  exhaust(nowMs: number): void {
    if (this.state !== 'EXHAUSTED') this.move(nowMs, 'EXHAUSTED', 'EXHAUSTED');
  }

  /** A budget raise, a manual reset or the day's rollover: back to CLOSED and re-armed. */
  reset(nowMs: number, reason: 'BUDGET_RAISED' | 'MANUAL_RESET' | 'DAY_ROLLOVER' | 'CONFIG_CHANGED'): void {
    this.fractionTripped = false;
    if (reason === 'DAY_ROLLOVER') this.trips = 0;
    if (this.state !== 'CLOSED') this.move(nowMs, 'CLOSED', reason);
  }

  private open(nowMs: number, reason: 'TRIP_FRACTION' | 'TRIP_VELOCITY'): void {
    this.trips++;
    this.openUntilMs = nowMs + this.config.cooldownMs;
    this.move(nowMs, 'OPEN', reason);
  }

  private move(atMs: number, to: BreakerState, reason: BreakerReason): void {
    const from = this.state;
    this.state = to;
    this.sinceMs = atMs;
    this.events.push({ at: new Date(atMs).toISOString(), from, to, reason });
    if (this.events.length > eventsKept) this.events.shift();
    this.onTransition({ atMs, from, to, reason });
  }
}
