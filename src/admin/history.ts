import { limits } from '../../shards/limits.js';
import type { BreakerTransition } from '../../shards/pacing/breaker.js';
import type { CampaignSummary } from '../../shards/shard.js';
import { type DayBounds, dayBounds } from '../../shards/time/zone.js';
import { log } from '../log.js';
import type { QuarterSpend, RollupBucket, ShadowMinute } from '../store/sql-config.js';
import { type BreakerRow, type ConfigStore, mergeMinute, type MinuteRow } from './registry.js';
import type { ShardLinks } from './shards.js';

const minuteMs = 60_000;

/**
 * The minute history, written by the admin thread in batches, never on the hot path: every
 * historyFlushMs it asks each shard for its summaries (counters since the last ask, over the admin
 * port), folds them into per-campaign per-minute rows and writes them with the breaker events that
 * arrived meanwhile, in one transaction. While the database is down the rows wait here (at most
 * historyBufferRowsMax; the oldest are dropped and counted past it) and are written when it returns.
 * The bound applies to what waits after a failed write, not to one tick's rows: a tick of more
 * active campaigns than that (a million campaigns with traffic in ten seconds) is written whole.
 */
export class HistoryWriter {
  private rows = new Map<string, MinuteRow>();
  private breakers: BreakerRow[] = [];
  private running = false;
  dropped = 0;

  constructor(
    private readonly store: ConfigStore,
    private readonly links: ShardLinks,
    private readonly onDatabase: (ok: boolean, err?: unknown) => void,
  ) {}

  onBreaker(campaignId: string, t: BreakerTransition): void {
    this.breakers.push({ campaignId, atMs: t.atMs, from: t.from, to: t.to, reason: t.reason });
    if (this.breakers.length > limits.historyBufferRowsMax) {
      this.breakers.shift();
      this.dropped++;
    }
  }

  /** Adds summaries taken at nowMs to the minute they were taken in. */
  add(summaries: CampaignSummary[], nowMs: number): void {
    const minute = Math.floor(nowMs / minuteMs) * minuteMs;
    for (const s of summaries) {
      let denied = 0;
      for (const n of Object.values(s.deniedByReason)) denied += n;
      this.merge({
        campaignId: s.campaignId,
        minuteMs: minute,
        day: s.day,
        decisions: s.decisions,
        allowed: s.allowed,
        denied,
        deniedByReason: { ...s.deniedByReason },
        spendEvents: s.spendEvents,
        settledMicros: s.settledMicros,
        duplicateEvents: s.duplicateEvents,
        unmatchedEvents: s.unmatchedEvents,
        expiredReservations: s.expiredReservations,
        budgetMicros: s.budgetMicros,
        throttle: s.throttle,
        breakerState: s.breakerState,
        ...(s.shadow === undefined ? {} : { shadow: { ...s.shadow, deniedByReason: { ...s.shadow.deniedByReason } } }),
      });
    }
  }

  private merge(row: MinuteRow): void {
    const key = `${row.campaignId}\n${row.minuteMs}`;
    const have = this.rows.get(key);
    if (have !== undefined) {
      mergeMinute(have, row);
      return;
    }
    this.rows.set(key, row);
  }

  /** Keeps at most historyBufferRowsMax waiting rows, dropping (and counting) the oldest. */
  private bound(): void {
    // Map order is insertion order: the first keys are the oldest minutes held.
    const keys = this.rows.keys();
    while (this.rows.size > limits.historyBufferRowsMax) {
      this.rows.delete(keys.next().value!);
      this.dropped++;
    }
  }

