import { limits } from '../../shards/limits.js';
import type { BreakerTransition } from '../../shards/pacing/breaker.js';
import type { CampaignSummary } from '../../shards/shard.js';
import { log } from '../log.js';
import { type BreakerRow, type ConfigStore, mergeMinute, type MinuteRow } from './registry.js';
import type { ShardLinks } from './shards.js';

const minuteMs = 60_000;

/**
 * The minute history, written by the admin thread in batches, never on the hot path: every
 * historyFlushMs it asks each shard for its summaries (counters since the last ask, over the admin
 * port), folds them into per-campaign per-minute rows and writes them with the breaker events that
 * arrived meanwhile, in one transaction. While the database is down the rows wait here (at most
 * historyBufferRowsMax; the oldest are dropped and counted past it) and are written when it returns.
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
    if (this.rows.size > limits.historyBufferRowsMax) {
      // Map order is insertion order: the first key is the oldest minute held.
      this.rows.delete(this.rows.keys().next().value!);
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
      this.breakers = breakers.concat(this.breakers);
      this.onDatabase(false, err);
      log('warn', 'history write failed; kept for the next attempt', { rows: this.rows.size, error: (err as Error).message });
    }
  }

  get pendingRows(): number {
    return this.rows.size;
  }
}
