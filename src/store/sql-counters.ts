import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, StoredReservation } from '../../shards/ports.js';
import { groupBatch, outcomeOf } from './batch.js';
import { int, type Sql } from './sql.js';

/**
 * Real-time counters in SQL tables (migrations/0002_counters.sql): the embedded store's counters,
 * in the embedded database the admin thread owns (or in PostgreSQL when PACER_DATABASE_URL is set
 * and PACER_REDIS_URL is not). A batch is one statement, so one transaction. As in Redis, an event row records the
 * batch that applied it, so a batch retried under its ID gets the same answer and is counted once.
 */
export class SqlCounterStore implements CounterStore {
  readonly kind = 'sql';

  constructor(private readonly sql: Sql) {}

  async apply(batch: FlushBatch): Promise<FlushOutcome> {
    const grouped = groupBatch(batch);
    const events: { i: number; c: string; e: string; a: number; d: string }[] = [];
    const deletes: { c: string; q: string }[] = [];
    const upserts: { c: string; q: string; a: number; x: number }[] = [];
    grouped.campaigns.forEach((c) => {
      for (const e of c.events) events.push({ i: events.length, c: c.campaignId, e: e.eventId, a: e.amountMicros, d: e.day });
      for (const q of c.deletes) deletes.push({ c: c.campaignId, q });
      for (const r of c.upserts) upserts.push({ c: c.campaignId, q: r.requestId, a: r.amountMicros, x: r.expiresAtMs });
    });
    // One statement, so one implicit transaction and one round trip (PGlite pays per statement).
    // Data-modifying CTEs all run to completion against the snapshot taken at its start: `ins`
    // returns the events inserted now; `again` finds those a previous attempt of this same batch
    // inserted (committed before this statement), which count as applied without adding again.
    // Reservation deletes and upserts never name the same row (groupBatch folds them).
    const rows = await this.sql.query<{ i: unknown }>(
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(i integer, c text, e text, a bigint, d date)
       ), ins AS (
         INSERT INTO counter_events (campaign_id, event_id, batch_id, seen_at)
         SELECT c, e, $2, now() FROM input
         ON CONFLICT (campaign_id, event_id) DO NOTHING
         RETURNING campaign_id, event_id
       ), hit AS (
         SELECT input.i, input.c, input.d, input.a
         FROM input JOIN ins ON ins.campaign_id = input.c AND ins.event_id = input.e
       ), again AS (
         SELECT input.i FROM input
         JOIN counter_events ce ON ce.campaign_id = input.c AND ce.event_id = input.e
         WHERE ce.batch_id = $2
       ), days AS (
         INSERT INTO counter_days (campaign_id, day, settled_micros, updated_at)
         SELECT c, d, sum(a)::bigint, now() FROM hit GROUP BY c, d
         ON CONFLICT (campaign_id, day)
         DO UPDATE SET settled_micros = counter_days.settled_micros + excluded.settled_micros,
                       updated_at = excluded.updated_at
         RETURNING 1
       ), del AS (
         DELETE FROM counter_reservations r
         USING jsonb_to_recordset($3::jsonb) AS x(c text, q text)
         WHERE r.campaign_id = x.c AND r.request_id = x.q
         RETURNING 1
       ), ups AS (
         INSERT INTO counter_reservations (campaign_id, request_id, amount_micros, expires_at_ms)
         SELECT c, q, a, x FROM jsonb_to_recordset($4::jsonb) AS r(c text, q text, a bigint, x bigint)
         ON CONFLICT (campaign_id, request_id)
         DO UPDATE SET amount_micros = excluded.amount_micros, expires_at_ms = excluded.expires_at_ms
         RETURNING 1
       )
       SELECT i FROM hit UNION ALL SELECT i FROM again`,
      [JSON.stringify(events), batch.batchId, JSON.stringify(deletes), JSON.stringify(upserts)],
    );
    const applied = new Set<number>();
    for (const r of rows) applied.add(int(r.i, 'event index'));
    let k = 0;
    const flags = grouped.campaigns.map((c) => c.events.map(() => applied.has(k++)));
    return outcomeOf(batch, grouped, flags);
  }

  async load(campaignId: string, day: string, flightStartDay: string | null): Promise<CampaignSnapshot> {
    const now = Date.now();
    const [today] = await this.sql.query<{ s: unknown }>(
      'SELECT settled_micros AS s FROM counter_days WHERE campaign_id = $1 AND day = $2::date',
      [campaignId, day],
    );
    let lifetime = 0;
    if (flightStartDay !== null) {
      const [row] = await this.sql.query<{ s: unknown }>(
        `SELECT coalesce(sum(settled_micros), 0)::bigint AS s FROM counter_days
         WHERE campaign_id = $1 AND day >= $2::date AND day < $3::date`,
        [campaignId, flightStartDay, day],
      );
      lifetime = int(row?.s ?? 0, 'lifetime settled');
    }
    const rows = await this.sql.query<{ q: string; a: unknown; x: unknown }>(
      `SELECT request_id AS q, amount_micros AS a, expires_at_ms AS x FROM counter_reservations
       WHERE campaign_id = $1 AND expires_at_ms > $2`,
      [campaignId, now],
    );
    const reservations: StoredReservation[] = rows.map((r) => ({
      requestId: r.q,
      amountMicros: int(r.a, 'reservation amount'),
      expiresAtMs: int(r.x, 'reservation expiry'),
    }));
    return { settledMicros: today === undefined ? 0 : int(today.s, 'settled'), lifetimeSettledMicros: lifetime, reservations };
  }

  /** Deletes event IDs past the dedupe window and reservations long expired (admin's sweep). */
  async prune(dedupeSeconds: number, nowMs: number): Promise<void> {
    await this.sql.query(`DELETE FROM counter_events WHERE seen_at < now() - make_interval(secs => $1)`, [dedupeSeconds]);
    await this.sql.query('DELETE FROM counter_reservations WHERE expires_at_ms < $1', [nowMs - 3_600_000]);
  }

  async close(): Promise<void> {}
}
