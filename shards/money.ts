/**
 * Money is an integer number of micros (1 currency unit = 1,000,000 micros) in a branded type, so
 * that a float or a count of something else cannot be passed where money is expected without an
 * explicit, checked conversion. Every arithmetic helper asserts that the result stays a safe
 * integer: a broken counter must stop the actor loudly rather than drift silently.
 */
export type Micros = number & { readonly __unit: 'micros' };

export const ZERO = 0 as Micros;

export function isMicros(value: unknown): value is Micros {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Converts a validated non-negative safe integer; throws on anything else (a bug, not input). */
export function micros(value: number): Micros {
  if (!isMicros(value)) throw new AssertionError(`not a micros amount: ${value}`);
  return value;
}

export function add(a: Micros, b: Micros): Micros {
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) throw new AssertionError(`micros overflow: ${a} + ${b}`);
  return sum as Micros;
}

/** a − b where the caller's invariant says a ≥ b (a counter never goes negative). */
export function sub(a: Micros, b: Micros): Micros {
  const diff = a - b;
  if (diff < 0 || !Number.isSafeInteger(diff)) {
    throw new AssertionError(`micros underflow: ${a} - ${b}`);
  }
  return diff as Micros;
}

/** a − b clamped at zero: for "remaining" figures that are shown, never for counters. */
export function remaining(a: Micros, b: Micros): Micros {
  return (a > b ? a - b : 0) as Micros;
}

/** Rounds a fractional amount of money down (a plan or share of a budget). */
export function floorMicros(value: number): Micros {
  if (!Number.isFinite(value) || value <= 0) return ZERO;
  return Math.floor(value) as Micros;
}

/** An invariant of the data plane broke: this is a bug and the actor must stop. */
export class AssertionError extends Error {
  readonly code = 'PACER_ERR_ASSERTION';
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
