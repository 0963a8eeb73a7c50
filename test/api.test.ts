import t from 'tap';
import { auth, createCampaign, get, post, startPacer, status } from './helpers/server.js';

const pacer = await startPacer();
t.teardown(() => pacer.stop());

t.test('health and readiness answer over HTTP', async (t) => {
  const h = await get(pacer.url, '/healthz');
  t.equal(h.status, 200);
  t.same(h.body, { status: 'ok' });
  const r = await get(pacer.url, '/readyz');
  t.equal(r.status, 200);
  t.equal(r.body.status, 'ready');
});

t.test('a decision for an unknown campaign is a deny with UNKNOWN_CAMPAIGN', async (t) => {
  const r = await post(pacer.url, '/v1/decide', { campaignId: 'nobody' });
  t.equal(r.status, 200);
  t.equal(r.body.allow, false);
  t.equal(r.body.reason, 'UNKNOWN_CAMPAIGN');
});

t.test('an ASAP campaign allows and reserves a bid, and the spend settles it exactly once', async (t) => {
  await createCampaign(pacer, { id: 'asap-1', dailyBudgetMicros: 10_000_000, strategy: 'ASAP' });
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'asap-1', bidMicros: 2_000, requestId: 'auction-1' });
  t.equal(d.status, 200);
  t.match(d.body, { allow: true, reason: 'OK', reserved: true });
  t.type(d.body.throttle, 'number');
  t.type(d.body.pacingIndex, 'number');
  let s = await status(pacer, 'asap-1');
  t.equal(s.reservedMicros, 2_000);
  t.equal(s.settledMicros, 0);

  const first = await post(pacer.url, '/v1/spend', { campaignId: 'asap-1', eventId: 'imp-1', amountMicros: 1_500, requestId: 'auction-1' });
  t.equal(first.status, 200);
  t.match(first.body, { status: 'applied', matchedReservation: true, overBid: false });
  s = await status(pacer, 'asap-1');
  t.equal(s.reservedMicros, 0, 'the reservation is settled');
  t.equal(s.settledMicros, 1_500);

  for (let i = 0; i < 3; i++) {
    const again = await post(pacer.url, '/v1/spend', { campaignId: 'asap-1', eventId: 'imp-1', amountMicros: 1_500, requestId: 'auction-1' });
    t.equal(again.body.status, 'duplicate', `resend ${i + 1} is a duplicate`);
  }
  s = await status(pacer, 'asap-1');
  t.equal(s.settledMicros, 1_500, 'a resent eventId never counts twice');
  t.equal(s.counters.duplicateEvents, 3);
});

t.test('concurrent resends of one event count once', async (t) => {
  await createCampaign(pacer, { id: 'dup-burst', dailyBudgetMicros: 10_000_000, strategy: 'ASAP' });
  const sends = Array.from({ length: 50 }, () =>
    post(pacer.url, '/v1/spend', { campaignId: 'dup-burst', eventId: 'same-event', amountMicros: 777 }),
  );
  const results = await Promise.all(sends);
  t.equal(results.filter((r) => r.body.status === 'applied').length, 1);
  t.equal(results.filter((r) => r.body.status === 'duplicate').length, 49);
  t.equal((await status(pacer, 'dup-burst')).settledMicros, 777);
});

t.test('release frees a reservation once', async (t) => {
  await createCampaign(pacer, { id: 'rel-1', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'rel-1', bidMicros: 5_000, requestId: 'lost-1' });
  t.equal(d.body.reserved, true);
  t.same((await post(pacer.url, '/v1/release', { campaignId: 'rel-1', requestId: 'lost-1' })).body, { released: true });
  t.same((await post(pacer.url, '/v1/release', { campaignId: 'rel-1', requestId: 'lost-1' })).body, { released: false });
  t.equal((await status(pacer, 'rel-1')).reservedMicros, 0);
});

