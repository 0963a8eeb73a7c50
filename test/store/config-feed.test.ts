import t from 'tap';
import { type CampaignRecord, parseCampaign } from '../../src/model/campaign.js';
import { parseChange } from '../../src/store/config-feed.js';
import { migrate } from '../../src/store/migrate.js';
import { SqlConfigStore } from '../../src/store/sql-config.js';
import { PostgresSql } from '../../src/store/sql.js';
import { createDatabase } from '../helpers/services.js';

/**
 * The configuration feed reads NOTIFY payloads that the database's trigger builds; anything else on
 * the channel (a hand-sent NOTIFY, a truncated payload) is ignored, never thrown.
 */
t.test('a payload from pacer_config_notify() is read as a change', async (t) => {
  t.same(parseChange('{"seq":12,"kind":"config","campaignId":"c1","version":3,"origin":"","atMs":1764633600000}'), {
    seq: 12, kind: 'config', campaignId: 'c1', version: 3, origin: '', atMs: 1764633600000,
  });
  t.same(parseChange('{"seq":13,"kind":"breakerReset","campaignId":"c1","version":null,"origin":"abc-123","atMs":1}'), {
    seq: 13, kind: 'breakerReset', campaignId: 'c1', version: null, origin: 'abc-123', atMs: 1,
  });
});

t.test('anything else on the channel is ignored', async (t) => {
  for (const payload of [
    undefined, '', 'hello', 'null', '[]', '{}', '{"seq":"1","kind":"config","campaignId":"c","version":1,"origin":"","atMs":1}',
    '{"seq":1,"kind":"drop","campaignId":"c","version":1,"origin":"","atMs":1}',
    '{"seq":1,"kind":"config","campaignId":5,"version":1,"origin":"","atMs":1}',
    '{"seq":1,"kind":"config","campaignId":"c","version":1.5,"origin":"","atMs":1}',
    '{"seq":1,"kind":"config","campaignId":"c","version":1,"origin":"","atMs":"x"}',
    `{"seq":1,"kind":"config","campaignId":"${'x'.repeat(9000)}","version":1,"origin":"","atMs":1}`,
    '{"seq":1,"kind":"config"', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
  ]) {
    t.equal(parseChange(payload), null, String(payload).slice(0, 60));
  }
});

t.test('config_changes records each stored write and breaker reset, and nothing for a write that lost', async (t) => {
  const db = await createDatabase('config_changes');
  t.teardown(() => db.drop());
  const sql = new PostgresSql(db.url);
  t.teardown(() => sql.close());
  await migrate(sql);
  const store = new SqlConfigStore(sql);
  const record = (version: number, budget: number): CampaignRecord => ({
    config: parseCampaign({ id: 'cc-1', dailyBudgetMicros: budget }, version),
    createdAt: '2026-01-01T00:00:00.000Z', updatedAt: new Date().toISOString(), archivedAt: null,
  });
  const v1 = record(1, 1_000);
  const v2 = record(2, 2_000);
  t.equal(await store.saveCampaign(v1, null, 'test'), true);
  t.equal(await store.saveCampaign(v2, v1, 'test'), true);
  t.equal(await store.saveCampaign(record(2, 3_000), v1, 'test'), false, 'a compare-and-set that lost');
  await store.noteBreakerReset('cc-1', 'instance-a');
  const { changes, nowMs } = await store.changesSince(Date.now() - 60_000, 0, 100);
  t.same(changes.map((c) => [c.kind, c.campaignId, c.version, c.origin]), [
    ['config', 'cc-1', 1, ''], ['config', 'cc-1', 2, ''], ['breakerReset', 'cc-1', null, 'instance-a'],
  ], 'two writes and a reset; the lost write left no row');
  t.ok(changes.every((c, i) => i === 0 || c.seq > changes[i - 1]!.seq), 'in seq order');
  t.ok(Math.abs(nowMs - Date.now()) < 60_000, "the database's clock comes back with them");
  const page = await store.changesSince(Date.now() - 60_000, changes[0]!.seq, 1);
  t.same(page.changes.map((c) => c.version), [2], 'paged by seq');
  t.same((await store.loadCampaignsById(['cc-1', 'nope'])).map((r) => r.config.dailyBudgetMicros), [2_000]);
  await store.prune(90, Date.now() + 2 * 86_400_000);
  t.same((await store.changesSince(0, 0, 100)).changes, [], 'the retention sweep removes rows older than a day');
});