  /** Collects the shards' summaries and writes what is pending; never throws. */
  async tick(nowMs: number = Date.now()): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const replies = await Promise.allSettled(
        Array.from({ length: this.links.count }, (_, i) => this.links.request<CampaignSummary[]>(i, { type: 'summaries' })),
      );
      for (const r of replies) if (r.status === 'fulfilled') this.add(r.value, nowMs);
      await this.write();
    } finally {
      this.running = false;
    }
  }

  /** Writes what is pending without asking the shards (shutdown: they sent their last summaries). */
  async flushPending(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.write();
    } finally {
      this.running = false;
    }
  }

  private async write(): Promise<void> {
    const rows = this.rows;
    const breakers = this.breakers;
    this.rows = new Map();
    this.breakers = [];
    try {
      if (rows.size === 0 && breakers.length === 0) await this.store.ping();
      else await this.store.writeHistory([...rows.values()], breakers);
      this.onDatabase(true);
    } catch (err) {
      // Keep them for the next tick, merged with what arrived meanwhile.
      const later = this.rows;
      this.rows = rows;
      for (const r of later.values()) this.merge(r);
      this.bound();
      this.breakers = breakers.concat(this.breakers);
      this.onDatabase(false, err);
      log('warn', 'history write failed; kept for the next attempt', { rows: this.rows.size, error: (err as Error).message });
    }
  }

  get pendingRows(): number {
    return this.rows.size;
  }
}

// ---- reading the history back: buckets in the campaign's zone, rolled up in the database ----------

export const historySteps = ['minute', 'hour', 'day'] as const;
export type HistoryStep = (typeof historySteps)[number];

/** The longest range one history request may span, per step (shards/limits.ts). */
export const historyRangeMsMax: Record<HistoryStep, number> = {
  minute: limits.historyMinuteRangeMsMax,
  hour: limits.historyHourRangeMsMax,
  day: limits.historyDayRangeMsMax,
};

const hourMs = 3_600_000;

/** The real hours of one local day from its midnight: 23, 24 or 25 of them (the report's slots). */
export function hourStartsFromMidnight(day: DayBounds): number[] {
  const out: number[] = [];
  for (let s = day.startMs; s < day.endMs; s += hourMs) out.push(s);
  return out;
}

/**
 * The edges of the buckets that overlap [fromMs, toMs), each bucket whole: n + 1 sorted instants
 * for n buckets. Hours are real hours from each local midnight, as the simulator's slots are, so a
 * 25-hour day has 25 of them (its repeated local hour twice) and a 23-hour day 23; days are local
 * calendar days.
 */
export function bucketEdges(timeZone: string, fromMs: number, toMs: number, step: HistoryStep): number[] {
  const edges: number[] = [];
  if (step === 'minute') {
    for (let s = Math.floor(fromMs / minuteMs) * minuteMs; s < toMs; s += minuteMs) edges.push(s);
    edges.push(edges[edges.length - 1]! + minuteMs);
    return edges;
  }
  let end = fromMs;
  for (let day = dayBounds(timeZone, fromMs); day.startMs < toMs; day = dayBounds(timeZone, day.endMs)) {
    const starts = step === 'day' ? [day.startMs] : hourStartsFromMidnight(day);
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i]!;
      const e = i + 1 < starts.length ? starts[i + 1]! : day.endMs;
      if (e <= fromMs || s >= toMs) continue;
      edges.push(s);
      end = e;
    }
  }
  edges.push(end);
  return edges;
}

/** The history reads the SQL store answers in the database (src/store/sql-config.ts). */
interface SqlHistoryReads {
  rollupHistory(campaignId: string, boundsMs: readonly number[]): Promise<RollupBucket[]>;
  breakerEvents(campaignId: string, fromMs: number, toMs: number): Promise<BreakerRow[]>;
  daySpendByQuarter(day: string): Promise<QuarterSpend[]>;
}

/**
 * History queries over any ConfigStore: the SQL store rolls up in the database; the memory store
 * (PACER_STORE=memory, tests) has only raw minutes, and the same sums are taken here from them.
 */
export class HistoryReader {
  private readonly sql: SqlHistoryReads | null;

  constructor(private readonly store: ConfigStore) {
    const s = store as Partial<SqlHistoryReads>;
    this.sql = typeof s.rollupHistory === 'function' && typeof s.breakerEvents === 'function' && typeof s.daySpendByQuarter === 'function'
      ? (s as SqlHistoryReads)
      : null;
  }

