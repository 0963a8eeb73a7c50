import type { CampaignConfig } from '../../shards/types.js';
import type { ShadowSummary } from '../../shards/shard.js';
import type { CampaignRecord } from '../model/campaign.js';
import {
  type BreakerRow,
  type BudgetChange,
  budgetChangesOf,
  type ConfigChange,
  type ConfigStore,
  type MinuteRow,
  type NewBudgetChange,
  type SaveItem,
  type StoredProfile,
} from './config-store.js';
import { int, type Sql } from './sql.js';
import { limits } from '../../shards/limits.js';

/** Rows deleted per statement by the retention sweep: short statements, short locks. */
const pruneRowsPerStatement = 10_000;

function iso(v: unknown): string {
  return (v instanceof Date ? v : new Date(String(v))).toISOString();
}

function ms(v: unknown): number {
  return (v instanceof Date ? v : new Date(String(v))).getTime();
}

/** `col = old + new`, where NULL (no shadow in that write) adds nothing. */
function shadowSum(col: string): string {
  return `CASE WHEN excluded.${col} IS NULL THEN campaign_minutes.${col} ELSE coalesce(campaign_minutes.${col}, 0) + excluded.${col} END`;
}

/** A jsonb {reason: count} as read back (an object from pg, a string from some drivers). */
function jsonCounts(v: unknown): Record<string, number> {
  const o = typeof v === 'string' ? (JSON.parse(v) as unknown) : v;
  const out: Record<string, number> = {};
  if (typeof o === 'object' && o !== null) for (const [k, n] of Object.entries(o as Record<string, unknown>)) out[k] = Number(n);
  return out;
}

function dayString(v: unknown): string {
  // pg returns date columns as a local-midnight Date unless told otherwise; we select day::text.
  return String(v);
}

/** One bucket of a history rollup: the minutes of [bounds[index], bounds[index + 1]) summed. */
export interface RollupBucket {
  index: number;
  decisions: number;
  allowed: number;
  denied: number;
  deniedByReason: Record<string, number>;
  spendEvents: number;
  settledMicros: number;
  duplicateEvents: number;
  unmatchedEvents: number;
  expiredReservations: number;
  /** State at the end of the bucket's last minute with a row. */
  budgetMicros: number;
  throttle: number;
  breakerState: string;
}

/** One minute's shadow figures (migrations/0007_shadow.sql). */
export interface ShadowMinute {
  minuteMs: number;
  shadow: ShadowSummary;
}

/** One campaign's spend in one UTC quarter-hour of its local day (every zone offset is a multiple). */
export interface QuarterSpend {
  campaignId: string;
  quarterMs: number;
  settledMicros: number;
  /** The day's budget at the end of the quarter's last minute with a row. */
  budgetMicros: number;
}

interface CampaignRow {
  config: CampaignConfig | string;
  created_at: unknown;
  updated_at: unknown;
  archived_at: unknown;
}

function recordOf(r: CampaignRow): CampaignRecord {
  return {
    config: typeof r.config === 'string' ? (JSON.parse(r.config) as CampaignConfig) : r.config,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    archivedAt: r.archived_at === null || r.archived_at === undefined ? null : iso(r.archived_at),
  };
}

/** The bucket of a minute: bounds are sorted epoch ms, so width_bucket is a binary search. */
const bucketOf = `width_bucket((extract(epoch FROM minute) * 1000)::float8, $2::float8[]) - 1`;

/**
 * Campaign configuration, the budget audit trail, the minute history and breaker events in SQL
 * (migrations/0001 and 0003), on PostgreSQL or the embedded database alike.
 */
export class SqlConfigStore implements ConfigStore {
  readonly kind: string;

  constructor(private readonly sql: Sql) {
    this.kind = sql.kind;
  }

  /**
   * The whole catalogue, in pages of limits.catalogueReadPageRows by ID (keyset): one statement
   * for a million campaigns ran past the statement deadline, and startup retried it for ever.
   */
  async loadCampaigns(): Promise<CampaignRecord[]> {
    return this.inPages<CampaignRow & { id: string }, CampaignRecord>(
      'SELECT id, config, created_at, updated_at, archived_at FROM campaigns WHERE id > $1 ORDER BY id LIMIT $2',
      limits.catalogueReadPageRows, (r) => r.id, recordOf,
    );
  }

