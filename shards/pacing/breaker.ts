import { breakerIntsWidth, breakerWidth, NONE, orNone, orNull } from '../columns.js';
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
const HALF_OPEN = 2;
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

/** Offsets of the breaker's doubles in its part of a row (shards/columns.ts, breakerWidth). */
/** Since when the breaker is in its state; NaN (null) before its first transition. */
const SINCE_MS = 0;
const OPEN_UNTIL_MS = 1;
const HALF_OPEN_START_MS = 2;
/** Offsets of its integers (breakerIntsWidth): the state's code, today's trips, 1 while the fraction trip is armed. */
const STATE = 0;
const TRIPS = 1;
const FRACTION_ARMED = 2;

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
 *
 * A breaker's state lives with its host (BreakerHost: the campaign): its numbers in the host's row,
 * its settings, its last transitions. A Breaker is a view over a host. A campaign's `breaker` is
 * the thread's one view, pointed at that campaign on each read (Campaign.breaker), so a million
 * campaigns hold no Breaker objects (72 bytes each). Every method reads its host once, on entry: a
 * transition's listener may read another campaign's breaker, which points the view elsewhere,
 * without changing the host the running method works on.
 */
/** What a breaker works on: its numbers, settings and last transitions, kept by its owner. */
export interface BreakerHost {
  /** The chunk that holds the breaker's numbers (breakerWidth of them at breakerOffset). */
  readonly breakerRow: Float64Array;
  readonly breakerOffset: number;
  /** The array that holds the breaker's integers (breakerIntsWidth of them at breakerIntsOffset). */
  readonly breakerInts: Int32Array;
  readonly breakerIntsOffset: number;
  /** The breaker's settings; set by Breaker.reconfigure. */
  breakerConfig: BreakerConfig;
  /** The last transitions (breakerEventsKept); a shared empty list until the first. */
  breakerEvents: readonly BreakerEvent[];
  /** Told of every transition. */
  breakerMoved(t: BreakerTransition): void;
}

/** The host of a breaker made on its own (tests): a row, settings and a listener of its own. */
class OwnHost implements BreakerHost {
  readonly breakerRow = new Float64Array(breakerWidth);
  readonly breakerOffset = 0;
  readonly breakerInts = new Int32Array(breakerIntsWidth);
  readonly breakerIntsOffset = 0;
  breakerEvents: readonly BreakerEvent[] = noEvents;

  constructor(
    public breakerConfig: BreakerConfig,
    private readonly listener: (t: BreakerTransition) => void,
  ) {}

  breakerMoved(t: BreakerTransition): void {
    this.listener(t);
  }
}

/** A breaker host's numbers as a fresh breaker has them (CLOSED, armed, never moved). */
export function initBreakerRow(f: Float64Array, o: number, n: Int32Array, p: number): void {
  n[p + STATE] = CLOSED;
  f[o + SINCE_MS] = NONE;
  n[p + TRIPS] = 0;
  n[p + FRACTION_ARMED] = 1;
  f[o + OPEN_UNTIL_MS] = 0;
  f[o + HALF_OPEN_START_MS] = 0;
}

export class Breaker {
  /** @internal The host the view reads; moved by Campaign.breaker. */
  h: BreakerHost;

  /**
   * A breaker of its own (settings, listener), or, without arguments, a view for a host to be set
   * (Campaign.breaker).
   */
  constructor(config?: BreakerConfig, onTransition: (t: BreakerTransition) => void = () => undefined) {
    this.h = new OwnHost(config ?? breakerDefaultsForView, onTransition);
    initBreakerRow(this.h.breakerRow, 0, this.h.breakerInts, 0);
  }

  get state(): BreakerState {
    const h = this.h;
    return stateNames[h.breakerInts[h.breakerIntsOffset + STATE]!]!;
  }

  get sinceMs(): number | null {
    const h = this.h;
    return orNull(h.breakerRow[h.breakerOffset + SINCE_MS]!);
  }

  /** Trips (fraction and velocity) since the day began. */
  get trips(): number {
    const h = this.h;
    return h.breakerInts[h.breakerIntsOffset + TRIPS]!;
  }

  set trips(v: number) {
    const h = this.h;
    h.breakerInts[h.breakerIntsOffset + TRIPS] = v;
  }

  /** False once the fraction trip fired for this day and budget. */
  get fractionArmed(): boolean {
    const h = this.h;
    return h.breakerInts[h.breakerIntsOffset + FRACTION_ARMED] !== 0;
  }

  /** The last transitions (breakerEventsKept), oldest first. */
  get events(): readonly BreakerEvent[] {
    return this.h.breakerEvents;
  }

  reconfigure(config: BreakerConfig): void {
    const h = this.h;
    h.breakerConfig = config;
    // A breaker switched off must not keep a campaign paused.
    const state = stateOf(h);
    if (!config.enabled && (state === 'OPEN' || state === 'HALF_OPEN')) {
      move(h, orNull(h.breakerRow[h.breakerOffset + SINCE_MS]!) ?? 0, 'CLOSED', 'CONFIG_CHANGED');
    }
  }

