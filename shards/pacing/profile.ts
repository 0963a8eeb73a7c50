/**
 * The traffic profile ADAPTIVE plans by: the density of bid opportunities per local hour, learned
 * from the decide calls a campaign saw on earlier days (PACING.md §3). Every decide call counts,
 * allowed or not, because bidders ask for every opportunity whatever the answer.
 *
 * A day updates the profile only for the hours the campaign observed in full; the first day is
 * taken as it is, later days blend in with weight `learningRate`, so one odd day moves the plan
 * a little and a lasting change moves it within a few days.
 */
export const profileTuning = {
  learningRate: 0.3,
} as const;

export class TrafficProfile {
  /** Opportunities per ms by local hour, normalised to a mean of 1 over learned hours; null until learned. */
  weights: Float64Array | null = null;
  daysLearned = 0;
  private readonly counts = new Float64Array(24);
  private readonly observedMs = new Float64Array(24);
  private readonly learned = new Uint8Array(24);

  /** Counts one opportunity in local hour h. */
  count(h: number): void {
    this.counts[h]!++;
  }

  /** Records that the campaign was present (configured) for `ms` of local hour h. */
  observe(h: number, ms: number): void {
    this.observedMs[h]! += ms;
  }

  /**
   * Closes a day. `hourMs[h]` is the real length of local hour h that day (0, 1 or 2 hours on DST
   * days). Returns the day's normalised densities (for the shard's global profile), or null when
   * the campaign saw no traffic.
   */
  endDay(hourMs: readonly number[]): Float64Array | null {
    const density = new Float64Array(24);
    const full = new Uint8Array(24);
    let sum = 0;
    let n = 0;
    for (let h = 0; h < 24; h++) {
      const len = hourMs[h]!;
      if (len > 0 && this.observedMs[h]! >= len * 0.999) {
        full[h] = 1;
        density[h] = this.counts[h]! / len;
        sum += density[h]!;
        n++;
      }
    }
    this.counts.fill(0);
    this.observedMs.fill(0);
    if (n === 0 || sum <= 0) return null;
    const mean = sum / n;
    for (let h = 0; h < 24; h++) density[h] = full[h] ? density[h]! / mean : 0;

    if (this.weights === null) this.weights = new Float64Array(24).fill(1);
    for (let h = 0; h < 24; h++) {
      if (!full[h]) continue;
      const w = this.learned[h] ? profileTuning.learningRate : 1;
      this.weights[h] = this.weights[h]! + w * (density[h]! - this.weights[h]!);
      this.learned[h] = 1;
    }
    this.daysLearned++;
    return density;
  }
}

/** The shard's profile across its campaigns: ADAPTIVE's fallback for campaigns without history. */
export class GlobalProfile {
  weights: Float64Array | null = null;

  add(density: Float64Array): void {
    if (this.weights === null) {
      this.weights = Float64Array.from(density);
      return;
    }
    for (let h = 0; h < 24; h++) {
      if (density[h]! > 0) this.weights[h] = this.weights[h]! + 0.05 * (density[h]! - this.weights[h]!);
    }
  }
}
