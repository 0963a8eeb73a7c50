import type { CampaignConfig } from '../../shards/types.js';
import type { CampaignRecord } from '../model/campaign.js';
import {
  type BreakerRow,
  type BudgetChange,
  budgetChangesOf,
  type ConfigStore,
  type MinuteRow,
  type NewBudgetChange,
  type SaveItem,
} from './config-store.js';
import { int, type Sql } from './sql.js';

/** Rows deleted per statement by the retention sweep: short statements, short locks. */
const pruneRowsPerStatement = 10_000;

function iso(v: unknown): string {
  return (v instanceof Date ? v : new Date(String(v))).toISOString();
}

function ms(v: unknown): number {
  return (v instanceof Date ? v : new Date(String(v))).getTime();
}

function dayString(v: unknown): string {
  // pg returns date columns as a local-midnight Date unless told otherwise; we select day::text.
  return String(v);
}

/**
 * Campaign configuration, the budget audit trail, the minute history and breaker events in SQL
 * (migrations/0001 and 0003), on PostgreSQL or the embedded database alike.
 */
export class SqlConfigStore implements ConfigStore {
  readonly kind: string;

  constructor(private readonly sql: Sql) {
    this.kind = sql.kind;
  }

  async loadCampaigns(): Promise<CampaignRecord[]> {
    const rows = await this.sql.query<{ config: CampaignConfig | string; created_at: unknown; updated_at: unknown; archived_at: unknown }>(
      'SELECT config, created_at, updated_at, archived_at FROM campaigns ORDER BY id',
    );
    return rows.map((r) => ({
      config: typeof r.config === 'string' ? (JSON.parse(r.config) as CampaignConfig) : r.config,
      createdAt: iso(r.created_at),
      updatedAt: iso(r.updated_at),
      archivedAt: r.archived_at === null || r.archived_at === undefined ? null : iso(r.archived_at),
    }));
  }

  async saveCampaign(record: CampaignRecord, previous: CampaignRecord | null, actor: string, reason: string | null = null): Promise<boolean> {
    const [saved] = await this.save([{ record, previous }], actor, reason);
    return saved!;
  }

  saveCampaigns(items: readonly SaveItem[], actor: string): Promise<boolean[]> {
    return this.save(items, actor, null);
  }

  /**
   * One statement writes every campaign whose stored version is still the previous one (a new
   * campaign has none): the compare-and-set is the UPDATE's WHERE, under the row lock, so two
   * writers with the same expectation cannot both succeed. The audit rows of the campaigns that
   * were written follow in the same transaction.
   */
  private async save(items: readonly SaveItem[], actor: string, reason: string | null): Promise<boolean[]> {
    if (items.length === 0) return [];
    const rows = items.map(({ record, previous }) => ({
      id: record.config.id,
      config: record.config,
      version: record.config.version,
      expected: previous?.config.version ?? 0,
      created: record.createdAt,
      updated: record.updatedAt,
      archived: record.archivedAt,
    }));
    return this.sql.transaction(async (tx) => {
      const written = await tx.query<{ id: string }>(
        `INSERT INTO campaigns (id, config, version, created_at, updated_at, archived_at)
         SELECT x.id, x.config, x.version, x.created, x.updated, x.archived
         FROM jsonb_to_recordset($1::jsonb)
           AS x(id text, config jsonb, version integer, expected integer, created timestamptz, updated timestamptz, archived timestamptz)
         WHERE x.expected = 0
            OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = x.id AND c.version = x.expected)
         ON CONFLICT (id) DO UPDATE SET config = excluded.config, version = excluded.version,
                                        updated_at = excluded.updated_at, archived_at = excluded.archived_at
         WHERE campaigns.version = excluded.version - 1
         RETURNING id`,
        [JSON.stringify(rows)],
      );
      const ok = new Set(written.map((w) => w.id));
      const changes: (NewBudgetChange & { campaignId: string })[] = [];
      for (const { record, previous } of items) {
        if (!ok.has(record.config.id)) continue;
        for (const c of budgetChangesOf(record, previous, actor, reason)) changes.push({ campaignId: record.config.id, ...c });
      }
      if (changes.length > 0) {
        await tx.query(
          `INSERT INTO budget_changes (campaign_id, changed_at, budget, old_micros, new_micros, actor, reason, version)
           SELECT x.c, x.at, x.budget, x.old, x.new, x.actor, x.reason, x.version
           FROM jsonb_to_recordset($1::jsonb)
             AS x(c text, at timestamptz, budget text, old bigint, new bigint, actor text, reason text, version integer)`,
          [JSON.stringify(changes.map((c) => ({
            c: c.campaignId, at: c.at, budget: c.budget, old: c.oldMicros, new: c.newMicros,
            actor: c.actor, reason: c.reason, version: c.version,
          })))],
        );
      }
      return items.map(({ record }) => ok.has(record.config.id));
    });
  }