t.test('many concurrent allowed bids never exceed the budget (reservation hard cap)', async (t) => {
  const budget = 100_000;
  const bid = 1_000;
  await createCampaign(pacer, {
    id: 'cap-1',
    dailyBudgetMicros: budget,
    strategy: 'ASAP',
    breaker: { enabled: false },
  });
  // 600 single requests and 4 batches of 100, all in flight at once, across connections.
  const singles = Array.from({ length: 600 }, (_, i) =>
    post(pacer.url, '/v1/decide', { campaignId: 'cap-1', bidMicros: bid, requestId: `s-${i}` }).then((r) => [r.body]),
  );
  const batches = Array.from({ length: 4 }, (_, b) =>
    post(pacer.url, '/v1/decide/batch', {
      requests: Array.from({ length: 100 }, (_, i) => ({ campaignId: 'cap-1', bidMicros: bid, requestId: `b-${b}-${i}` })),
    }).then((r) => r.body.decisions as any[]),
  );
  const all = (await Promise.all([...singles, ...batches])).flat();
  t.equal(all.length, 1000);
  const allowed = all.filter((d) => d.allow);
  t.equal(allowed.length, budget / bid, 'exactly the budget is reserved, not one bid more');
  t.ok(all.filter((d) => !d.allow).every((d) => d.reason === 'BUDGET_EXHAUSTED'));
  const s = await status(pacer, 'cap-1');
  t.equal(s.reservedMicros, budget);
  t.equal(s.remainingMicros, 0);
  t.ok(s.settledMicros + s.reservedMicros <= s.budgetMicros);
});

t.test('batch endpoints answer in order, per item', async (t) => {
  await createCampaign(pacer, { id: 'batch-1', dailyBudgetMicros: 5_000_000, strategy: 'ASAP' });
  const d = await post(pacer.url, '/v1/decide/batch', {
    requests: [
      { campaignId: 'batch-1', bidMicros: 100, requestId: 'q1' },
      { campaignId: 'missing-campaign' },
      { campaignId: 'batch-1' },
    ],
  });
  t.equal(d.status, 200);
  t.equal(d.body.decisions.length, 3);
  t.match(d.body.decisions[0], { allow: true, reserved: true });
  t.match(d.body.decisions[1], { allow: false, reason: 'UNKNOWN_CAMPAIGN' });
  t.match(d.body.decisions[2], { allow: true, reserved: false });
  const s = await post(pacer.url, '/v1/spend/batch', {
    events: [
      { campaignId: 'batch-1', eventId: 'e1', amountMicros: 90, requestId: 'q1' },
      { campaignId: 'batch-1', eventId: 'e1', amountMicros: 90 },
      { campaignId: 'missing-campaign', eventId: 'e2', amountMicros: 1 },
    ],
  });
  t.equal(s.status, 200);
  t.match(s.body.results[0], { status: 'applied', matchedReservation: true });
  t.match(s.body.results[1], { status: 'duplicate' });
  t.match(s.body.results[2], { error: { code: 'UNKNOWN_CAMPAIGN' } });
  t.equal((await status(pacer, 'batch-1')).settledMicros, 90);
});

