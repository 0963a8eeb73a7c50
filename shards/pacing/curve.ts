import type { Strategy } from '../types.js';
import type { Interval } from '../time/schedule.js';

/**
 * The target curve F(t) of one campaign-day: the fraction of the day's budget that should be spent
 * by instant t (PACING.md §3). It is built once per day (and on a configuration change) from the
 * day's active intervals and an hourly weight per local hour, so that evaluating it is a binary
 * search over at most a few dozen segments.
 */
export interface CurveInput {
  strategy: Strategy;
  active: readonly Interval[];
  /** 25 instants: the start of each local hour of the day and the day's end (DST-aware). */
  hourStarts: readonly number[];
  /** Weight per local hour (CUSTOM weights or the ADAPTIVE traffic profile); null for uniform. */
  hourlyWeights: readonly number[] | null;
  frontLoadedShare: number;
  aheadPercent: number;
}

export class Curve {
  readonly strategy: Strategy;
  readonly activeStartMs: number;
  readonly activeEndMs: number;
  readonly activeMs: number;
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly density: Float64Array;
  private readonly cum: Float64Array;
  private readonly total: number;
  private readonly frontLoadedShare: number;
  private readonly aheadFactor: number;

  constructor(input: CurveInput) {
    this.strategy = input.strategy;
    this.frontLoadedShare = input.frontLoadedShare;
    this.aheadFactor = 1 + input.aheadPercent / 100;
    const segs = segmentsOf(input.active, input.hourStarts, input.hourlyWeights);
    // Weights that leave every active minute at zero cannot plan anything: plan evenly instead.
    const weighted = segs.reduce((s, x) => s + (x.end - x.start) * x.density, 0);
    if (weighted <= 0) for (const s of segs) s.density = 1;
    const n = segs.length;
    this.starts = new Float64Array(n);
    this.ends = new Float64Array(n);
    this.density = new Float64Array(n);
    this.cum = new Float64Array(n + 1);
    let acc = 0;
    let activeMs = 0;
    for (let i = 0; i < n; i++) {
      const s = segs[i]!;
      this.starts[i] = s.start;
      this.ends[i] = s.end;
      this.density[i] = s.density;
      this.cum[i] = acc;
      acc += (s.end - s.start) * s.density;
      activeMs += s.end - s.start;
    }
    this.cum[n] = acc;
    this.total = acc;
    this.activeMs = activeMs;
    this.activeStartMs = n > 0 ? this.starts[0]! : Infinity;
    this.activeEndMs = n > 0 ? this.ends[n - 1]! : -Infinity;
  }

  /** Weighted share of the active day elapsed by t, before the strategy's shaping. */
  private weighted(t: number): number {
    const n = this.starts.length;
    if (n === 0 || t <= this.activeStartMs) return 0;
    if (t >= this.activeEndMs) return 1;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    const within = Math.min(t, this.ends[lo]!) - this.starts[lo]!;
    return (this.cum[lo]! + within * this.density[lo]!) / this.total;
  }

  /** F(t) of the strategy, in [0, 1]. */
  fraction(t: number): number {
    if (this.starts.length === 0) return 0;
    const w = this.weighted(t);
    switch (this.strategy) {
      case 'EVEN':
      case 'ADAPTIVE':
      case 'CUSTOM':
        return w;
      case 'FRONT_LOADED': {
        const s = this.frontLoadedShare;
        return w <= 0.5 ? 2 * s * w : s + 2 * (1 - s) * (w - 0.5);
      }
      case 'AHEAD':
        return Math.min(1, w * this.aheadFactor);
      case 'ASAP':
        // Everything is due right after the window opens (0 at its first instant, so that a
        // report's first slot carries the whole plan).
        return t > this.activeStartMs ? 1 : 0;
      default: {
        const bad: never = this.strategy;
        throw new RangeError(`unknown strategy ${String(bad)}`);
      }
    }
  }

  /** Active ms between a and b (a ≤ b). */
  activeBetween(a: number, b: number): number {
    let sum = 0;
    for (let i = 0; i < this.starts.length; i++) {
      const s = Math.max(a, this.starts[i]!);
      const e = Math.min(b, this.ends[i]!);
      if (e > s) sum += e - s;
    }
    return sum;
  }

  /**
   * The instant by which `lead` ms of active time remain: the controller aims to finish the budget
   * there ("fast finish"), so that late win notices and expiring reservations land inside the day.
   */
  activeInstantBeforeEnd(leadMs: number): number {
    let left = leadMs;
    for (let i = this.starts.length - 1; i >= 0; i--) {
      const len = this.ends[i]! - this.starts[i]!;
      if (len >= left) return this.ends[i]! - left;
      left -= len;
    }
    return this.activeStartMs;
  }
}

interface Seg {
  start: number;
  end: number;
  density: number;
}

/** Splits the active intervals at local hour boundaries, each piece weighted by its hour. */
function segmentsOf(
  active: readonly Interval[],
  hourStarts: readonly number[],
  weights: readonly number[] | null,
): Seg[] {
  const out: Seg[] = [];
  for (const iv of active) {
    if (weights === null) {
      out.push({ start: iv.start, end: iv.end, density: 1 });
      continue;
    }
    for (let h = 0; h < 24; h++) {
      const hs = hourStarts[h]!;
      const he = hourStarts[h + 1]!;
      const s = Math.max(iv.start, hs);
      const e = Math.min(iv.end, he);
      if (e > s) out.push({ start: s, end: e, density: weights[h]! });
    }
  }
  return out;
}