  /** Share of the paced traffic admitted now: 1 CLOSED, 0 OPEN or EXHAUSTED, a step HALF_OPEN. */
  share(nowMs: number): number {
    const h = this.h;
    if (h.breakerInts[h.breakerIntsOffset + STATE] === CLOSED) return 1;
    advance(h, nowMs);
    const state = stateOf(h);
    switch (state) {
      case 'CLOSED':
        return 1;
      case 'OPEN':
      case 'EXHAUSTED':
        return 0;
      case 'HALF_OPEN': {
        const config = h.breakerConfig;
        const steps = config.halfOpenSteps;
        const k = Math.floor((nowMs - h.breakerRow[h.breakerOffset + HALF_OPEN_START_MS]!) / config.halfOpenStepMs);
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
    advance(this.h, nowMs);
  }

  /** Called whenever committed spend (settled + reserved at face value) grows. */
  onCommitted(nowMs: number, committedMicros: number, budgetMicros: number): void {
    const h = this.h;
    const n = h.breakerInts;
    const p = h.breakerIntsOffset;
    const config = h.breakerConfig;
    if (n[p + FRACTION_ARMED] === 0 || !config.enabled) return;
    const state = n[p + STATE];
    if (state !== CLOSED && state !== HALF_OPEN) return;
    if (committedMicros >= config.tripAtFraction * budgetMicros) {
      n[p + FRACTION_ARMED] = 0;
      open(h, nowMs, 'TRIP_FRACTION');
    }
  }

  /** Called on the control tick with the spend of the last velocity window and the planned spend. */
  onVelocity(nowMs: number, windowSpendMicros: number, plannedPerWindowMicros: number, budgetMicros: number): void {
    const h = this.h;
    const config = h.breakerConfig;
    if (!config.enabled) return;
    const state = h.breakerInts[h.breakerIntsOffset + STATE];
    if (state !== CLOSED && state !== HALF_OPEN) return;
    if (windowSpendMicros < pacingTuning.velocityMinShare * budgetMicros) return;
    if (windowSpendMicros > config.velocityMultiple * plannedPerWindowMicros) {
      open(h, nowMs, 'TRIP_VELOCITY');
    }
  }

  /** Nothing more can be spent today. */
  exhaust(nowMs: number): void {
    const h = this.h;
    if (stateOf(h) !== 'EXHAUSTED') move(h, nowMs, 'EXHAUSTED', 'EXHAUSTED');
  }

  /**
   * A budget raise, a manual reset, the day's rollover (or a reverted duplicate that leaves money
   * to spend): back to CLOSED. The fraction trip is re-armed only below its threshold.
   */
  reset(nowMs: number, reason: ResetReason, committedMicros: number, budgetMicros: number): void {
    const h = this.h;
    const n = h.breakerInts;
    const p = h.breakerIntsOffset;
    n[p + FRACTION_ARMED] = committedMicros < h.breakerConfig.tripAtFraction * budgetMicros ? 1 : 0;
    if (reason === 'DAY_ROLLOVER') n[p + TRIPS] = 0;
    if (n[p + STATE] !== CLOSED) move(h, nowMs, 'CLOSED', reason);
  }
}

/** Settings for a view before it is pointed at a host (never read: a view is pointed before use). */
const breakerDefaultsForView: BreakerConfig = Object.freeze({
  enabled: false,
  tripAtFraction: 1,
  cooldownMs: 0,
  halfOpenSteps: Object.freeze([1]) as number[],
  halfOpenStepMs: 1,
  velocityMultiple: Infinity,
  velocityWindowMs: 1,
});

function stateOf(h: BreakerHost): BreakerState {
  return stateNames[h.breakerInts[h.breakerIntsOffset + STATE]!]!;
}

/** Moves OPEN to HALF_OPEN after the cooldown, and HALF_OPEN to CLOSED after its last step. */
function advance(h: BreakerHost, nowMs: number): void {
  const f = h.breakerRow;
  const o = h.breakerOffset;
  if (stateOf(h) === 'OPEN' && nowMs >= f[o + OPEN_UNTIL_MS]!) {
    f[o + HALF_OPEN_START_MS] = f[o + OPEN_UNTIL_MS]!;
    move(h, f[o + OPEN_UNTIL_MS]!, 'HALF_OPEN', 'COOLDOWN_ELAPSED');
  }
  if (stateOf(h) === 'HALF_OPEN') {
    const config = h.breakerConfig;
    const doneAt = f[o + HALF_OPEN_START_MS]! + config.halfOpenSteps.length * config.halfOpenStepMs;
    if (nowMs >= doneAt) move(h, doneAt, 'CLOSED', 'RECOVERED');
  }
}

function open(h: BreakerHost, nowMs: number, reason: 'TRIP_FRACTION' | 'TRIP_VELOCITY'): void {
  const f = h.breakerRow;
  const o = h.breakerOffset;
  const n = h.breakerInts;
  const p = h.breakerIntsOffset;
  n[p + TRIPS] = n[p + TRIPS]! + 1;
  f[o + OPEN_UNTIL_MS] = nowMs + h.breakerConfig.cooldownMs;
  move(h, nowMs, 'OPEN', reason);
  // A zero cooldown goes straight on to HALF_OPEN.
  advance(h, nowMs);
}

function move(h: BreakerHost, atMs: number, to: BreakerState, reason: BreakerReason): void {
  const f = h.breakerRow;
  const o = h.breakerOffset;
  const n = h.breakerInts;
  const p = h.breakerIntsOffset;
  const from = stateNames[n[p + STATE]!]!;
  n[p + STATE] = stateCode(to);
  f[o + SINCE_MS] = orNone(atMs);
  const events = h.breakerEvents === noEvents ? (h.breakerEvents = []) : (h.breakerEvents as BreakerEvent[]);
  events.push({ at: new Date(atMs).toISOString(), from, to, reason });
  if (events.length > pacingTuning.breakerEventsKept) events.shift();
  h.breakerMoved({ atMs, from, to, reason });
}

/** What a host's breakerEvents start as: no transitions (shared, frozen). */
export const noBreakerEvents = noEvents;
