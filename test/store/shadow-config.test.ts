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
import { call, mergePatch } from '../helpers/admin-client.js';
import { createCampaign, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Shadow configuration and shadow history in every store (memory, embedded PGlite, PostgreSQL:
 * migrations/0007_shadow.sql), and a shadow configured on one pacer reaching another that shares
 * its PostgreSQL (src/store/config-feed.ts carries the whole configuration).
 */
function minute(minuteMs: number, part: Partial<MinuteRow>): MinuteRow {
  return {
    campaignId: 'sh-1', minuteMs, day: '2025-03-10', decisions: 10, allowed: 4, denied: 6, deniedByReason: { PACED: 6 }, spendEvents: 1,
    settledMicros: 500, duplicateEvents: 0, unmatchedEvents: 0, expiredReservations: 0, budgetMicros: 1_000, throttle: 0.4,
    breakerState: 'CLOSED', ...part,
  };
}

function contract(name: string, open: () => Promise<{ store: ConfigStore; done: () => Promise<void> }>): void {
  t.test(`${name}: mode and shadow are stored with the configuration, shadow figures with the minute history`, async (t) => {
    const { store, done } = await open();
    t.teardown(done);
    const record: CampaignRecord = {
      config: parseCampaign({ id: 'sh-1', dailyBudgetMicros: 1_000, mode: 'SHADOW', shadow: { strategy: 'AHEAD', aheadPercent: 30 } }, 1),
      createdAt: '2025-03-10T10:00:00.000Z', updatedAt: '2025-03-10T10:00:00.000Z', archivedAt: null,
    };
    t.equal(await store.saveCampaign(record, null, 'test'), true);
    const [loaded] = await store.loadCampaigns();
    t.same(loaded, record, 'the configuration comes back whole');
    t.equal(loaded!.config.mode, 'SHADOW');
    t.same(loaded!.config.shadow, { strategy: 'AHEAD', frontLoadedShare: 0.7, aheadPercent: 30, hourlyWeights: null });

    const m0 = Date.parse('2025-03-10T10:01:00Z');
    const shadow = { strategy: 'AHEAD', decisions: 10, allowed: 7, deniedByReason: { PACED: 2, BUDGET_EXHAUSTED: 1 }, settledMicros: 300, estimatedMicros: 40 };
    await store.writeHistory([minute(m0, { shadow }), minute(m0 + 60_000, {})], []);
    // A second write to the same minute adds to it, as the admin's batches do.
    await store.writeHistory([minute(m0, { shadow: { ...shadow, deniedByReason: { PACED: 1 } } })], []);
    const { minutes } = await store.history('sh-1', m0, m0 + 120_000);
    t.equal(minutes.length, 2);
    t.same(minutes[0]!.shadow, { strategy: 'AHEAD', decisions: 20, allowed: 14, deniedByReason: { PACED: 3, BUDGET_EXHAUSTED: 1 }, settledMicros: 600, estimatedMicros: 80 });
    t.equal(minutes[0]!.decisions, 20, 'the real counters beside it');
    t.equal(minutes[1]!.shadow, undefined, 'a minute without a shadow has none');
    const sql = store as Partial<SqlConfigStore>;
    if (sql.shadowHistory !== undefined) {
      const only = await sql.shadowHistory.call(store, 'sh-1', m0, m0 + 120_000);
      t.same(only, [{ minuteMs: m0, shadow: minutes[0]!.shadow }], "the report's read: only the minutes with shadow figures");
    }
  });
}

contract('memory', async () => ({ store: new MemoryConfigStore(), done: async () => {} }));

contract('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-shadow-'));
  const sql = await EmbeddedSql.open(dir);
  await migrate(sql);
  return { store: new SqlConfigStore(sql), done: async () => { await sql.close(); rmSync(dir, { recursive: true, force: true }); } };
});

contract('postgres', async () => {
  const db = await createDatabase('shadow_cfg');
  const sql = new PostgresSql(db.url);
  await migrate(sql);
  return { store: new SqlConfigStore(sql), done: async () => { await sql.close(); await db.drop(); } };
});

t.test('SHADOW mode set on pacer A answers on pacer B (one PostgreSQL, one Redis)', async (t) => {
  const db = await createDatabase('shadow_feed');
  const prefix = uniqueName('pacer-shadow-feed');
  const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_DATABASE_URL: db.url, PACER_SHARDS: '1' };
  // Each its own key prefix: two instances without leases on one prefix refuse to share it
  // (PACER_ERR_INSTANCE_CONFLICT); what they share here is the configuration.
  const a = await startPacer({ env: { ...env, PACER_REDIS_KEY_PREFIX: `${prefix}-a` } });
  const b = await startPacer({ env: { ...env, PACER_REDIS_KEY_PREFIX: `${prefix}-b` } });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    await dropRedisPrefix(redisUrl, `${prefix}-a`);
    await dropRedisPrefix(redisUrl, `${prefix}-b`);
    await db.drop();
  });
  await createCampaign(a, { id: 'feed-shadow', dailyBudgetMicros: 1_000, strategy: 'ASAP', breaker: { enabled: false } });
  const p = await call(a.adminUrl, 'PATCH', '/v1/campaigns/feed-shadow', { mode: 'SHADOW', shadow: { strategy: 'EVEN' } }, { ...mergePatch, 'if-match': '"1"' });
  t.equal(p.status, 200);
  const started = Date.now();
  let last: any = null;
  while (Date.now() - started < 5_000) {
    // A bid above the budget: denied when enforced, allowed with wouldReason in SHADOW mode.
    last = (await post(b.url, '/v1/decide', { campaignId: 'feed-shadow', bidMicros: 5_000 })).body;
    if (last.wouldReason !== undefined) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.match(last, { allow: true, wouldAllow: false, wouldReason: 'BUDGET_EXHAUSTED' }, `seen on B after ${Date.now() - started} ms`);
  t.equal((await status(b, 'feed-shadow')).shadow.strategy, 'EVEN', "B's shard runs the shadow strategy");
});
