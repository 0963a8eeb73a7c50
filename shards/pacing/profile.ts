import { pacingTuning } from './tuning.js';

/**
 * The traffic profile ADAPTIVE plans by: the density of bid opportunities per local hour, learned
 * from the decide calls the campaign actor itself saw on earlier days (PACING.md §3). Every decide
 * call counts, allowed or not, because bidders ask for every opportunity whatever the answer.
 *
 * A day updates only the hours the campaign observed in full (present for the whole hour). The
 * first observation of an hour is taken as it is; later ones blend in with weight
 * profileLearningRate, so one odd day moves the plan a little and a lasting change moves it within
 * a few days. Densities are opportunities per ms, so a 2-hour local hour on a DST day counts like
 * any other, and a 0-hour one teaches nothing.
 */
export class TrafficProfile {
  daysLearned = 0;
  /**
   * Learned opportunities per ms by local hour; meaningful where learned[h] is 1. Allocated on the
   * first day that teaches something, and today's counts on the first opportunity: a profile
   * costs memory only for the hours of state it really holds (one per campaign, a million per
   * pacer).
   */
  private density: number[] | null = null;
  /** Bit h set: hour h was learned. */
  private learnedHours = 0;
  private counts: number[] | null = null;
  private observedMs: number[] | null = null;
  private cached: Float64Array | null = null;

  /** Counts one opportunity in local hour h (the hot path: one array increment). */
  count(h: number): void {
    (this.counts ??= zeros24.slice())[h]!++;
  }

  /** Opportunities counted today in local hour h. */
  todayCount(h: number): number {
    return this.counts === null ? 0 : this.counts[h]!;
  }

  /** Records that the campaign was present (configured) for `ms` of local hour h. */
  observe(h: number, ms: number): void {
    (this.observedMs ??= zeros24.slice())[h]! += ms;
  }

  /**
   * The planning weights: learned densities, with hours never learned set to the mean of the
   * learned ones (no information: assume an average hour). Null until some hour was learned.
   */
  get weights(): Float64Array | null {
    return this.cached;
  }

  /**
   * Closes a day. `hourMs[h]` is the real length of local hour h that day (0, 1 or 2 hours on DST
   * days). Returns the day's densities normalised to a mean of 1 over the hours observed in full,
   * with 0 for hours not observed (for the shard's global profile), or null when the day taught
   * nothing.
   */
  endDay(hourMs: readonly number[]): Float64Array | null {
    const day = new Float64Array(24);
    const full = new Uint8Array(24);
    let sum = 0;
    let n = 0;
    const counts = this.counts;
    const observed = this.observedMs;
    for (let h = 0; h < 24; h++) {
      const len = hourMs[h]!;
      if (len > 0 && observed !== null && observed[h]! >= len * 0.999) {
        full[h] = 1;
        day[h] = counts === null ? 0 : counts[h]! / len;
        sum += day[h]!;
        n++;
      }
    }
    // Today's state is dropped, not zeroed: tomorrow allocates it again on its first opportunity.
    this.counts = null;
    this.observedMs = null;
    if (n === 0 || sum <= 0) return null;
    const density = (this.density ??= zeros24.slice());
    for (let h = 0; h < 24; h++) {
      if (!full[h]) continue;
      const w = this.learnedHours & (1 << h) ? pacingTuning.profileLearningRate : 1;
      density[h] = density[h]! + w * (day[h]! - density[h]!);
      this.learnedHours |= 1 << h;
    }
    this.daysLearned++;
    const learned = new Uint8Array(24);
    for (let h = 0; h < 24; h++) learned[h] = (this.learnedHours >> h) & 1;
    this.cached = fillUnknown(density, learned);
    const mean = sum / n;
    for (let h = 0; h < 24; h++) day[h] = full[h] ? day[h]! / mean : 0;
    return day;
  }
}

/**
 * 24 zeros as a literal: V8 keeps a copy of it as packed small integers (4 bytes each), where
 * `new Array(24).fill(0)` makes a holey array that a first increment turns into doubles.
 */
const zeros24 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/** The shard's profile across its campaigns: ADAPTIVE's fallback for campaigns without history. */
export class GlobalProfile {
  private readonly sum = new Float64Array(24);
  private readonly learned = new Uint8Array(24);
  private cached: Float64Array | null = null;

  get weights(): Float64Array | null {
    return this.cached;
  }

  /** Blends in one campaign-day's normalised densities (0 marks an hour not observed). */
  add(density: Float64Array): void {
    for (let h = 0; h < 24; h++) {
      const d = density[h]!;
      if (d <= 0 && !this.learned[h]) continue;
      if (!this.learned[h]) {
        this.sum[h] = d;
        this.learned[h] = 1;
      } else if (d > 0) {
        this.sum[h] = this.sum[h]! + pacingTuning.globalProfileLearningRate * (d - this.sum[h]!);
      }
    }
    this.cached = fillUnknown(this.sum, this.learned);
  }
}

function fillUnknown(values: ArrayLike<number>, learned: Uint8Array): Float64Array | null {
  let sum = 0;
  let n = 0;
  for (let h = 0; h < 24; h++) {
    if (learned[h]) {
      sum += values[h]!;
      n++;
    }
  }
  if (n === 0 || sum <= 0) return null;
  const mean = sum / n;
  const out = new Float64Array(24);
  for (let h = 0; h < 24; h++) out[h] = learned[h] ? values[h]! : mean;
  return out;
}
