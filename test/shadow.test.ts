import t from 'tap';
import { call, campaign, mergePatch } from './helpers/admin-client.js';
import { auth, createCampaign, get, post, startPacer, status } from './helpers/server.js';
import { streamClient } from './helpers/stream-client.js';

/**
 * Shadow mode and A/B over the real server (docs/api.md "Shadow mode and A/B"): the configuration
 * through the management API (validation, If-Match), SHADOW-mode answers over HTTP and the
 * /v1/stream WebSocket, the day report's two sides and the metrics. Every answer read through
 * post/get is checked against docs/openapi.yaml.
 */
const pacer = await startPacer({ env: { PACER_HISTORY_FLUSH_MS: '200' } });
t.teardown(() => pacer.stop());
const admin = pacer.adminUrl;

t.test('a bad shadow or mode is a coded 400 that creates nothing', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ shadow: 'EVEN' }, 'INVALID_FIELD'],
    [{ shadow: {} }, 'MISSING_FIELD'],
    [{ shadow: { strategy: 'SOMETIMES' } }, 'INVALID_FIELD'],
    [{ shadow: { strategy: 'EVEN', throttle: 1 } }, 'UNKNOWN_FIELD'],
    [{ shadow: { strategy: 'CUSTOM' } }, 'MISSING_FIELD'],
    [{ shadow: { strategy: 'FRONT_LOADED', frontLoadedShare: 2 } }, 'INVALID_FIELD'],
    [{ shadow: { strategy: 'CUSTOM', hourlyWeights: [1, 2] } }, 'INVALID_FIELD'],
    [{ mode: 'WATCH' }, 'INVALID_FIELD'],
  ];
  for (const [extra, code] of cases) {
    const r = await post(admin, '/v1/campaigns', campaign('bad-shadow', extra), auth);
    t.equal(r.status, 400, JSON.stringify(extra));
    t.equal(r.body.error.code, code, r.body.error.message);
  }
  t.equal((await get(admin, '/v1/campaigns/bad-shadow', auth)).status, 404, 'nothing was created');
});

t.test('mode and shadow are set, shown, changed with If-Match and removed like other fields', async (t) => {
  const created = await createCampaign(pacer, campaign('ab-1', { strategy: 'EVEN', frontLoadedShare: 0.8 }));
  t.equal(created.body.campaign.mode, 'ENFORCE');
  t.equal(created.body.campaign.shadow, null);
  t.equal(created.body.status.shadow, undefined, 'no shadow, no shadow status');
  const stale = await call(admin, 'PATCH', '/v1/campaigns/ab-1', { shadow: { strategy: 'ASAP' } }, { ...mergePatch, 'if-match': '"7"' });
  t.equal(stale.status, 412);
  const p = await call(admin, 'PATCH', '/v1/campaigns/ab-1', { shadow: { strategy: 'FRONT_LOADED' } }, { ...mergePatch, 'if-match': '"1"' });
  t.equal(p.status, 200, JSON.stringify(p.body));
  t.same(p.body.campaign.shadow, { strategy: 'FRONT_LOADED', frontLoadedShare: 0.8, aheadPercent: 10, hourlyWeights: null }, "parameters default to the campaign's");
  t.equal(p.body.status.shadow.strategy, 'FRONT_LOADED', 'the shard runs the shadow before the answer');
  const read = await get(admin, '/v1/campaigns/ab-1', auth);
  t.equal(read.status, 200);
  t.equal(read.headers.get('etag'), '"2"');
  t.equal(read.body.campaign.shadow.strategy, 'FRONT_LOADED');
  const m = await call(admin, 'PATCH', '/v1/campaigns/ab-1', { mode: 'SHADOW', shadow: null }, { ...mergePatch, 'if-match': '"2"' });
  t.equal(m.status, 200);
  t.equal(m.body.campaign.mode, 'SHADOW');
  t.equal(m.body.campaign.shadow, null, 'null removes the shadow strategy');
  t.equal(m.body.status.shadow.strategy, 'EVEN', "in SHADOW mode the campaign's own strategy runs as the shadow");
  const back = await call(admin, 'PATCH', '/v1/campaigns/ab-1', { mode: 'ENFORCE' }, { ...mergePatch, 'if-match': '"3"' });
  t.equal(back.status, 200);
  t.equal(back.body.status.shadow, undefined, 'back to ENFORCE without a shadow strategy: the shadow is gone');
});

