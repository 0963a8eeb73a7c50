import type { CampaignSnapshot, CounterStore, FlushBatch, FlushOutcome, StoredReservation } from '../../shards/ports.js';
import { groupBatch, outcomeOf, storedNumber } from './batch.js';
import { int, type Sql } from './sql.js';

/**
 * Real-time counters in SQL tables (migrations/0002_counters.sql): the embedded store's counters,
 * in the embedded database the admin thread owns (or in PostgreSQL when PACER_DATABASE_URL is set
 * and PACER_REDIS_URL is not). A batch is one statement, so one transaction. As in Redis, an event row records the
 * batch that applied it, so a batch retried under its ID gets the same answer and is counted once.
 */
export class SqlCounterStore implements CounterStore {
  readonly kind = 'sql';
  /** The last batch of each shard (batch ID prefix) at the database: the next one waits for it. */
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(private readonly sql: Sql) {}

  /**
   * Applies a shard's batches one after another, in the order they arrive. On a PostgreSQL pool
   * two statements of one shard would otherwise run at once on two connections, and a slow batch
   * and its retry (same batch ID) could race: the retry's snapshot does not see the first attempt's
   * rows yet, so it would answer its events "duplicate" and memory would be corrected below the
   * true total. In order, the retry sees the first attempt committed and answers "applied".
   */
  apply(batch: FlushBatch): Promise<FlushOutcome> {
    const shard = batch.batchId.slice(0, batch.batchId.lastIndexOf(':'));
    const previous = this.tails.get(shard) ?? Promise.resolve();
    const run = previous.then(
      () => this.applyNow(batch),
      () => this.applyNow(batch),
    );
    const tail = run.catch(() => undefined);
    this.tails.set(shard, tail);
    void tail.then(() => {
      if (this.tails.get(shard) === tail) this.tails.delete(shard);
    });
    return run;
  }

  private async applyNow(batch: FlushBatch): Promise<FlushOutcome> {
    const grouped = groupBatch(batch);
    const events: { i: number; c: string; e: string; a: number; d: string; q: string }[] = [];
    const deletes: { c: string; q: string }[] = [];
    const upserts: { c: string; q: string; a: number; x: number }[] = [];
    grouped.campaigns.forEach((c) => {
      for (const e of c.events) events.push({ i: events.length, c: c.campaignId, e: e.eventId, a: e.amountMicros, d: e.day, q: e.requestId });
      for (const q of c.deletes) deletes.push({ c: c.campaignId, q });
      for (const r of c.upserts) upserts.push({ c: c.campaignId, q: r.requestId, a: r.amountMicros, x: r.expiresAtMs });
    });
    // One statement, so one implicit transaction and one round trip (PGlite pays per statement).
    // Data-modifying CTEs all run to completion against the snapshot taken at its start: `ins`
    // returns the events inserted now; `again` finds those a previous attempt of this same batch
    // inserted (committed before this statement), which count as applied without adding again.
    // Reservation deletes and upserts never name the same row (groupBatch folds them); an event
    // deletes the reservation it settles only when it is inserted now (`hit`): a duplicate changes
    // nothing, and a retry's `again` events deleted theirs in the first attempt.
    const rows = await this.sql.query<{ i: unknown }>(
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(i integer, c text, e text, a bigint, d date, q text)
       ), ins AS (
         INSERT INTO counter_events (campaign_id, event_id, batch_id, seen_at)
         SELECT c, e, $2, now() FROM input
         ON CONFLICT (campaign_id, event_id) DO NOTHING
         RETURNING campaign_id, event_id
       ), hit AS (
         SELECT input.i, input.c, input.d, input.a, input.q
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
         USING (SELECT x.c, x.q FROM jsonb_to_recordset($3::jsonb) AS x(c text, q text)
                UNION SELECT hit.c, hit.q FROM hit WHERE hit.q <> '') AS x
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
        `SELECT coalesce(sum(settled_micros), 0)::text AS s FROM counter_days
         WHERE campaign_id = $1 AND day >= $2::date AND day < $3::date`,
        [campaignId, flightStartDay, day],
      );
      lifetime = storedNumber(row?.s ?? 0);
    }
    const rows = await this.sql.query<{ q: string; a: unknown; x: unknown }>(
      `SELECT request_id AS q, amount_micros AS a, expires_at_ms AS x FROM counter_reservations
       WHERE campaign_id = $1 AND expires_at_ms > $2`,
      [campaignId, now],
    );
    const reservations: StoredReservation[] = rows.map((r) => ({
      requestId: r.q,
      amountMicros: storedNumber(r.a),
      expiresAtMs: storedNumber(r.x),
    }));
    // Read without judging: the shard flags a campaign whose stored counters are out of range.
    return { settledMicros: today === undefined ? 0 : storedNumber(today.s), lifetimeSettledMicros: lifetime, reservations };
  }

  /** Deletes event IDs past the dedupe window and reservations long expired (admin's sweep). */
  async prune(dedupeSeconds: number, nowMs: number): Promise<void> {
    await this.sql.query(`DELETE FROM counter_events WHERE seen_at < now() - make_interval(secs => $1)`, [dedupeSeconds]);
    await this.sql.query('DELETE FROM counter_reservations WHERE expires_at_ms < $1', [nowMs - 3_600_000]);
  }

  async close(): Promise<void> {}
}
