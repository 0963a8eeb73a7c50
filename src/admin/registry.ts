import type { CampaignSummary } from '../../shards/shard.js';
import type { CampaignRecord } from './campaign-schema.js';

/** One budget change in the audit trail. Creation is a change from null. */
export interface BudgetChange {
  at: string;
  budget: 'daily' | 'lifetime';
  oldMicros: number | null;
  newMicros: number | null;
  actor: string;
  version: number;
}

/** One campaign's activity in one minute: the shards' summaries (CampaignSummary) summed. */
export interface MinuteRow extends Omit<CampaignSummary, 'day'> {
  /** Start of the minute, epoch ms. */
  minuteMs: number;
  day: string;
  /** Denied decisions, all reasons together. */
  denied: number;
}

export interface BreakerRow {
  campaignId: string;
  atMs: number;
  from: string;
  to: string;
  reason: string;
}

/**
 * Where campaign configuration, its audit trail and the history live (PostgreSQL, the embedded
 * database, or memory). The admin thread is its only user; the hot path never waits on it.
 */
export interface ConfigStore {
  readonly kind: string;
  loadCampaigns(): Promise<CampaignRecord[]>;
  /** Stores a campaign; records the budget change in the audit trail when a budget moved. */
  saveCampaign(record: CampaignRecord, previous: CampaignRecord | null, actor: string): Promise<void>;
  budgetChanges(campaignId: string): Promise<BudgetChange[]>;
  /** Adds minute rows (summing into rows already there) and breaker events, in one transaction. */
  writeHistory(minutes: MinuteRow[], breakers: BreakerRow[]): Promise<void>;
  history(campaignId: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }>;
  /** Deletes history older than retentionDays. */
  prune(retentionDays: number, nowMs: number): Promise<void>;
  /** A cheap round trip: tells whether the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The budget changes between two versions of a campaign (creation when previous is null). */
export function budgetChangesOf(record: CampaignRecord, previous: CampaignRecord | null, actor: string): BudgetChange[] {
  const out: BudgetChange[] = [];
  const { config } = record;
  const at = record.updatedAt;
  const version = config.version;
  if (previous === null || previous.config.dailyBudgetMicros !== config.dailyBudgetMicros) {
    out.push({ at, budget: 'daily', oldMicros: previous?.config.dailyBudgetMicros ?? null, newMicros: config.dailyBudgetMicros, actor, version });
  }
  const oldLife = previous?.config.lifetimeBudgetMicros ?? null;
  if (config.lifetimeBudgetMicros !== oldLife) {
    out.push({ at, budget: 'lifetime', oldMicros: oldLife, newMicros: config.lifetimeBudgetMicros, actor, version });
  }
  return out;
}

/** Adds b's counters into a (same campaign and minute); b's end-of-minute state wins. */
export function mergeMinute(a: MinuteRow, b: MinuteRow): void {
  a.decisions += b.decisions;
  a.allowed += b.allowed;
  a.denied += b.denied;
  for (const [k, v] of Object.entries(b.deniedByReason)) a.deniedByReason[k] = (a.deniedByReason[k] ?? 0) + v;
  a.spendEvents += b.spendEvents;
  a.settledMicros += b.settledMicros;
  a.duplicateEvents += b.duplicateEvents;
  a.unmatchedEvents += b.unmatchedEvents;
  a.expiredReservations += b.expiredReservations;
  a.day = b.day;
  a.budgetMicros = b.budgetMicros;
  a.throttle = b.throttle;
  a.breakerState = b.breakerState;
}

/** Configuration in memory: for PACER_STORE=memory only; lost on restart. */
export class MemoryConfigStore implements ConfigStore {
  readonly kind = 'memory';
  private readonly campaigns = new Map<string, CampaignRecord>();
  private readonly changes = new Map<string, BudgetChange[]>();
  private readonly minutes = new Map<string, MinuteRow>();
  private breakers: BreakerRow[] = [];

  async loadCampaigns(): Promise<CampaignRecord[]> {
    return [...this.campaigns.values()];
  }

  async saveCampaign(record: CampaignRecord, previous: CampaignRecord | null, actor: string): Promise<void> {
    this.campaigns.set(record.config.id, record);
    const list = this.changes.get(record.config.id) ?? [];
    list.push(...budgetChangesOf(record, previous, actor));
    this.changes.set(record.config.id, list);
  }

  async budgetChanges(campaignId: string): Promise<BudgetChange[]> {
    return [...(this.changes.get(campaignId) ?? [])];
  }

  async writeHistory(minutes: MinuteRow[], breakers: BreakerRow[]): Promise<void> {
    for (const m of minutes) {
      const key = `${m.campaignId}\n${m.minuteMs}`;
      const have = this.minutes.get(key);
      if (have === undefined) this.minutes.set(key, { ...m, deniedByReason: { ...m.deniedByReason } });
      else mergeMinute(have, m);
    }
    this.breakers.push(...breakers);
  }

  async history(campaignId: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }> {
    const minutes = [...this.minutes.values()]
      .filter((m) => m.campaignId === campaignId && m.minuteMs >= fromMs && m.minuteMs < toMs)
      .sort((a, b) => a.minuteMs - b.minuteMs);
    const breakers = this.breakers.filter((b) => b.campaignId === campaignId && b.atMs >= fromMs && b.atMs < toMs);
    return { minutes, breakers };
  }

  async prune(retentionDays: number, nowMs: number): Promise<void> {
    const cutoff = nowMs - retentionDays * 86_400_000;
    for (const [k, m] of this.minutes) if (m.minuteMs < cutoff) this.minutes.delete(k);
    this.breakers = this.breakers.filter((b) => b.atMs >= cutoff);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
