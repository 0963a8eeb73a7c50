import { assert } from '../money.js';
import { defaultColumns, densityWidth, hourCountMax, hourCountsWidth, type RowPool } from '../columns.js';
import { pacingTuning } from './tuning.js';

/** Hours in a week: profiles are kept per local weekday (0 = Sunday, as DayBounds.weekday) and hour. */
export const weekHours = densityWidth;

/**
 * An hour is learned when the campaign observed at least this share of it (present, not exhausted,
 * not paused): its density is then what it counted over the time it observed.
 */
export const profileObservedShareMin = 0.5;

/** Saturday and Sunday (DayBounds.weekday): the weekend class of the fallback. */
function isWeekend(weekday: number): boolean {
  return weekday === 0 || weekday === 6;
}

/**
 * A traffic profile fitted elsewhere (the admin thread, from the stored minute history), as a shard
 * receives it: opportunities per ms by local weekday and hour, index weekday × 24 + hour with
 * weekday 0 = Sunday, null where nothing was learned.
 */
export interface FittedProfile {
  density: (number | null)[];
  /** When it was fitted (epoch ms). */
  fittedAtMs: number;
}

/**
 * The planning shape of one weekday from per-(weekday, hour) values (`values[base + weekday × 24 +
 * hour]`, NaN where nothing was learned), written into `out`. An hour of that weekday never
 * learned falls back to the mean of the same hour on the other days of its class (weekdays or the
 * weekend), then on any day, and an hour no day learned to the mean of the hours known: so a
 * Saturday seen once plans every later Sunday by the weekend's shape, not the working week's.
 * False (and `out` meaningless) when nothing was learned.
 */
function shapeOf(values: Float64Array, base: number, weekday: number, out: Float64Array): boolean {
  let known = 0;
  let sum = 0;
  let n = 0;
  for (let h = 0; h < 24; h++) {
    let v = values[base + weekday * 24 + h]!;
    for (let tier = 0; tier < 2 && v !== v; tier++) {
      let s = 0;
      let k = 0;
      for (let d = 0; d < 7; d++) {
        const x = values[base + d * 24 + h]!;
        if (d === weekday || x !== x) continue;
        if (tier === 0 && isWeekend(d) !== isWeekend(weekday)) continue;
        s += x;
        k++;
      }
      if (k > 0) v = s / k;
    }
    if (v !== v) continue;
    out[h] = v;
    known |= 1 << h;
    sum += v;
    n++;
  }
  if (n === 0 || sum <= 0) return false;
  const mean = sum / n;
  for (let h = 0; h < 24; h++) if (!(known & (1 << h))) out[h] = mean;
  return true;
}

/**
 * The traffic profile ADAPTIVE plans by: the density of bid opportunities per local weekday and
 * hour, learned from the decide calls the campaign actor itself saw on earlier days (PACING.md §3),
 * and from the profile the admin thread fits from the stored minute history (load), so that a
 * restart forgets nothing. Every decide call counts, allowed or not, because bidders ask for every
 * opportunity whatever the answer; the time in which the campaign was exhausted or paused is not
 * observed (the campaign tells observe), because bidders then stop asking.
 *
 * A day updates only the hours the campaign observed for at least half (present, and neither
 * exhausted nor paused), by what it counted over the time it observed. The
 * first observation of a (weekday, hour) is taken as it is; later ones blend in with weight
 * profileLearningRate, so one odd day moves the plan a little and a lasting change moves it within
 * a few weeks. Densities are opportunities per ms, so a 2-hour local hour on a DST day counts like
 * any other, and a 0-hour one teaches nothing.
 */
export class TrafficProfile {
  daysLearned = 0;
  /** When the last fitted profile was loaded (epoch ms), or null. */
  fittedAtMs: number | null = null;
  /**
   * Learned opportunities per ms by weekday × 24 + hour, NaN where nothing was learned: a row of
   * the shard's pool of densities (shards/columns.ts), taken on the first day (or fitted profile)
   * that teaches something; `density` is the row's chunk (null: nothing learned yet). Today's
   * counts are taken on the first opportunity and the weekday's shape when a plan asks for it: a
   * profile costs memory only for the state it really holds (one per campaign, a million per
   * pacer).
   */
  private density: Float64Array | null = null;
  private densityRow = 0;
  private readonly densityPool: RowPool<Float64Array>;
  /**
   * Today's counts: a row of the shard's pool of hour counts (shards/columns.ts), taken on the
   * first opportunity of the day and given back when the day ends; `counts` is the row's chunk
   * (null: none today) and `countsRow` the row.
   */
  private counts: Uint32Array | null = null;
  private countsRow = 0;
  private readonly countsPool: RowPool<Uint32Array>;
  private observedMs: number[] | null = null;
  /** Bit h set: today's hour h is not learned (the campaign was exhausted or paused in it). */
  private taintedHours = 0;
  /**
   * The planning shape of one weekday (`shapeWeekday`; -1: none), built on demand into one buffer
   * of 24: a campaign plans one weekday at a time, so one is kept, not seven.
   */
  private shape: Float64Array | null = null;
  private shapeWeekday = -1;
  private shapeLearned = false;

