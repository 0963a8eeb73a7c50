import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { type CampaignRecord, parseCampaign } from '../../src/model/campaign.js';
import type { ConfigStore, MinuteRow } from '../../src/store/config-store.js';
import { MemoryConfigStore } from '../../src/store/memory.js';
import { migrate } from '../../src/store/migrate.js';
import { EmbeddedSql, PostgresSql } from '../../src/store/sql.js';
import { SqlConfigStore } from '../../src/store/sql-config.js';
import { limits } from '../../shards/limits.js';
import { createDatabase } from '../helpers/services.js';

/** Configuration, audit trail and history: the same answers from memory, PGlite and PostgreSQL. */
function record(body: Record<string, unknown>, version: number, createdAt: string, updatedAt: string): CampaignRecord {
  return { config: parseCampaign(body, version), createdAt, updatedAt, archivedAt: null };
}

function minute(campaignId: string, minuteMs: number, part: Partial<MinuteRow> = {}): MinuteRow {
  return {
    campaignId, minuteMs, day: '2025-03-10', decisions: 0, allowed: 0, denied: 0, deniedByReason: {}, spendEvents: 0,
    settledMicros: 0, duplicateEvents: 0, unmatchedEvents: 0, expiredReservations: 0, budgetMicros: 1_000, throttle: 1,
    breakerState: 'CLOSED', ...part,
  };
}

function contract(name: string, open: () => Promise<{ store: ConfigStore; done: () => Promise<void> }>): void {
  t.test(`${name}: configuration, audit trail and history`, async (t) => {
    const { store, done } = await open();
    t.teardown(done);
    const v1 = record({ id: 'cfg-1', dailyBudgetMicros: 5_000_000 }, 1, '2025-03-10T10:00:00.000Z', '2025-03-10T10:00:00.000Z');
    await store.saveCampaign(v1, null, 'alice');
    const v2 = record({ id: 'cfg-1', dailyBudgetMicros: 5_000_000, name: 'renamed' }, 2, v1.createdAt, '2025-03-10T11:00:00.000Z');
    await store.saveCampaign(v2, v1, 'bob');
    const v3 = record({ id: 'cfg-1', dailyBudgetMicros: 7_000_000, name: 'renamed', lifetimeBudgetMicros: 90_000_000 }, 3, v1.createdAt, '2025-03-10T12:00:00.000Z');
    await store.saveCampaign(v3, v2, 'carol');

    t.equal(await store.saveCampaign(v3, v2, 'carol'), false, 'the same write twice is refused the second time');
    const loaded = await store.loadCampaigns();
    t.equal(loaded.length, 1);
    t.same(loaded[0], v3, 'the latest version comes back whole, money as integers, times as ISO');
    const changes = await store.budgetChanges('cfg-1');
    t.same(changes.map(({ id: _id, ...c }) => c), [
      { at: '2025-03-10T10:00:00.000Z', budget: 'daily', oldMicros: null, newMicros: 5_000_000, actor: 'alice', reason: null, version: 1 },
      { at: '2025-03-10T12:00:00.000Z', budget: 'daily', oldMicros: 5_000_000, newMicros: 7_000_000, actor: 'carol', reason: null, version: 3 },
      { at: '2025-03-10T12:00:00.000Z', budget: 'lifetime', oldMicros: null, newMicros: 90_000_000, actor: 'carol', reason: null, version: 3 },
    ], 'a rename is not a budget change; each budget change names its actor');
    t.ok(changes[0]!.id < changes[1]!.id && changes[1]!.id < changes[2]!.id, 'audit ids increase');
    t.same((await store.budgetChanges('cfg-1', changes[0]!.id, 1)).map((c) => c.id), [changes[1]!.id], 'the trail pages after an id');

    const stale = record({ id: 'cfg-1', dailyBudgetMicros: 1_000 }, 3, v1.createdAt, '2025-03-10T13:00:00.000Z');
    t.equal(await store.saveCampaign(stale, v2, 'mallory'), false, 'a write expecting version 2 fails once version 3 is stored');
    t.equal(await store.saveCampaign(record({ id: 'cfg-1', dailyBudgetMicros: 1_000 }, 1, v1.createdAt, v1.createdAt), null, 'mallory'), false,
      'a create fails when the campaign exists');
    const v4 = record({ id: 'cfg-1', dailyBudgetMicros: 8_000_000, name: 'renamed', lifetimeBudgetMicros: 90_000_000 }, 4, v1.createdAt, '2025-03-10T13:00:00.000Z');
    t.equal(await store.saveCampaign(v4, v3, 'dave', 'holiday push'), true, 'a write expecting the stored version succeeds');
    t.same((await store.loadCampaigns())[0], v4, 'the failed writes changed nothing');
    const last = (await store.budgetChanges('cfg-1')).at(-1)!;
    t.match(last, { oldMicros: 7_000_000, newMicros: 8_000_000, actor: 'dave', reason: 'holiday push' }, 'the reason is audited');
    t.equal((await store.budgetChanges('cfg-1')).length, 4, 'refused writes left no audit row');
    const bulk = await store.saveCampaigns([
      { record: record({ id: 'cfg-2', dailyBudgetMicros: 1 }, 1, v1.createdAt, v1.createdAt), previous: null },
      { record: record({ id: 'cfg-1', dailyBudgetMicros: 1 }, 2, v1.createdAt, v1.createdAt), previous: v1 },
      { record: record({ id: 'cfg-3', dailyBudgetMicros: 1 }, 1, v1.createdAt, v1.createdAt), previous: null },
    ], 'erin');
    t.same(bulk, [true, false, true], 'a bulk save answers per item; the stale item fails alone');
    t.same((await store.loadCampaigns()).map((r) => `${r.config.id}@${r.config.version}`), ['cfg-1@4', 'cfg-2@1', 'cfg-3@1']);
    const archived = { ...v4, config: { ...v4.config, version: 5, archived: true }, archivedAt: '2025-03-10T14:00:00.000Z' };
    t.equal(await store.saveCampaign(archived, v4, 'erin'), true);
    t.same((await store.loadCampaigns())[0], archived, 'the archive time survives a reload');

    const m0 = Date.UTC(2025, 2, 10, 12, 0);
    await store.writeHistory(
      [minute('cfg-1', m0, { decisions: 10, allowed: 7, denied: 3, deniedByReason: { PACED: 2, BREAKER_OPEN: 1 }, spendEvents: 5, settledMicros: 500 })],
      [{ campaignId: 'cfg-1', atMs: m0 + 1_000, from: 'CLOSED', to: 'OPEN', reason: 'FRACTION' }],
    );
    await store.writeHistory([minute('cfg-1', m0, { decisions: 4, allowed: 4, spendEvents: 1, settledMicros: 20, deniedByReason: {}, throttle: 0.5 }),
      minute('cfg-1', m0 + 60_000, { decisions: 1, denied: 1, deniedByReason: { PACED: 1 } })], []);
    const h = await store.history('cfg-1', m0, m0 + 120_000);
    t.equal(h.minutes.length, 2);
    t.match(h.minutes[0], { minuteMs: m0, decisions: 14, allowed: 11, denied: 3, spendEvents: 6, settledMicros: 520, throttle: 0.5 }, 'a minute written twice sums');
    t.same(h.minutes[0]!.deniedByReason, { PACED: 2, BREAKER_OPEN: 1 });
    t.same(h.minutes[1]!.deniedByReason, { PACED: 1 });
    t.same(h.breakers, [{ campaignId: 'cfg-1', atMs: m0 + 1_000, from: 'CLOSED', to: 'OPEN', reason: 'FRACTION' }]);
    t.equal((await store.history('cfg-1', m0 + 60_000, m0 + 120_000)).minutes.length, 1, 'the range is half-open');

    await store.prune(1, m0 + 86_400_000 + 30_000);
    const after = await store.history('cfg-1', m0 - 3_600_000, m0 + 3_600_000);
    t.same(after.minutes.map((m) => m.minuteMs), [m0 + 60_000], 'retention deletes what is older than its days');
    t.same(after.breakers, []);
  });
}