t.test('every bad input is a 4xx with a code and changes nothing', async (t) => {
  await createCampaign(pacer, { id: 'strict-1', dailyBudgetMicros: 1_000_000, strategy: 'ASAP' });
  const before = await status(pacer, 'strict-1');
  const cases: [string, string, unknown, number, string][] = [
    ['malformed JSON', '/v1/decide', '{"campaignId":', 400, 'INVALID_JSON'],
    ['empty body', '/v1/decide', '', 400, 'INVALID_JSON'],
    ['not an object', '/v1/decide', '[1,2]', 400, 'INVALID_BODY'],
    ['missing campaignId', '/v1/decide', { bidMicros: 5 }, 400, 'MISSING_FIELD'],
    ['campaignId wrong type', '/v1/decide', { campaignId: 42 }, 400, 'INVALID_CAMPAIGN_ID'],
    ['campaignId too long', '/v1/decide', { campaignId: 'x'.repeat(65) }, 400, 'INVALID_CAMPAIGN_ID'],
    ['campaignId forbidden chars', '/v1/decide', { campaignId: 'a b{c}' }, 400, 'INVALID_CAMPAIGN_ID'],
    ['negative bid', '/v1/decide', { campaignId: 'strict-1', bidMicros: -5, requestId: 'x' }, 400, 'INVALID_AMOUNT'],
    ['fractional bid', '/v1/decide', { campaignId: 'strict-1', bidMicros: 1.5, requestId: 'x' }, 400, 'INVALID_AMOUNT'],
    ['unsafe bid', '/v1/decide', { campaignId: 'strict-1', bidMicros: 2 ** 53, requestId: 'x' }, 400, 'INVALID_AMOUNT'],
    ['bid as string', '/v1/decide', { campaignId: 'strict-1', bidMicros: '100', requestId: 'x' }, 400, 'INVALID_AMOUNT'],
    ['requestId too long', '/v1/decide', { campaignId: 'strict-1', bidMicros: 1, requestId: 'r'.repeat(129) }, 400, 'INVALID_REQUEST_ID'],
    ['unknown field', '/v1/decide', { campaignId: 'strict-1', bidMicro: 5 }, 400, 'UNKNOWN_FIELD'],
    ['spend without eventId', '/v1/spend', { campaignId: 'strict-1', amountMicros: 5 }, 400, 'MISSING_FIELD'],
    ['spend without amount', '/v1/spend', { campaignId: 'strict-1', eventId: 'e' }, 400, 'MISSING_FIELD'],
    ['negative spend', '/v1/spend', { campaignId: 'strict-1', eventId: 'e', amountMicros: -1 }, 400, 'INVALID_AMOUNT'],
    ['fractional spend', '/v1/spend', { campaignId: 'strict-1', eventId: 'e', amountMicros: 0.1 }, 400, 'INVALID_AMOUNT'],
    ['bad eventId', '/v1/spend', { campaignId: 'strict-1', eventId: 'a"b', amountMicros: 1 }, 400, 'INVALID_EVENT_ID'],
    ['release without requestId', '/v1/release', { campaignId: 'strict-1' }, 400, 'MISSING_FIELD'],
    ['empty batch', '/v1/decide/batch', { requests: [] }, 400, 'EMPTY_BATCH'],
    ['batch too large', '/v1/decide/batch', { requests: Array.from({ length: 1001 }, () => ({ campaignId: 'strict-1' })) }, 400, 'BATCH_TOO_LARGE'],
    ['batch with one bad item', '/v1/spend/batch', { events: [{ campaignId: 'strict-1', eventId: 'ok', amountMicros: 1 }, { campaignId: 'strict-1', eventId: 'bad', amountMicros: -1 }] }, 400, 'INVALID_AMOUNT'],
    ['spend on unknown campaign', '/v1/spend', { campaignId: 'ghost', eventId: 'e', amountMicros: 1 }, 404, 'UNKNOWN_CAMPAIGN'],
    ['unknown route', '/v1/nothing', {}, 404, 'NOT_FOUND'],
  ];
  for (const [name, path, body, code, errorCode] of cases) {
    const r = await post(pacer.url, path, body);
    t.equal(r.status, code, `${name}: status`);
    t.equal(r.body?.error?.code, errorCode, `${name}: code`);
    t.type(r.body?.error?.message, 'string', `${name}: message`);
  }
  const wrongMethod = await get(pacer.url, '/v1/decide');
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.body.error.code, 'METHOD_NOT_ALLOWED');

  const huge = await fetch(`${pacer.url}/v1/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ campaignId: 'strict-1', pad: 'x'.repeat(1_100_000) }),
  }).catch((err: Error) => err);
  if (huge instanceof Error) t.fail(`oversized body: ${huge.message}`);
  else t.equal(huge.status, 413, 'a body past the limit is 413');

  const after = await status(pacer, 'strict-1');
  t.same(
    [after.settledMicros, after.reservedMicros, after.counters.decisions, after.counters.spendEvents],
    [before.settledMicros, before.reservedMicros, before.counters.decisions, before.counters.spendEvents],
    'no bad input changed any counter',
  );
});

t.test('the admin API demands its bearer token', async (t) => {
  const none = await get(pacer.adminUrl, '/v1/campaigns/asap-1');
  t.equal(none.status, 401);
  t.equal(none.body.error.code, 'UNAUTHORIZED');
  const wrong = await get(pacer.adminUrl, '/v1/campaigns/asap-1', { authorization: 'Bearer not-the-token-at-all' });
  t.equal(wrong.status, 403);
  t.equal(wrong.body.error.code, 'FORBIDDEN');
  const ok = await get(pacer.adminUrl, '/v1/campaigns/asap-1', auth);
  t.equal(ok.status, 200);
  t.equal(ok.body.campaign.id, 'asap-1');
  const write = await post(pacer.adminUrl, '/v1/campaigns', { id: 'no-auth', dailyBudgetMicros: 1 });
  t.equal(write.status, 401);
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/no-auth', auth)).status, 404, 'an unauthorised write stored nothing');
});

t.test('campaign validation names the field and stores nothing', async (t) => {
  const cases: [unknown, string][] = [
    [{ id: 'v1' }, 'MISSING_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 0 }, 'INVALID_AMOUNT'],
    [{ id: 'v1', dailyBudgetMicros: 1.5 }, 'INVALID_AMOUNT'],
    [{ id: 'bad id!', dailyBudgetMicros: 1 }, 'INVALID_CAMPAIGN_ID'],
    [{ id: 'v1', dailyBudgetMicros: 1, timezone: 'Mars/Olympus' }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, strategy: 'FASTEST' }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, strategy: 'CUSTOM' }, 'MISSING_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, hourlyWeights: [1, 2] }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, status: 'RUNNING' }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, schedule: [{ days: ['MON'], start: '25:00', end: '10:00' }] }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, startAt: 'tomorrow' }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, breaker: { tripAtFraction: 2 } }, 'INVALID_FIELD'],
    [{ id: 'v1', dailyBudgetMicros: 1, colour: 'red' }, 'UNKNOWN_FIELD'],
  ];
  for (const [body, code] of cases) {
    const r = await post(pacer.adminUrl, '/v1/campaigns', body, auth);
    t.equal(r.status, 400, JSON.stringify(body));
    t.equal(r.body.error.code, code, JSON.stringify(body));
  }
  t.equal((await get(pacer.adminUrl, '/v1/campaigns/v1', auth)).status, 404);
});

t.test('a budget change reaches the hot path before the admin answers', async (t) => {
  await createCampaign(pacer, { id: 'edit-1', dailyBudgetMicros: 1_000, strategy: 'ASAP', breaker: { enabled: false } });
  const a = await post(pacer.url, '/v1/decide', { campaignId: 'edit-1', bidMicros: 1_000, requestId: 'e-1' });
  t.equal(a.body.allow, true);
  const b = await post(pacer.url, '/v1/decide', { campaignId: 'edit-1', bidMicros: 1_000, requestId: 'e-2' });
  t.match(b.body, { allow: false, reason: 'BUDGET_EXHAUSTED' });
  const updated = await createCampaign(pacer, { id: 'edit-1', dailyBudgetMicros: 2_000, strategy: 'ASAP', breaker: { enabled: false } });
  t.equal(updated.status, 200, 'replacing is 200, creating 201');
  t.equal(updated.body.campaign.version, 2);
  const c = await post(pacer.url, '/v1/decide', { campaignId: 'edit-1', bidMicros: 1_000, requestId: 'e-3' });
  t.equal(c.body.allow, true, 'the raised budget applies to the very next decision');
});

t.test('a paused campaign denies with CAMPAIGN_PAUSED', async (t) => {
  await createCampaign(pacer, { id: 'pause-1', dailyBudgetMicros: 1_000_000, status: 'PAUSED' });
  const r = await post(pacer.url, '/v1/decide', { campaignId: 'pause-1', bidMicros: 1, requestId: 'p' });
  t.match(r.body, { allow: false, reason: 'CAMPAIGN_PAUSED' });
});