  constructor(countsPool?: RowPool<Uint32Array>, densityPool?: RowPool<Float64Array>) {
    this.countsPool = countsPool ?? defaultColumns().hourCounts;
    this.densityPool = densityPool ?? defaultColumns().densities;
  }

  /**
   * Counts one opportunity in local hour h (the hot path: one array increment). A count saturates
   * at 2^32 − 1 (4.29 billion opportunities in one hour of one campaign: 1.19 million a second).
   */
  count(h: number): void {
    let c = this.counts;
    if (c === null) c = this.takeCounts();
    const i = this.countsPool.offsetOf(this.countsRow) + h;
    const v = c[i]!;
    if (v !== hourCountMax) c[i] = v + 1;
  }

  private takeCounts(): Uint32Array {
    const pool = this.countsPool;
    const row = (this.countsRow = pool.take());
    const c = (this.counts = pool.chunkOf(row));
    const o = pool.offsetOf(row);
    c.fill(0, o, o + hourCountsWidth);
    return c;
  }

  /** Gives today's counts back to the pool (nothing else holds the row). */
  private dropCounts(): void {
    if (this.counts === null) return;
    this.counts = null;
    this.countsPool.give(this.countsRow);
  }

  /** Opportunities counted today in local hour h. */
  todayCount(h: number): number {
    return this.counts === null ? 0 : this.counts[this.countsPool.offsetOf(this.countsRow) + h]!;
  }

  /**
   * Takes over today's counts that its campaign kept in a row of this profile's pool before it had
   * a profile (shards/campaign.ts: a campaign on its first day holds counts, not a profile).
   */
  adoptCounts(row: number): void {
    assert(this.counts === null, 'a profile adopts counts only before it counted');
    this.countsRow = row;
    this.counts = this.countsPool.chunkOf(row);
  }

  /** The profile is dropped (its campaign is): today's counts and what it learned go back to the pools. */
  dispose(): void {
    this.dropCounts();
    if (this.density !== null) {
      this.density = null;
      this.densityPool.give(this.densityRow);
    }
    this.shape = null;
    this.shapeWeekday = -1;
  }

  /** The row of learned densities, taken (all NaN: nothing learned) on first use. */
  private densities(): Float64Array {
    let d = this.density;
    if (d === null) {
      const pool = this.densityPool;
      const row = (this.densityRow = pool.take());
      d = this.density = pool.chunkOf(row);
      const o = pool.offsetOf(row);
      d.fill(NaN, o, o + weekHours);
    }
    return d;
  }

  /** Records that the campaign was present (configured) for `ms` of local hour h. */
  observe(h: number, ms: number): void {
    (this.observedMs ??= zeros24.slice())[h]! += ms;
  }

  /** Today's hour h is not learned: the campaign was exhausted or paused in it. */
  taint(h: number): void {
    this.taintedHours |= 1 << h;
  }

  /**
   * The planning weights of a day with the given weekday (0 = Sunday): see shapeOf. Null until
   * some hour was learned. The array is this profile's and valid until its next call with another
   * weekday (or its next lesson): a caller that keeps the weights copies them.
   */
  weightsFor(weekday: number): Float64Array | null {
    if (this.density === null) return null;
    if (this.shapeWeekday !== weekday) {
      this.shapeLearned = shapeOf(this.density, this.densityPool.offsetOf(this.densityRow), weekday, (this.shape ??= new Float64Array(24)));
      this.shapeWeekday = weekday;
    }
    return this.shapeLearned ? this.shape : null;
  }