contract('memory', async () => ({ store: new MemoryConfigStore(), done: async () => {} }));

contract('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-cfg-'));
  const sql = await EmbeddedSql.open(dir);
  await migrate(sql);
  return { store: new SqlConfigStore(sql), done: async () => { await sql.close(); rmSync(dir, { recursive: true, force: true }); } };
});

contract('postgres', async () => {
  const db = await createDatabase('cfg');
  const sql = new PostgresSql(db.url);
  await migrate(sql);
  return { store: new SqlConfigStore(sql), done: async () => { await sql.close(); await db.drop(); } };
});

t.test('postgres: the whole catalogue reads in pages, every campaign once, in ID order, past one page', async (t) => {
  // One query for 1,000,000 campaigns ran past the statement deadline and startup retried it for ever.
  const db = await createDatabase('cfg_pages');
  const sql = new PostgresSql(db.url);
  t.teardown(async () => {
    await sql.close();
    await db.drop();
  });
  await migrate(sql);
  const n = limits.catalogueReadPageRows * 2 + 17;
  await sql.query(
    `INSERT INTO campaigns (id, config, version, created_at, updated_at)
     SELECT 'p-' || lpad(i::text, 7, '0'), jsonb_build_object('id', 'p-' || lpad(i::text, 7, '0'), 'version', 1 + i % 3), 1 + i % 3, now(), now()
     FROM generate_series(1, ${n}) AS i`,
  );
  const store = new SqlConfigStore(sql);
  const records = await store.loadCampaigns();
  t.equal(records.length, n, `${n} campaigns, ${limits.catalogueReadPageRows} a page`);
  const ids = records.map((r) => r.config.id);
  t.equal(new Set(ids).size, n, 'none twice');
  t.ok(ids.every((id, i) => i === 0 || ids[i - 1]! < id), 'in ID order');
  const versions = await store.campaignVersions();
  t.equal(versions.length, n, 'campaignVersions pages too');
  t.same(versions.slice(0, 3).map((v) => v.version), [2, 3, 1]);
});