t.test('SHADOW mode answers allow with what it would have answered, over HTTP and the stream', async (t) => {
  // 2,000 micros a day and 1,500-micro bids: the second bid would pass the hard cap.
  await createCampaign(pacer, campaign('watch-1', { dailyBudgetMicros: 2_000, mode: 'SHADOW' }));
  const first = await post(pacer.url, '/v1/decide', { campaignId: 'watch-1', bidMicros: 1_500, requestId: 'w1' });
  t.equal(first.status, 200);
  t.match(first.body, { allow: true, reason: 'OK', reserved: true, wouldAllow: true, wouldReason: 'OK' });
  const second = await post(pacer.url, '/v1/decide', { campaignId: 'watch-1', bidMicros: 1_500, requestId: 'w2' });
  t.match(second.body, { allow: true, reason: 'OK', reserved: true, wouldAllow: false, wouldReason: 'BUDGET_EXHAUSTED' });
  const batch = await post(pacer.url, '/v1/decide/batch', { requests: [{ campaignId: 'watch-1', bidMicros: 1_500, requestId: 'w3' }] });
  t.match(batch.body.decisions[0], { allow: true, wouldAllow: false, wouldReason: 'BUDGET_EXHAUSTED' });

  await createCampaign(pacer, campaign('plain-1'));
  const plain = await post(pacer.url, '/v1/decide', { campaignId: 'plain-1', bidMicros: 1_500, requestId: 'p1' });
  t.notOk('wouldAllow' in plain.body, 'an enforcing campaign answers as before');

  const ws = await streamClient(pacer.port);
  t.teardown(() => ws.ws.close());
  const frame = await ws.request([[1, 1, 'watch-1', 1_500, 'w4'], [1, 2, 'plain-1', 1_500, 'p2']]);
  t.same(frame[0].slice(0, 5), [1, 1, true, 'OK', true]);
  t.same(frame[0].slice(7), [false, 'BUDGET_EXHAUSTED'], 'the stream appends wouldAllow and wouldReason');
  t.equal(frame[1].length, 7, 'an enforcing campaign keeps the seven fields');

  const spend = await post(pacer.url, '/v1/spend', { campaignId: 'watch-1', eventId: 'ew2', amountMicros: 1_400, requestId: 'w2' });
  t.equal(spend.body.matchedReservation, true, 'the bid it would have denied was reserved, so its win matches');
  const s = await status(pacer, 'watch-1');
  t.equal(s.settledMicros, 1_400, 'spend still counts');
  t.equal(s.shadow.settledMicros, 0, 'but not as would-be spend: the shadow would not have made that bid');
  t.equal(s.shadow.allowed, 1);
  t.equal(s.counters.allowed, 4);
});

t.test('the day report shows the real and the shadow side by side, and the metrics count would-be reasons', async (t) => {
  await createCampaign(pacer, campaign('ab-report', { dailyBudgetMicros: 100_000, strategy: 'EVEN', shadow: { strategy: 'ASAP' } }));
  for (let i = 0; i < 5; i++) {
    const requests = Array.from({ length: 20 }, (_, k) => ({ campaignId: 'ab-report', bidMicros: 1_000, requestId: `r${i}-${k}` }));
    const d = await post(pacer.url, '/v1/decide/batch', { requests });
    const events = (d.body.decisions as any[]).flatMap((x, k) => (x.reserved ? [{ campaignId: 'ab-report', eventId: `e${i}-${k}`, amountMicros: 800, requestId: requests[k]!.requestId }] : []));
    if (events.length > 0) await post(pacer.url, '/v1/spend/batch', { events });
  }
  let report: any = null;
  for (let i = 0; i < 50; i++) {
    report = (await get(admin, '/v1/campaigns/ab-report/report', auth)).body;
    if (report.shadow !== null && report.shadow.decisions === 100) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(report.strategy, 'EVEN');
  t.equal(report.mode, 'ENFORCE');
  t.equal(report.shadow.strategy, 'ASAP');
  t.equal(report.shadow.decisions, 100);
  const realAllowed = report.hours.reduce((n: number, h: any) => n + h.allowed, 0);
  t.ok(report.shadow.allowed > realAllowed, `ASAP would have allowed ${report.shadow.allowed}, EVEN allowed ${realAllowed}`);
  t.ok(report.shadow.estimatedMicros > 0, 'bids only the shadow would have made are estimated');
  t.ok(report.shadow.spentMicros <= 100_000, 'within its budget');
  t.equal(report.shadow.hours.length, report.hours.length);
  const metrics = await fetch(`${admin}/metrics`).then((r) => r.text());
  t.match(metrics, /pacer_shadow_decisions_total\{[^}]*would_reason="OK"[^}]*\} \d+/);
});