  /**
   * Replaces what was learned by a fitted profile (the admin's fit already holds every full hour
   * this actor saw, from the minute history). Today's counts stay: they are learned at rollover.
   */
  load(fitted: FittedProfile): void {
    if (fitted.density.length !== weekHours) throw new RangeError(`a fitted profile has ${weekHours} hours (got ${fitted.density.length})`);
    const density = this.densities();
    const o = this.densityPool.offsetOf(this.densityRow);
    for (let i = 0; i < weekHours; i++) {
      const d = fitted.density[i];
      density[o + i] = typeof d === 'number' && Number.isFinite(d) && d >= 0 ? d : NaN;
    }
    this.fittedAtMs = fitted.fittedAtMs;
    this.shapeWeekday = -1;
  }

  /** What was learned, in the fitted profile's form (for tests and the simulator). */
  snapshot(fittedAtMs: number): FittedProfile {
    const density = this.density;
    const o = this.densityPool.offsetOf(this.densityRow);
    return {
      density: Array.from({ length: weekHours }, (_, i) => {
        const v = density === null ? NaN : density[o + i]!;
        return v === v ? v : null;
      }),
      fittedAtMs,
    };
  }

  /**
   * Closes a day of the given weekday. `hourMs[h]` is the real length of local hour h that day
   * (0, 1 or 2 hours on DST days). Returns the day's densities normalised to a mean of 1 over the
   * hours observed in full, with 0 for hours not observed (for the shard's global profile), or null
   * when the day taught nothing.
   */
  endDay(hourMs: readonly number[], weekday: number): Float64Array | null {
    const day = new Float64Array(24);
    const full = new Uint8Array(24);
    let sum = 0;
    let n = 0;
    const counts = this.counts;
    const co = this.countsPool.offsetOf(this.countsRow);
    const observed = this.observedMs;
    for (let h = 0; h < 24; h++) {
      const len = hourMs[h]!;
      const seen = observed === null ? 0 : observed[h]!;
      if (len > 0 && seen >= len * profileObservedShareMin && !(this.taintedHours & (1 << h))) {
        full[h] = 1;
        day[h] = counts === null ? 0 : counts[co + h]! / seen;
        sum += day[h]!;
        n++;
      }
    }
    // Today's state is dropped, not zeroed: tomorrow allocates it again on its first opportunity.
    this.dropCounts();
    this.observedMs = null;
    this.taintedHours = 0;
    if (n === 0 || sum <= 0) return null;
    const density = this.densities();
    const o = this.densityPool.offsetOf(this.densityRow);
    for (let h = 0; h < 24; h++) {
      if (!full[h]) continue;
      const i = o + weekday * 24 + h;
      const v = density[i]!;
      // The first lesson is taken as it is (what 0 + 1 × (x − 0) gave before NaN marked "not learned").
      density[i] = v !== v ? day[h]! : v + pacingTuning.profileLearningRate * (day[h]! - v);
    }
    this.daysLearned++;
    this.shapeWeekday = -1;
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
  /** Normalised densities by weekday × 24 + hour, NaN where nothing was learned. */
  private readonly sum = new Float64Array(weekHours).fill(NaN);
  /** Planning shape per weekday, built on demand (a midnight adds every campaign's day); null: nothing learned. */
  private readonly cached: (Float64Array | null | undefined)[] = new Array<Float64Array | null | undefined>(7);

  weightsFor(weekday: number): Float64Array | null {
    let shape = this.cached[weekday];
    if (shape === undefined) {
      const out = new Float64Array(24);
      shape = this.cached[weekday] = shapeOf(this.sum, 0, weekday, out) ? out : null;
    }
    return shape;
  }

  /** Blends in one campaign-day's normalised densities (0 marks an hour not observed). */
  add(density: Float64Array, weekday: number): void {
    for (let h = 0; h < 24; h++) {
      const d = density[h]!;
      const i = weekday * 24 + h;
      if (d <= 0) continue;
      const v = this.sum[i]!;
      this.sum[i] = v !== v ? d : v + pacingTuning.globalProfileLearningRate * (d - v);
    }
    this.recache();
  }

  /**
   * Replaces the shard-wide profile by a fitted one (normalised shapes per weekday, as add keeps
   * them); null hours are not learned.
   */
  load(fitted: FittedProfile): void {
    if (fitted.density.length !== weekHours) throw new RangeError(`a fitted profile has ${weekHours} hours (got ${fitted.density.length})`);
    for (let i = 0; i < weekHours; i++) {
      const d = fitted.density[i];
      this.sum[i] = typeof d === 'number' && Number.isFinite(d) && d > 0 ? d : NaN;
    }
    this.recache();
  }

  private recache(): void {
    this.cached.fill(undefined);
  }
}