  rollup(campaignId: string, edges: readonly number[]): Promise<RollupBucket[]> {
    if (this.sql !== null) return this.sql.rollupHistory(campaignId, edges);
    return this.store.history(campaignId, edges[0]!, edges[edges.length - 1]!).then(({ minutes }) => rollupMinutes(minutes, edges));
  }

  /** The minutes of [fromMs, toMs) with shadow figures, in time order (the day report's shadow side). */
  shadowMinutes(campaignId: string, fromMs: number, toMs: number): Promise<ShadowMinute[]> {
    const s = this.store as Partial<{ shadowHistory(id: string, from: number, to: number): Promise<ShadowMinute[]> }>;
    if (typeof s.shadowHistory === 'function') return s.shadowHistory.call(this.store, campaignId, fromMs, toMs);
    return this.store.history(campaignId, fromMs, toMs).then(({ minutes }) =>
      minutes.flatMap((m) => (m.shadow === undefined ? [] : [{ minuteMs: m.minuteMs, shadow: m.shadow }])),
    );
  }

  breakers(campaignId: string, fromMs: number, toMs: number): Promise<BreakerRow[]> {
    if (this.sql !== null) return this.sql.breakerEvents(campaignId, fromMs, toMs);
    return this.store.history(campaignId, fromMs, toMs).then(({ breakers }) => breakers);
  }

  /** Spend by UTC quarter-hour of every campaign on its local day `day` (ids: the catalogue). */
  async daySpend(day: string, ids: readonly string[]): Promise<QuarterSpend[]> {
    if (this.sql !== null) return this.sql.daySpendByQuarter(day);
    const out: QuarterSpend[] = [];
    const lo = Date.parse(day) - 14 * hourMs;
    for (const id of ids) {
      const { minutes } = await this.store.history(id, lo, lo + 52 * hourMs);
      const byQuarter = new Map<number, QuarterSpend>();
      for (const m of minutes) {
        if (m.day !== day) continue;
        const q = Math.floor(m.minuteMs / 900_000) * 900_000;
        const have = byQuarter.get(q);
        if (have === undefined) byQuarter.set(q, { campaignId: id, quarterMs: q, settledMicros: m.settledMicros, budgetMicros: m.budgetMicros });
        else {
          have.settledMicros += m.settledMicros;
          have.budgetMicros = m.budgetMicros;
        }
      }
      out.push(...byQuarter.values());
    }
    return out;
  }
}

/** The SQL rollup's sums, over minutes sorted by time (the memory store's answer). */
export function rollupMinutes(minutes: readonly MinuteRow[], edges: readonly number[]): RollupBucket[] {
  const out = new Map<number, RollupBucket>();
  for (const m of minutes) {
    const index = bucketIndex(edges, m.minuteMs);
    if (index < 0) continue;
    let b = out.get(index);
    if (b === undefined) {
      b = { index, decisions: 0, allowed: 0, denied: 0, deniedByReason: {}, spendEvents: 0, settledMicros: 0, duplicateEvents: 0, unmatchedEvents: 0, expiredReservations: 0, budgetMicros: 0, throttle: 0, breakerState: '' };
      out.set(index, b);
    }
    b.decisions += m.decisions;
    b.allowed += m.allowed;
    b.denied += m.denied;
    for (const [k, v] of Object.entries(m.deniedByReason)) b.deniedByReason[k] = (b.deniedByReason[k] ?? 0) + v;
    b.spendEvents += m.spendEvents;
    b.settledMicros += m.settledMicros;
    b.duplicateEvents += m.duplicateEvents;
    b.unmatchedEvents += m.unmatchedEvents;
    b.expiredReservations += m.expiredReservations;
    b.budgetMicros = m.budgetMicros;
    b.throttle = m.throttle;
    b.breakerState = m.breakerState;
  }
  return [...out.values()].sort((a, b) => a.index - b.index);
}

/** The bucket [edges[i], edges[i + 1]) that holds t, or −1 outside them all. */
export function bucketIndex(edges: readonly number[], t: number): number {
  if (t < edges[0]! || t >= edges[edges.length - 1]!) return -1;
  let lo = 0;
  let hi = edges.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