  /**
   * A whole table read in pages by its text key (keyset): `text` takes the last key of the page
   * before as $1 and the page size as $2, ordered by that key.
   */
  private async inPages<R, T>(text: string, pageRows: number, keyOf: (r: R) => string, map: (r: R) => T): Promise<T[]> {
    const out: T[] = [];
    for (let after = '';;) {
      const rows = await this.sql.query<R>(text, [after, pageRows]);
      for (const r of rows) out.push(map(r));
      if (rows.length < pageRows) return out;
      after = keyOf(rows[rows.length - 1]!);
    }
  }

  /** The stored records of these campaigns (those that exist), for the configuration feed. */
  async loadCampaignsById(ids: readonly string[]): Promise<CampaignRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.sql.query<CampaignRow>(
      'SELECT config, created_at, updated_at, archived_at FROM campaigns WHERE id = ANY($1::text[])',
      [ids],
    );
    return rows.map(recordOf);
  }

  /** Every campaign's ID and version: a full catch-up compares them with what it holds. */
  async campaignVersions(): Promise<{ id: string; version: number }[]> {
    return this.inPages<{ id: string; version: unknown }, { id: string; version: number }>(
      'SELECT id, version FROM campaigns WHERE id > $1 ORDER BY id LIMIT $2',
      limits.catalogueReadPageRows, (r) => r.id, (r) => ({ id: r.id, version: int(r.version, 'version') }),
    );
  }

  /** Records a breaker reset in config_changes; its NOTIFY tells the other instances. */
  async noteBreakerReset(campaignId: string, origin: string): Promise<void> {
    await this.sql.query("INSERT INTO config_changes (campaign_id, kind, origin) VALUES ($1, 'breakerReset', $2)", [campaignId, origin]);
  }

  /**
   * Changes recorded at or after sinceMs (database time), in seq order, at most `limit` with
   * seq > afterSeq; and the database's clock now, which the next catch-up starts from.
   */
  async changesSince(sinceMs: number, afterSeq: number, limit: number): Promise<{ changes: ConfigChange[]; nowMs: number }> {
    const rows = await this.sql.query<{ seq: unknown; kind: string; campaign_id: string; version: unknown; origin: string; at_ms: unknown; now_ms: unknown }>(
      `SELECT seq, kind, campaign_id, version, origin,
              floor(extract(epoch FROM at) * 1000)::float8 AS at_ms, floor(extract(epoch FROM now()) * 1000)::float8 AS now_ms
       FROM config_changes WHERE at >= to_timestamp($1::float8 / 1000) AND seq > $2 ORDER BY seq LIMIT $3`,
      [sinceMs, afterSeq, limit],
    );
    const nowRows = rows.length > 0 ? rows : await this.sql.query<{ now_ms: unknown }>('SELECT floor(extract(epoch FROM now()) * 1000)::float8 AS now_ms');
    return {
      changes: rows.map((r) => ({
        seq: int(r.seq, 'seq'),
        kind: r.kind === 'breakerReset' ? 'breakerReset' : 'config',
        campaignId: r.campaign_id,
        version: r.version === null || r.version === undefined ? null : int(r.version, 'version'),
        origin: r.origin,
        atMs: Number(r.at_ms),
      })),
      nowMs: Number(nowRows[0]!.now_ms),
    };
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
    // In statements of historyRowsPerStatement rows, one transaction for all. A tick's rows in one
    // statement (300,000 active campaigns: one jsonb parameter of all of them) grew the embedded
    // database's WebAssembly memory, which never shrinks, from 18 MB to 1.5 GB; with a million, 2 GB
    // (bench/README.md, "The embedded default at a million campaigns").
    const per = limits.historyRowsPerStatement;
    await this.sql.transaction(async (tx) => {
      for (let i = 0; i < minutes.length; i += per) {
        const part = minutes.slice(i, i + per);
        await tx.query(
          `INSERT INTO campaign_minutes (campaign_id, minute, day, decisions, allowed, denied, spend_events,
             settled_micros, duplicate_events, unmatched_events, expired_reservations, budget_micros, throttle, breaker_state,
             shadow_strategy, shadow_decisions, shadow_allowed, shadow_settled_micros, shadow_estimated_micros, shadow_denied_by_reason)
           SELECT c, m, d::date, dec, al, den, se, st, du, un, ex, b, th, bs, ss, sd, sa, sst, sse, sdr
           FROM jsonb_to_recordset($1::jsonb) AS x(c text, m timestamptz, d text, dec bigint, al bigint, den bigint,
             se bigint, st bigint, du bigint, un bigint, ex bigint, b bigint, th double precision, bs text,
             ss text, sd bigint, sa bigint, sst bigint, sse bigint, sdr jsonb)
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
             breaker_state = excluded.breaker_state,
             shadow_strategy = coalesce(excluded.shadow_strategy, campaign_minutes.shadow_strategy),
             shadow_decisions = ${shadowSum('shadow_decisions')},
             shadow_allowed = ${shadowSum('shadow_allowed')},
             shadow_settled_micros = ${shadowSum('shadow_settled_micros')},
             shadow_estimated_micros = ${shadowSum('shadow_estimated_micros')},
             shadow_denied_by_reason = CASE WHEN excluded.shadow_denied_by_reason IS NULL THEN campaign_minutes.shadow_denied_by_reason
               WHEN campaign_minutes.shadow_denied_by_reason IS NULL THEN excluded.shadow_denied_by_reason
               ELSE (SELECT jsonb_object_agg(k, v) FROM (
                 SELECT key AS k, sum(value::bigint) AS v FROM (
                   SELECT * FROM jsonb_each_text(campaign_minutes.shadow_denied_by_reason)
                   UNION ALL SELECT * FROM jsonb_each_text(excluded.shadow_denied_by_reason)) AS e GROUP BY key) AS g) END`,
          [JSON.stringify(part.map((m) => ({
            c: m.campaignId, m: new Date(m.minuteMs).toISOString(), d: m.day, dec: m.decisions, al: m.allowed, den: m.denied,
            se: m.spendEvents, st: m.settledMicros, du: m.duplicateEvents, un: m.unmatchedEvents, ex: m.expiredReservations,
            b: m.budgetMicros, th: m.throttle, bs: m.breakerState,
            ss: m.shadow?.strategy ?? null, sd: m.shadow?.decisions ?? null, sa: m.shadow?.allowed ?? null,
            sst: m.shadow?.settledMicros ?? null, sse: m.shadow?.estimatedMicros ?? null, sdr: m.shadow?.deniedByReason ?? null,
          })))],
        );
      }
      for (let i = 0; i < denials.length; i += per) {
        await tx.query(
          `INSERT INTO campaign_minute_denials (campaign_id, minute, reason, decisions)
           SELECT c, m, r, n FROM jsonb_to_recordset($1::jsonb) AS x(c text, m timestamptz, r text, n bigint)
           ON CONFLICT (campaign_id, minute, reason)
           DO UPDATE SET decisions = campaign_minute_denials.decisions + excluded.decisions`,
          [JSON.stringify(denials.slice(i, i + per))],
        );
      }
      for (let i = 0; i < breakers.length; i += per) {
        await tx.query(
          `INSERT INTO breaker_events (campaign_id, at, from_state, to_state, reason)
           SELECT c, a, f, t, r FROM jsonb_to_recordset($1::jsonb) AS x(c text, a timestamptz, f text, t text, r text)`,
          [JSON.stringify(breakers.slice(i, i + per).map((b) => ({ c: b.campaignId, a: new Date(b.atMs).toISOString(), f: b.from, t: b.to, r: b.reason })))],
        );
      }
    });
  }

  async history(campaignId: string, fromMs: number, toMs: number): Promise<{ minutes: MinuteRow[]; breakers: BreakerRow[] }> {
    const from = new Date(fromMs).toISOString();
    const to = new Date(toMs).toISOString();
    const rows = await this.sql.query<Record<string, unknown>>(
      `SELECT minute, day::text AS day, decisions, allowed, denied, spend_events, settled_micros, duplicate_events,
              unmatched_events, expired_reservations, budget_micros, throttle, breaker_state,
              shadow_strategy, shadow_decisions, shadow_allowed, shadow_settled_micros, shadow_estimated_micros, shadow_denied_by_reason
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
        ...(r.shadow_decisions === null || r.shadow_decisions === undefined ? {} : {
          shadow: {
            strategy: String(r.shadow_strategy),
            decisions: int(r.shadow_decisions, 'shadow_decisions'),
            allowed: int(r.shadow_allowed, 'shadow_allowed'),
            settledMicros: int(r.shadow_settled_micros, 'shadow_settled_micros'),
            estimatedMicros: int(r.shadow_estimated_micros ?? 0, 'shadow_estimated_micros'),
            deniedByReason: jsonCounts(r.shadow_denied_by_reason),
          },
        }),
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

  /**
   * The minutes of [bounds[0], bounds[last]) summed per bucket in the database: the report and the
   * history's hour and day steps read hundreds of rows instead of tens of thousands. Buckets without
   * a row are absent. Bounds come from the campaign's zone (src/admin/history.ts).
   */
  async rollupHistory(campaignId: string, boundsMs: readonly number[]): Promise<RollupBucket[]> {
    const params = [campaignId, `{${boundsMs.join(',')}}`, new Date(boundsMs[0]!).toISOString(), new Date(boundsMs[boundsMs.length - 1]!).toISOString()];
    const range = 'campaign_id = $1 AND minute >= $3::timestamptz AND minute < $4::timestamptz';
    const rows = await this.sql.query<Record<string, unknown>>(
      `SELECT ${bucketOf} AS b, sum(decisions) AS decisions, sum(allowed) AS allowed, sum(denied) AS denied,
              sum(spend_events) AS spend_events, sum(settled_micros) AS settled_micros,
              sum(duplicate_events) AS duplicate_events, sum(unmatched_events) AS unmatched_events,
              sum(expired_reservations) AS expired_reservations,
              (array_agg(budget_micros ORDER BY minute DESC))[1] AS budget_micros,
              (array_agg(throttle ORDER BY minute DESC))[1] AS throttle,
              (array_agg(breaker_state ORDER BY minute DESC))[1] AS breaker_state
       FROM campaign_minutes WHERE ${range} GROUP BY 1 ORDER BY 1`,
      params,
    );
    const denials = await this.sql.query<{ b: unknown; reason: string; n: unknown }>(
      `SELECT ${bucketOf} AS b, reason, sum(decisions) AS n FROM campaign_minute_denials WHERE ${range} GROUP BY 1, 2`,
      params,
    );
    const byBucket = new Map<number, Record<string, number>>();
    for (const d of denials) {
      const b = int(d.b, 'bucket');
      const m = byBucket.get(b) ?? {};
      m[d.reason] = int(d.n, 'denials');
      byBucket.set(b, m);
    }
    return rows.map((r) => {
      const index = int(r.b, 'bucket');
      return {
        index,
        decisions: int(r.decisions, 'decisions'),
        allowed: int(r.allowed, 'allowed'),
        denied: int(r.denied, 'denied'),
        deniedByReason: byBucket.get(index) ?? {},
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
  }

  /** The minutes of [fromMs, toMs) that carry shadow figures (the day report's shadow side), in time order. */
  async shadowHistory(campaignId: string, fromMs: number, toMs: number): Promise<ShadowMinute[]> {
    const rows = await this.sql.query<Record<string, unknown>>(
      `SELECT minute, shadow_strategy, shadow_decisions, shadow_allowed, shadow_settled_micros, shadow_estimated_micros, shadow_denied_by_reason
       FROM campaign_minutes WHERE campaign_id = $1 AND minute >= $2::timestamptz AND minute < $3::timestamptz
         AND shadow_decisions IS NOT NULL ORDER BY minute`,
      [campaignId, new Date(fromMs).toISOString(), new Date(toMs).toISOString()],
    );
    return rows.map((r) => ({
      minuteMs: ms(r.minute),
      shadow: {
        strategy: String(r.shadow_strategy),
        decisions: int(r.shadow_decisions, 'shadow_decisions'),
        allowed: int(r.shadow_allowed, 'shadow_allowed'),
        settledMicros: int(r.shadow_settled_micros, 'shadow_settled_micros'),
        estimatedMicros: int(r.shadow_estimated_micros ?? 0, 'shadow_estimated_micros'),
        deniedByReason: jsonCounts(r.shadow_denied_by_reason),
      },
    }));
  }

  async breakerEvents(campaignId: string, fromMs: number, toMs: number): Promise<BreakerRow[]> {
    const rows = await this.sql.query<{ at: unknown; from_state: string; to_state: string; reason: string }>(
      `SELECT at, from_state, to_state, reason FROM breaker_events
       WHERE campaign_id = $1 AND at >= $2::timestamptz AND at < $3::timestamptz ORDER BY at, id`,
      [campaignId, new Date(fromMs).toISOString(), new Date(toMs).toISOString()],
    );
    return rows.map((b) => ({ campaignId, atMs: ms(b.at), from: b.from_state, to: b.to_state, reason: b.reason }));
  }

  /** Every campaign's spend on its local day `day` by UTC quarter-hour: the fleet report's one query. */
  async daySpendByQuarter(day: string): Promise<QuarterSpend[]> {
    const rows = await this.sql.query<{ campaign_id: string; q: unknown; settled: unknown; budget: unknown }>(
      `SELECT campaign_id, floor(extract(epoch FROM minute) / 900)::bigint AS q, sum(settled_micros) AS settled,
              (array_agg(budget_micros ORDER BY minute DESC))[1] AS budget
       FROM campaign_minutes
       WHERE day = $1::date AND minute >= $2::timestamptz AND minute < $3::timestamptz GROUP BY 1, 2 ORDER BY 1, 2`,
      // Every zone's local day lies within UTC midnight -14 h .. next midnight +14 h: the range lets
      // the BRIN index on minute skip the other days.
      [day, new Date(Date.parse(day) - 14 * 3_600_000).toISOString(), new Date(Date.parse(day) + 38 * 3_600_000).toISOString()],
    );
    return rows.map((r) => ({
      campaignId: r.campaign_id,
      quarterMs: int(r.q, 'quarter') * 900_000,
      settledMicros: int(r.settled, 'settled_micros'),
      budgetMicros: int(r.budget, 'budget_micros'),
    }));
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
    // The change log only serves catch-up after a reconnect: it is kept a day, not the history's days.
    const changesCutoff = new Date(nowMs - limits.configChangesRetentionMs).toISOString();
    const work: [string, string][] = statements.map((text) => [text, cutoff]);
    work.push([`DELETE FROM config_changes WHERE seq IN
         (SELECT seq FROM config_changes WHERE at < $1::timestamptz LIMIT ${pruneRowsPerStatement})`, changesCutoff]);
    for (const [text, before] of work) {
      for (;;) {
        const deleted = await this.sql.query<{ n: unknown }>(`WITH d AS (${text} RETURNING 1) SELECT count(*) AS n FROM d`, [before]);
        if (int(deleted[0]?.n ?? 0, 'deleted') < pruneRowsPerStatement) break;
      }
    }
  }

  async saveProfiles(profiles: readonly StoredProfile[]): Promise<void> {
    if (profiles.length === 0) return;
    await this.sql.query(
      `INSERT INTO campaign_profiles (campaign_id, fitted_at, half_life_days, density, hours_used)
       SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::jsonb[], $5::int[])
       ON CONFLICT (campaign_id) DO UPDATE SET fitted_at = EXCLUDED.fitted_at, half_life_days = EXCLUDED.half_life_days,
         density = EXCLUDED.density, hours_used = EXCLUDED.hours_used`,
      [
        profiles.map((p) => p.campaignId),
        profiles.map((p) => new Date(p.fittedAtMs).toISOString()),
        profiles.map((p) => p.halfLifeDays),
        profiles.map((p) => JSON.stringify(p.density)),
        profiles.map((p) => p.hoursUsed),
      ],
    );
  }

  async loadProfiles(campaignIds?: readonly string[]): Promise<StoredProfile[]> {
    type Row = { campaign_id: string; fitted_at: unknown; half_life_days: unknown; density: unknown; hours_used: unknown };
    const columns = 'campaign_id, fitted_at, half_life_days, density::text AS density, hours_used';
    const toProfile = (r: Row): StoredProfile => ({
      campaignId: r.campaign_id,
      fittedAtMs: ms(r.fitted_at),
      halfLifeDays: Number(r.half_life_days),
      density: (JSON.parse(String(r.density)) as unknown[]).map((v) => (typeof v === 'number' ? v : null)),
      hoursUsed: int(r.hours_used, 'hours_used'),
    });
    if (campaignIds !== undefined) {
      return (await this.sql.query<Row>(`SELECT ${columns} FROM campaign_profiles WHERE campaign_id = ANY($1::text[])`, [[...campaignIds]])).map(toProfile);
    }
    // All of them in pages by ID: a profile is about 2 KB of text, and one result of a million of
    // them would be held whole in the embedded database's WebAssembly memory, which never shrinks.
    return this.inPages<Row, StoredProfile>(
      `SELECT ${columns} FROM campaign_profiles WHERE campaign_id > $1 ORDER BY campaign_id LIMIT $2`,
      limits.profileReadPageRows, (r) => r.campaign_id, toProfile,
    );
  }

  async ping(): Promise<void> {
    await this.sql.query('SELECT 1');
  }

  /** The admin thread owns the Sql (shared with the embedded counters) and closes it. */
  async close(): Promise<void> {}
}
