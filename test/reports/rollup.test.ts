import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bucketEdges, HistoryReader } from '../../src/admin/history.js';
import { type ConfigStore, MemoryConfigStore, type MinuteRow } from '../../src/admin/registry.js';
import { migrate } from '../../src/store/migrate.js';
import { EmbeddedSql, PostgresSql } from '../../src/store/sql.js';
import { SqlConfigStore } from '../../src/store/sql-config.js';
import { createDatabase } from '../helpers/services.js';

/**
 * The history rollup gives the same buckets from the embedded database and PostgreSQL (summed in
 * SQL) as from memory (summed in the admin thread), for hours of a 25-hour day in a zone and days
 * of a half-hour-offset zone.
 */
function rows(): MinuteRow[] {
  const out: MinuteRow[] = [];
  const start = Date.parse('2025-11-02T04:00:00Z');
  for (let i = 0; i < 1500; i += 7) {
    out.push({
      campaignId: 'r-1', minuteMs: start + i * 60_000, day: '2025-11-02', decisions: i % 5, allowed: i % 3, denied: (i % 5) - (i % 3) > 0 ? (i % 5) - (i % 3) : 0,
      deniedByReason: i % 2 === 0 ? { PACED: 1 } : { PACED: 1, BREAKER_OPEN: 2 }, spendEvents: i % 4, settledMicros: 1_000 + i,
      duplicateEvents: i % 2, unmatchedEvents: 0, expiredReservations: i % 3, budgetMicros: 5_000_000 + i, throttle: (i % 10) / 10, breakerState: i % 11 === 0 ? 'OPEN' : 'CLOSED',
    });
  }
  return out;
}

const cases: [string, string, number, number, 'minute' | 'hour' | 'day'][] = [
  ['hours of the fall-back day in New York', 'America/New_York', Date.parse('2025-11-02T04:00:00Z'), Date.parse('2025-11-03T05:00:00Z'), 'hour'],
  ['days in Kolkata', 'Asia/Kolkata', Date.parse('2025-11-01T00:00:00Z'), Date.parse('2025-11-04T00:00:00Z'), 'day'],
  ['minutes across the repeated hour', 'America/New_York', Date.parse('2025-11-02T05:30:00Z'), Date.parse('2025-11-02T06:30:00Z'), 'minute'],
];

async function answers(store: ConfigStore): Promise<unknown[]> {
  await store.writeHistory(rows(), [{ campaignId: 'r-1', atMs: Date.parse('2025-11-02T12:00:00Z'), from: 'CLOSED', to: 'OPEN', reason: 'TRIP_FRACTION' }]);
  const reader = new HistoryReader(store);
  const out: unknown[] = [];
  for (const [, zone, from, to, step] of cases) {
    const edges = bucketEdges(zone, from, to, step);
    out.push({ edges: edges.length, buckets: await reader.rollup('r-1', edges), breakers: await reader.breakers('r-1', edges[0]!, edges.at(-1)!) });
  }
  out.push(await reader.daySpend('2025-11-02', ['r-1']));
  return out;
}

t.test('the embedded database, PostgreSQL and memory roll history up the same', async (t) => {
  const memory = await answers(new MemoryConfigStore());
  t.equal((memory[0] as { edges: number }).edges, 26, '25 hour buckets');
  const dir = mkdtempSync(join(tmpdir(), 'pacer-rollup-'));
  const embedded = await EmbeddedSql.open(dir);
  t.teardown(async () => {
    await embedded.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await migrate(embedded);
  t.same(await answers(new SqlConfigStore(embedded)), memory, 'embedded');
  const db = await createDatabase('rollup');
  const pg = new PostgresSql(db.url);
  t.teardown(async () => {
    await pg.close();
    await db.drop();
  });
  await migrate(pg);
  t.same(await answers(new SqlConfigStore(pg)), memory, 'postgres');
});
