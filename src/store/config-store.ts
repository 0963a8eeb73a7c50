import type { CampaignRecord } from '../model/campaign.js';
import type { CampaignTable } from '../model/table.js';
import type { CampaignSummary, ShadowSummary } from '../../shards/shard.js';

/*
 * The configuration store's contract: what the admin thread asks of PostgreSQL, the embedded
 * database or memory. It lives with the store adapters (src/store), which import nothing from
 * the admin thread; the admin imports it from here.
 */

/** One budget change in the audit trail. Creation is a change from null. */
export interface BudgetChange {
  /** Position in the audit trail (increasing): the paging cursor. */
  id: number;
  at: string;
  budget: 'daily' | 'lifetime';
  oldMicros: number | null;
  newMicros: number | null;
  actor: string;
  /** Why, as the operator said (budget operations); null for plain edits. */
  reason: string | null;
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

/** A fitted traffic profile as stored (migrations/0006_profiles.sql); campaignId '#global' for the shard-wide one. */
export interface StoredProfile {
  campaignId: string;
  fittedAtMs: number;
  halfLifeDays: number;
  /** Opportunities per ms by weekday × 24 + hour (weekday 0 = Sunday); null where not learned. */
  density: (number | null)[];
  hoursUsed: number;
}

/** The campaignId under which the shard-wide fallback profile is stored. */
export const globalProfileId = '#global';

/**
 * Where campaign configuration, its audit trail and the history live (PostgreSQL, the embedded
 * database, or memory). The admin thread is its only user; the hot path never waits on it.
 */
export interface ConfigStore {
  readonly kind: string;
  /**
   * A store that keeps its campaigns in the admin thread (memory) offers its table here, and the
   * catalogue (src/admin/campaigns.ts) uses it instead of a second copy. Only saveCampaign(s)
   * changes it: the catalogue's own writes to it repeat what was just stored.
   */
  readonly table?: CampaignTable;
  loadCampaigns(): Promise<CampaignRecord[]>;
  /**
   * Stores a campaign if the stored version is still previous's (none when previous is null), and
   * records the budget changes in the audit trail, atomically. Resolves false, changing nothing,
   * when another writer got there first (compare-and-set on the version).
   */
  saveCampaign(record: CampaignRecord, previous: CampaignRecord | null, actor: string, reason?: string | null): Promise<boolean>;
  /** saveCampaign for many campaigns in one transaction; one answer per item, in order. */
  saveCampaigns(items: readonly SaveItem[], actor: string): Promise<boolean[]>;
  /** The audit trail of a campaign, oldest first: at most `limit` changes with id > afterId. */
  budgetChanges(campaignId: string, afterId?: number, limit?: number): Promise<BudgetChange[]>;
  /** Adds minute rows (summing into rows already there) and breaker events, in one transaction. */
  writeHistory(minutes: MinuteRow[], breakers: BreakerRow[]): Promise<void>;
  history(campaignId: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }>;
  /** Deletes history older than retentionDays. */
  prune(retentionDays: number, nowMs: number): Promise<void>;
  /**
   * Tells the other instances sharing this database that an operator reset a campaign's breaker
   * (a breaker lives in each instance's memory; stored configuration changes tell themselves).
   */
  noteBreakerReset(campaignId: string, origin: string): Promise<void>;
  /** Stores (replaces) fitted profiles. */
  saveProfiles(profiles: readonly StoredProfile[]): Promise<void>;
  /** Every stored profile (startup), or those of the given campaign IDs. */
  loadProfiles(campaignIds?: readonly string[]): Promise<StoredProfile[]>;
  /** A cheap round trip: tells whether the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** One row of config_changes (migrations/0005_config_notify.sql), as the configuration feed reads it. */
export interface ConfigChange {
  seq: number;
  kind: 'config' | 'breakerReset';
  campaignId: string;
  /** The campaign's stored version for 'config'; null for a breaker reset. */
  version: number | null;
  /** The instance ID that made a breaker reset; '' for stored changes. */
  origin: string;
  /** When it was recorded, on the database's clock. */
  atMs: number;
}

export interface SaveItem {
  record: CampaignRecord;
  previous: CampaignRecord | null;
}

/** An audit row before the store numbers it. */
export type NewBudgetChange = Omit<BudgetChange, 'id'>;

/** The budget changes between two versions of a campaign (creation when previous is null). */
export function budgetChangesOf(
  record: CampaignRecord,
  previous: CampaignRecord | null,
  actor: string,
  reason: string | null = null,
): NewBudgetChange[] {
  const out: NewBudgetChange[] = [];
  const { config } = record;
  const at = record.updatedAt;
  const version = config.version;
  if (previous === null || previous.config.dailyBudgetMicros !== config.dailyBudgetMicros) {
    out.push({ at, budget: 'daily', oldMicros: previous?.config.dailyBudgetMicros ?? null, newMicros: config.dailyBudgetMicros, actor, reason, version });
  }
  const oldLife = previous?.config.lifetimeBudgetMicros ?? null;
  if (config.lifetimeBudgetMicros !== oldLife) {
    out.push({ at, budget: 'lifetime', oldMicros: oldLife, newMicros: config.lifetimeBudgetMicros, actor, reason, version });
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
  mergeShadow(a, b.shadow);
}

/** Adds a shadow's counters of a minute into a's (a copy of bs when a has none); bs's strategy wins. */
export function mergeShadow(a: { shadow?: ShadowSummary | undefined }, bs: ShadowSummary | undefined): void {
  if (bs === undefined) return;
  const as = a.shadow;
  if (as === undefined) a.shadow = { ...bs, deniedByReason: { ...bs.deniedByReason } };
  else {
    as.strategy = bs.strategy;
    as.decisions += bs.decisions;
    as.allowed += bs.allowed;
    as.settledMicros += bs.settledMicros;
    as.estimatedMicros += bs.estimatedMicros;
    for (const [k, v] of Object.entries(bs.deniedByReason)) as.deniedByReason[k] = (as.deniedByReason[k] ?? 0) + v;
  }
}

