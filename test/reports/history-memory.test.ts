import t from 'tap';
import { auth, createCampaign, get, post, startPacer } from '../helpers/server.js';

/**
 * With PACER_STORE=memory there is no SQL: the same history and report come from the raw minutes
 * the admin thread keeps. Spend is driven through the hot path and reaches the history within a
 * few flush periods.
 */
const pacer = await startPacer({ env: { PACER_STORE: 'memory', PACER_HISTORY_FLUSH_MS: '100' } });
t.teardown(() => pacer.stop());

t.test('spend through the hot path shows in the hourly history and today\'s report (memory store)', async (t) => {
  await createCampaign(pacer, { id: 'mem-h', dailyBudgetMicros: 10_000_000, strategy: 'ASAP', timezone: 'Asia/Kolkata' });
  for (let i = 0; i < 5; i++) {
    const d = await post(pacer.url, '/v1/decide', { campaignId: 'mem-h', bidMicros: 1_000, requestId: `r${i}` });
    t.equal(d.body.allow, true);
    t.equal((await post(pacer.url, '/v1/spend', { campaignId: 'mem-h', eventId: `e${i}`, amountMicros: 700, requestId: `r${i}` })).body.status, 'applied');
  }
  let settled = 0;
  let history: any = null;
  for (let i = 0; i < 100 && settled < 3_500; i++) {
    await new Promise((r) => setTimeout(r, 100));
    history = (await get(pacer.adminUrl, '/v1/campaigns/mem-h/history?step=hour', auth)).body;
    settled = history.buckets.reduce((n: number, b: { settledMicros: number }) => n + b.settledMicros, 0);
  }
  t.equal(settled, 3_500, 'five wins of 700 micros');
  t.equal(history.step, 'hour');
  t.match(history.buckets[0].localStart, /\+05:30$/, 'buckets are labelled in the campaign\'s zone');
  const report = (await get(pacer.adminUrl, '/v1/campaigns/mem-h/report', auth)).body;
  t.equal(report.spentMicros, 3_500, 'today\'s report by default');
  t.equal(report.hours.length, 24);
  t.equal(report.hours.reduce((n: number, h: { wins: number }) => n + h.wins, 0), 5);
  t.equal(report.budgetMicros, 10_000_000);
  const fleet = (await get(pacer.adminUrl, `/v1/report?day=${report.day}`, auth)).body;
  t.equal(fleet.campaigns[0].campaignId, 'mem-h');
  t.equal(fleet.campaigns[0].spentMicros, 3_500);
  t.equal(fleet.nextCursor, null);
});
