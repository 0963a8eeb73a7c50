import t from 'tap';
import { limits } from '../../shards/limits.js';
import type { CampaignSummary } from '../../shards/shard.js';
import { HistoryWriter } from '../../src/admin/history.js';
import type { ConfigStore, MinuteRow } from '../../src/admin/registry.js';
import type { ShardLinks } from '../../src/admin/shards.js';

/**
 * The history writer's bound on waiting rows (historyBufferRowsMax) protects memory while the
 * database is down; it must never drop the rows of a tick that is written at once, whatever the
 * number of active campaigns (more than the bound at a million campaigns with traffic).
 */
function summary(id: string): CampaignSummary {
  return {
    campaignId: id, day: '2026-03-10', decisions: 3, allowed: 2, deniedByReason: { PACED: 1 }, spendEvents: 1,
    settledMicros: 500, duplicateEvents: 0, unmatchedEvents: 0, expiredReservations: 0, budgetMicros: 1_000_000,
    throttle: 1, breakerState: 'CLOSED',
  };
}

function fixture(n: number, failing: { on: boolean }) {
  const written: MinuteRow[][] = [];
  const store = {
    async writeHistory(rows: MinuteRow[]) {
      if (failing.on) throw new Error('database down');
      written.push(rows);
    },
    async ping() {
      if (failing.on) throw new Error('database down');
    },
  } as unknown as ConfigStore;
  const summaries = Array.from({ length: n }, (_, i) => summary(`c${i}`));
  const links = { count: 1, request: async () => summaries } as unknown as ShardLinks;
  return { writer: new HistoryWriter(store, links, () => {}), written };
}

t.test('a tick with more active campaigns than the waiting bound is written whole', async (t) => {
  const n = limits.historyBufferRowsMax + 2_500;
  const { writer, written } = fixture(n, { on: false });
  await writer.tick(Date.parse('2026-03-10T12:00:30Z'));
  t.equal(written.length, 1, 'one write');
  t.equal(written[0]!.length, n, `all ${n} rows written`);
  t.equal(new Set(written[0]!.map((r) => r.campaignId)).size, n, 'one row per campaign');
  t.equal(writer.dropped, 0, 'nothing dropped');
  t.equal(writer.pendingRows, 0, 'nothing left waiting');
});

t.test('while the database is down at most the bound waits, the oldest dropped and counted', async (t) => {
  const n = limits.historyBufferRowsMax + 2_500;
  const failing = { on: true };
  const { writer, written } = fixture(n, failing);
  await writer.tick(Date.parse('2026-03-10T12:00:30Z'));
  t.equal(writer.pendingRows, limits.historyBufferRowsMax, 'the bound holds after a failed write');
  t.equal(writer.dropped, 2_500, 'the rows past it are counted');
  failing.on = false;
  await writer.tick(Date.parse('2026-03-10T12:01:30Z'));
  const rows = written.flat();
  // The next minute's rows (all n) and what waited from the first minute (the bound's worth).
  t.equal(rows.filter((r) => r.minuteMs === Date.parse('2026-03-10T12:01:00Z')).length, n, 'the new minute is written whole');
  t.equal(rows.filter((r) => r.minuteMs === Date.parse('2026-03-10T12:00:00Z')).length, limits.historyBufferRowsMax, 'the kept rows of the outage are written');
  t.equal(writer.pendingRows, 0, 'nothing left waiting');
});
