import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { expectedTotals, makeEvents, send, type SendLog } from '../helpers/load.js';
import { auth, createCampaign, get, post, startPacer, status } from '../helpers/server.js';

/**
 * The default configuration, as `npm start` runs on a bare machine (no PACER_STORE, no services):
 * the embedded database in the data directory. Configuration, the audit trail, history and spend
 * survive a clean restart and a kill -9.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'pacer-embedded-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
// PACER_STORE empty: the configuration's default applies.
const env = { PACER_STORE: '' };

t.test('spend, configuration and history survive a restart of the default embedded pacer', async (t) => {
  let pacer = await startPacer({ env, dataDir });
  t.match(pacer.stderr(), /"msg":"ready".*"store":"embedded"/, 'the default store is embedded');
  await createCampaign(pacer, { id: 'emb-1', dailyBudgetMicros: 50_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  await post(pacer.adminUrl, '/v1/campaigns', { id: 'emb-1', dailyBudgetMicros: 60_000_000, strategy: 'ASAP', breaker: { enabled: false } }, { ...auth, 'x-pacer-actor': 'carol' });
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'emb-1', bidMicros: 3_000, requestId: 'keep-me' });
  t.equal(d.body.reserved, true);
  const events = makeEvents(['emb-1'], 300, 9);
  const first: SendLog = { answers: [] };
  await send(pacer.url, events, 8, first);
  t.equal(first.answers.filter((a) => a.answer === 'applied').length, 300);
  const code = await pacer.stop();
  t.equal(code, 0, 'a clean stop exits 0', { stderr: pacer.stderr().split('\n').slice(-12).join('\n') });

  pacer = await startPacer({ env, dataDir });
  let s = await status(pacer, 'emb-1');
  t.equal(s.settledMicros, expectedTotals(events).get('emb-1'), 'settled spend survived a clean restart');
  t.equal(s.reservedMicros, 3_000, 'so did the live reservation');
  t.equal(s.version, 2, 'and the configuration');
  const changes = (await get(pacer.adminUrl, '/v1/campaigns/emb-1/budget-changes', auth)).body.changes;
  t.same(changes.map((c: { oldMicros: number | null; newMicros: number; actor: string }) => [c.oldMicros, c.newMicros, c.actor]),
    [[null, 50_000_000, 'admin-token'], [50_000_000, 60_000_000, 'carol']], 'and the audit trail, with who made each change');
  const h = (await get(pacer.adminUrl, '/v1/campaigns/emb-1/history', auth)).body;
  const spendInHistory = h.buckets.reduce((n: number, m: { spendEvents: number }) => n + m.spendEvents, 0);
  t.equal(spendInHistory, 300, 'and the minute history the shards summarised before the stop');

  const more = makeEvents(['emb-1'], 200, 10);
  const second: SendLog = { answers: [] };
  await send(pacer.url, more, 8, second);
  const acked = second.answers.filter((a) => a.answer === 'applied').length;
  t.equal(acked, 200);
  await pacer.kill();

  pacer = await startPacer({ env, dataDir });
  t.teardown(() => pacer.stop());
  s = await status(pacer, 'emb-1');
  t.equal(s.settledMicros, expectedTotals([...events, ...more]).get('emb-1'), 'acknowledged spend survived kill -9');
  const again: SendLog = { answers: [] };
  await send(pacer.url, [...events, ...more], 8, again);
  t.equal(again.answers.filter((a) => a.answer === 'duplicate').length, 500, 'and every event is still known');
});