for (const [name, open] of [
  ['embedded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pacer-cfg-'));
    const sql = await EmbeddedSql.open(dir);
    return { sql, done: async () => { await sql.close(); rmSync(dir, { recursive: true, force: true }); } };
  }],
  ['postgres', async () => {
    const db = await createDatabase('cfg_hist');
    const sql = new PostgresSql(db.url);
    return { sql, done: async () => { await sql.close(); await db.drop(); } };
  }],
] as const) {
  t.test(`${name}: a history write larger than one statement stores every row, in one transaction`, async (t) => {
    // A tick of a million active campaigns in one statement grew PGlite's WebAssembly memory to 2 GB.
    const { sql, done } = await open();
    t.teardown(done);
    await migrate(sql);
    const store = new SqlConfigStore(sql);
    const m0 = Date.UTC(2025, 2, 10, 12, 0);
    const n = limits.historyRowsPerStatement * 2 + 3;
    const rows = Array.from({ length: n }, (_, i) => minute(`h-${i}`, m0, { decisions: 2, denied: 1, deniedByReason: { PACED: 1 }, settledMicros: i }));
    const breakers = Array.from({ length: limits.historyRowsPerStatement + 1 }, (_, i) => ({ campaignId: `h-${i}`, atMs: m0 + i, from: 'CLOSED' as const, to: 'OPEN' as const, reason: 'FRACTION' }));
    await store.writeHistory(rows, breakers);
    const [count] = await sql.query<{ n: string; s: string }>('SELECT count(*)::text AS n, sum(settled_micros)::text AS s FROM campaign_minutes');
    t.same(count, { n: String(n), s: String((n * (n - 1)) / 2) }, `${n} minute rows, ${limits.historyRowsPerStatement} a statement`);
    const [denials] = await sql.query<{ n: string }>('SELECT count(*)::text AS n FROM campaign_minute_denials');
    t.equal(denials!.n, String(n), 'and every denial row');
    const [events] = await sql.query<{ n: string }>('SELECT count(*)::text AS n FROM breaker_events');
    t.equal(events!.n, String(breakers.length), 'and every breaker event');
    const last = await store.history(`h-${n - 1}`, m0, m0 + 60_000);
    t.same(last.minutes[0]!.deniedByReason, { PACED: 1 }, 'the last row of the last statement reads back whole');

    // One transaction: a write that fails in its last statement leaves none of its rows.
    const bad = [...rows.map((r) => ({ ...r, minuteMs: m0 + 60_000 })), { ...minute('h-bad', m0 + 60_000), day: 'not a day' }];
    await t.rejects(store.writeHistory(bad, []));
    const [after] = await sql.query<{ n: string }>('SELECT count(*)::text AS n FROM campaign_minutes');
    t.equal(after!.n, String(n), 'a failed write stores none of its statements');
  });
}

t.test('embedded: the stored profiles read at startup come in pages, every one once, past one page', async (t) => {
  // One result of a million profiles (about 2 KB each) would be held whole in PGlite's memory.
  const dir = mkdtempSync(join(tmpdir(), 'pacer-cfg-'));
  const sql = await EmbeddedSql.open(dir);
  t.teardown(async () => {
    await sql.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await migrate(sql);
  const store = new SqlConfigStore(sql);
  const n = limits.profileReadPageRows * 2 + 5;
  const density = Array.from({ length: 168 }, (_, h) => (h % 24 === 3 ? null : 1 / 168));
  const saved = Array.from({ length: n }, (_, i) => ({ campaignId: `p-${i}`, fittedAtMs: Date.UTC(2025, 2, 10) + i, halfLifeDays: 7, density, hoursUsed: i % 500 }));
  for (let i = 0; i < n; i += 500) await store.saveProfiles(saved.slice(i, i + 500));
  const loaded = await store.loadProfiles();
  t.equal(loaded.length, n, `${n} profiles, ${limits.profileReadPageRows} a page`);
  t.equal(new Set(loaded.map((p) => p.campaignId)).size, n, 'none twice');
  const byId = new Map(loaded.map((p) => [p.campaignId, p]));
  t.same(byId.get(`p-${n - 1}`), saved[n - 1], 'the last one whole, nulls kept');
  t.same(byId.get('p-0'), saved[0]);
  t.same((await store.loadProfiles(['p-7', 'none'])).map((p) => p.campaignId), ['p-7'], 'and by ID as before');
});
