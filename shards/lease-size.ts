import { limits } from './limits.js';
import { type Micros, micros } from './money.js';

/**
 * How much budget a holder asks for when it takes or renews a lease (src/store/leases.ts): about
 * leaseSpendWindowMs of spend at the larger of the campaign's recent rate and the plan's rate, with
 * headroom for a burst, never below the floor (or the largest bid, so that one bid can always be
 * covered, which wins over the ceiling when a bid is larger) and otherwise never above the ceiling (an absolute cap and a share of the day's budget, which
 * bound the money a holder strands when it stops spending or dies). Pure and deterministic, so the
 * shard and the simulator size leases the same way.
 */
export interface LeaseSizing {
  /** Settled spend of this holder over recent seconds, per second. */
  recentSpendMicrosPerS: number;
  /** What the pacing plan wants spent per second now, across all instances. */
  planMicrosPerS: number;
  /** The largest bid this holder has seen lately (a lease smaller than one bid admits nothing). */
  bidMaxMicros: number;
  dailyBudgetMicros: number;
}

export function leaseCeilingMicros(dailyBudgetMicros: number): Micros {
  const share = Math.floor(dailyBudgetMicros * limits.leaseBudgetShareMax);
  return micros(Math.max(0, Math.min(limits.leaseCeilingMicros, Math.max(share, limits.leaseFloorMicros))));
}

export function leaseWantMicros(s: LeaseSizing): Micros {
  const rate = Math.max(0, s.recentSpendMicrosPerS, s.planMicrosPerS);
  const windowed = Math.ceil((rate * limits.leaseSpendWindowMs * limits.leaseHeadroomFactor) / 1_000);
  const floor = Math.max(limits.leaseFloorMicros, Math.max(0, Math.ceil(s.bidMaxMicros)));
  // One bid must always fit, even a bid above the ceiling (else such a bid could never be allowed).
  const bid = Math.min(Math.max(0, Math.ceil(s.bidMaxMicros)), Math.max(0, Math.floor(s.dailyBudgetMicros)));
  const want = Math.max(Math.min(Math.max(windowed, floor), leaseCeilingMicros(s.dailyBudgetMicros)), bid);
  return micros(Number.isSafeInteger(want) ? want : limits.leaseFloorMicros);
}

/** When a lease granted at grantedAtMs, expiring at expiresAtMs, should be renewed. */
export function leaseRenewAtMs(grantedAtMs: number, expiresAtMs: number): number {
  return grantedAtMs + Math.floor((expiresAtMs - grantedAtMs) * limits.leaseRenewShare);
}