  async budgetChanges(campaignId: string, afterId = 0, limit = 1_000_000): Promise<BudgetChange[]> {
    const rows = await this.sql.query<{
      id: unknown; changed_at: unknown; budget: 'daily' | 'lifetime'; old_micros: unknown; new_micros: unknown;
      actor: string; reason: string | null; version: unknown;
    }>(
      `SELECT id, changed_at, budget, old_micros, new_micros, actor, reason, version FROM budget_changes
       WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [campaignId, afterId, limit],
    );
    return rows.map((r) => ({
      id: int(r.id, 'id'),
      at: iso(r.changed_at),
      budget: r.budget,
      oldMicros: r.old_micros === null ? null : int(r.old_micros, 'old_micros'),
      newMicros: r.new_micros === null ? null : int(r.new_micros, 'new_micros'),
      actor: r.actor,
      reason: r.reason ?? null,
      version: int(r.version, 'version'),
    }));
  }

  async writeHistory(minutes: MinuteRow[], breakers: BreakerRow[]): Promise<void> {
    if (minutes.length === 0 && breakers.length === 0) return;
    const denials: { c: string; m: string; r: string; n: number }[] = [];
    for (const m of minutes) {
      for (const [r, n] of Object.entries(m.deniedByReason)) denials.push({ c: m.campaignId, m: new Date(m.minuteMs).toISOString(), r, n });
    }
    await this.sql.transaction(async (tx) => {
      if (minutes.length > 0) {
        await tx.query(
          `INSERT INTO campaign_minutes (campaign_id, minute, day, decisions, allowed, denied, spend_events,
             settled_micros, duplicate_events, unmatched_events, expired_reservations, budget_micros, throttle, breaker_state)
           SELECT c, m, d::date, dec, al, den, se, st, du, un, ex, b, th, bs
           FROM jsonb_to_recordset($1::jsonb) AS x(c text, m timestamptz, d text, dec bigint, al bigint, den bigint,
             se bigint, st bigint, du bigint, un bigint, ex bigint, b bigint, th double precision, bs text)
           ON CONFLICT (campaign_id, minute) DO UPDATE SET
             day = excluded.day,
             decisions = campaign_minutes.decisions + excluded.decisions,
             allowed = campaign_minutes.allowed + excluded.allowed,
             denied = campaign_minutes.denied + excluded.denied,
             spend_events = campaign_minutes.spend_events + excluded.spend_events,
             settled_micros = campaign_minutes.settled_micros + excluded.settled_micros,
             duplicate_events = campaign_minutes.duplicate_events + excluded.duplicate_events,
             unmatched_events = campaign_minutes.unmatched_events + excluded.unmatched_events,
             expired_reservations = campaign_minutes.expired_reservations + excluded.expired_reservations,
             budget_micros = excluded.budget_micros,
             throttle = excluded.throttle,
             breaker_state = excluded.breaker_state`,
          [JSON.stringify(minutes.map((m) => ({
            c: m.campaignId, m: new Date(m.minuteMs).toISOString(), d: m.day, dec: m.decisions, al: m.allowed, den: m.denied,
            se: m.spendEvents, st: m.settledMicros, du: m.duplicateEvents, un: m.unmatchedEvents, ex: m.expiredReservations,
            b: m.budgetMicros, th: m.throttle, bs: m.breakerState,
          })))],
        );
      }
      if (denials.length > 0) {
        await tx.query(
          `INSERT INTO campaign_minute_denials (campaign_id, minute, reason, decisions)
           SELECT c, m, r, n FROM jsonb_to_recordset($1::jsonb) AS x(c text, m timestamptz, r text, n bigint)
           ON CONFLICT (campaign_id, minute, reason)
           DO UPDATE SET decisions = campaign_minute_denials.decisions + excluded.decisions`,
          [JSON.stringify(denials)],
        );
      }
      if (breakers.length > 0) {
        await tx.query(
          `INSERT INTO breaker_events (campaign_id, at, from_state, to_state, reason)
           SELECT c, a, f, t, r FROM jsonb_to_recordset($1::jsonb) AS x(c text, a timestamptz, f text, t text, r text)`,
          [JSON.stringify(breakers.map((b) => ({ c: b.campaignId, a: new Date(b.atMs).toISOString(), f: b.from, t: b.to, r: b.reason })))],
        );
      }
    });
  }

  async history(campaignId: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }> {
    const from = new Date(fromMs).toISOString();
    const to = new Date(toMs).toISOString();
    const rows = await this.sql.query<Record<string, unknown>>(
      `SELECT minute, day::text AS day, decisions, allowed, denied, spend_events, settled_micros, duplicate_events,
              unmatched_events, expired_reservations, budget_micros, throttle, breaker_state
       FROM campaign_minutes WHERE campaign_id = $1 AND minute >= $2::timestamptz AND minute < $3::timestamptz
       ORDER BY minute`,
      [campaignId, from, to],
    );
    const denials = await this.sql.query<{ minute: unknown; reason: string; decisions: unknown }>(
      `SELECT minute, reason, decisions FROM campaign_minute_denials
       WHERE campaign_id = $1 AND minute >= $2::timestamptz AND minute < $3::timestamptz`,
      [campaignId, from, to],
    );
    const byMinute = new Map<number, Record<string, number>>();
    for (const d of denials) {
      const k = ms(d.minute);
      const m = byMinute.get(k) ?? {};
      m[d.reason] = int(d.decisions, 'denials');
      byMinute.set(k, m);
    }
    const minutes: MinuteRow[] = rows.map((r) => {
      const minuteMs = ms(r.minute);
      return {
        campaignId,
        minuteMs,
        day: dayString(r.day),
        decisions: int(r.decisions, 'decisions'),
        allowed: int(r.allowed, 'allowed'),
        denied: int(r.denied, 'denied'),
        deniedByReason: byMinute.get(minuteMs) ?? {},
        spendEvents: int(r.spend_events, 'spend_events'),
        settledMicros: int(r.settled_micros, 'settled_micros'),
        duplicateEvents: int(r.duplicate_events, 'duplicate_events'),
        unmatchedEvents: int(r.unmatched_events, 'unmatched_events'),
        expiredReservations: int(r.expired_reservations, 'expired_reservations'),
        budgetMicros: int(r.budget_micros, 'budget_micros'),
        throttle: Number(r.throttle),
        breakerState: String(r.breaker_state),
      };
    });
    const brows = await this.sql.query<{ at: unknown; from_state: string; to_state: string; reason: string }>(
      `SELECT at, from_state, to_state, reason FROM breaker_events
       WHERE campaign_id = $1 AND at >= $2::timestamptz AND at < $3::timestamptz ORDER BY at, id`,
      [campaignId, from, to],
    );
    const breakers = brows.map((b) => ({ campaignId, atMs: ms(b.at), from: b.from_state, to: b.to_state, reason: b.reason }));
    return { minutes, breakers };
  }

  async prune(retentionDays: number, nowMs: number): Promise<void> {
    const cutoff = new Date(nowMs - retentionDays * 86_400_000).toISOString();
    const statements = [
      `DELETE FROM campaign_minutes WHERE (campaign_id, minute) IN
         (SELECT campaign_id, minute FROM campaign_minutes WHERE minute < $1::timestamptz LIMIT ${pruneRowsPerStatement})`,
      `DELETE FROM campaign_minute_denials WHERE (campaign_id, minute, reason) IN
         (SELECT campaign_id, minute, reason FROM campaign_minute_denials WHERE minute < $1::timestamptz LIMIT ${pruneRowsPerStatement})`,
      `DELETE FROM breaker_events WHERE id IN
         (SELECT id FROM breaker_events WHERE at < $1::timestamptz LIMIT ${pruneRowsPerStatement})`,
    ];
    for (const text of statements) {
      for (;;) {
        const deleted = await this.sql.query<{ n: unknown }>(`WITH d AS (${text} RETURNING 1) SELECT count(*) AS n FROM d`, [cutoff]);
        if (int(deleted[0]?.n ?? 0, 'deleted') < pruneRowsPerStatement) break;
      }
    }
  }

  async ping(): Promise<void> {
    await this.sql.query('SELECT 1');
  }

  /** The admin thread owns the Sql (shared with the embedded counters) and closes it. */
  async close(): Promise<void> {}
}
