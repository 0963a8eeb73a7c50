import t from 'tap';
import { createCampaign, get, post, startPacer, status, auth } from '../helpers/server.js';
import { call, campaign, mergePatch } from '../helpers/admin-client.js';

/** Safe edits over real HTTP: ETag, merge patch, PUT, If-Match and If-None-Match. */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
const admin = pacer.adminUrl;

t.test('GET answers with a strong ETag of the version, and every write with the new one', async (t) => {
  const created = await createCampaign(pacer, campaign('etag-1'));
  t.equal(created.headers.get('etag'), '"1"');
  const r = await get(admin, '/v1/campaigns/etag-1', auth);
  t.equal(r.headers.get('etag'), '"1"');
  t.equal(r.body.campaign.version, 1);
  const p = await call(admin, 'PATCH', '/v1/campaigns/etag-1', { name: 'renamed' }, mergePatch);
  t.equal(p.status, 200);
  t.equal(p.headers.get('etag'), '"2"');
});

t.test('a PATCH that changes only the budget keeps every other field', async (t) => {
  const full = campaign('patch-1', {
    name: 'Winter sale', timezone: 'Europe/Paris', strategy: 'CUSTOM', hourlyWeights: Array.from({ length: 24 }, (_, h) => h + 1),
    schedule: [{ days: ['MON', 'TUE'], start: '08:00', end: '20:00' }], lifetimeBudgetMicros: 90_000_000,
    startAt: '2026-01-01T00:00:00Z', endAt: '2030-01-01T00:00:00Z', breaker: { enabled: false, cooldownMs: 1_000 },
  });
  const before = (await createCampaign(pacer, full)).body.campaign;
  const p = await call(admin, 'PATCH', '/v1/campaigns/patch-1', { dailyBudgetMicros: 2_500_000 }, { ...mergePatch, 'if-match': '"1"' });
  t.equal(p.status, 200);
  const after = (await get(admin, '/v1/campaigns/patch-1', auth)).body.campaign;
  const { dailyBudgetMicros: b0, version: v0, updatedAt: _u0, ...rest0 } = before;
  const { dailyBudgetMicros: b1, version: v1, updatedAt: _u1, ...rest1 } = after;
  t.same(rest1, rest0, 'every other field is as it was');
  t.same([b0, b1, v0, v1], [1_000_000, 2_500_000, 1, 2]);
  t.equal((await status(pacer, 'patch-1')).budgetMicros <= 2_500_000, true, 'the shard runs the new budget');
});

t.test('null in a merge patch removes an optional field; the result is validated in full', async (t) => {
  await createCampaign(pacer, campaign('patch-2', { schedule: [{ days: ['MON'], start: '08:00', end: '09:00' }], name: 'n' }));
  const p = await call(admin, 'PATCH', '/v1/campaigns/patch-2', { schedule: null, name: null }, mergePatch);
  t.equal(p.status, 200);
  t.equal(p.body.campaign.schedule, null, 'schedule removed: active all day');
  t.equal(p.body.campaign.name, 'patch-2', 'name removed: back to its default, the id');
  const bad = await call(admin, 'PATCH', '/v1/campaigns/patch-2', { strategy: 'CUSTOM' }, mergePatch);
  t.equal(bad.status, 400, 'CUSTOM without hourlyWeights is refused after the merge');
  t.equal(bad.body.error.code, 'MISSING_FIELD');
  const ro = await call(admin, 'PATCH', '/v1/campaigns/patch-2', { version: 99 }, mergePatch);
  t.equal(ro.body.error.code, 'INVALID_FIELD', 'read-only fields cannot be patched');
  const id = await call(admin, 'PATCH', '/v1/campaigns/patch-2', { id: 'other' }, mergePatch);
  t.equal(id.body.error.code, 'INVALID_FIELD', 'nor can the id');
  t.equal((await get(admin, '/v1/campaigns/patch-2', auth)).body.campaign.version, 2, 'refused patches changed nothing');
});

t.test('PATCH without the merge-patch media type answers 415', async (t) => {
  await createCampaign(pacer, campaign('patch-3'));
  const r = await call(admin, 'PATCH', '/v1/campaigns/patch-3', { dailyBudgetMicros: 5 });
  t.equal(r.status, 415);
  t.equal(r.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  t.equal((await get(admin, '/v1/campaigns/patch-3', auth)).body.campaign.dailyBudgetMicros, 1_000_000);
  const unknown = await call(admin, 'PATCH', '/v1/campaigns/nobody', {}, mergePatch);
  t.equal(unknown.status, 404);
});

t.test('a stale If-Match answers 412 VERSION_MISMATCH with the current version and changes nothing', async (t) => {
  await createCampaign(pacer, campaign('match-1'));
  await call(admin, 'PATCH', '/v1/campaigns/match-1', { name: 'v2' }, mergePatch);
  const stale = await call(admin, 'PATCH', '/v1/campaigns/match-1', { dailyBudgetMicros: 7 }, { ...mergePatch, 'if-match': '"1"' });
  t.equal(stale.status, 412);
  t.equal(stale.body.error.code, 'VERSION_MISMATCH');
  t.equal(stale.body.error.currentVersion, 2);
  const put = await call(admin, 'PUT', '/v1/campaigns/match-1', campaign('match-1'), { 'if-match': 'W/"2"' });
  t.equal(put.status, 412, 'a weak tag never matches (strong comparison)');
  const r = (await get(admin, '/v1/campaigns/match-1', auth)).body.campaign;
  t.same([r.version, r.dailyBudgetMicros, r.name], [2, 1_000_000, 'v2']);
  const ok = await call(admin, 'PUT', '/v1/campaigns/match-1', campaign('match-1', { dailyBudgetMicros: 9 }), { 'if-match': '"1", "2"' });
  t.equal(ok.status, 200, 'one of the listed tags matches');
  const missing = await call(admin, 'PUT', '/v1/campaigns/match-none', campaign('match-none'), { 'if-match': '*' });
  t.equal(missing.status, 412, 'If-Match: * needs the campaign to exist');
  t.equal((await get(admin, '/v1/campaigns/match-none', auth)).status, 404);
});

t.test('two concurrent PATCHes with the same If-Match give one 200 and one 412', async (t) => {
  await createCampaign(pacer, campaign('race-1'));
  for (let round = 0; round < 5; round++) {
    const v = (await get(admin, '/v1/campaigns/race-1', auth)).body.campaign.version;
    const send = (budget: number) =>
      call(admin, 'PATCH', '/v1/campaigns/race-1', { dailyBudgetMicros: budget }, { ...mergePatch, 'if-match': `"${v}"` });
    const answers = await Promise.all([send(2_000_000 + round), send(3_000_000 + round)]);
    t.same(answers.map((a) => a.status).sort(), [200, 412], `round ${round}`);
    const winner = answers.find((a) => a.status === 200)!;
    const now = (await get(admin, '/v1/campaigns/race-1', auth)).body.campaign;
    t.equal(now.dailyBudgetMicros, winner.body.campaign.dailyBudgetMicros, 'the stored budget is the winner\'s');
    t.equal(now.version, v + 1, 'exactly one new version');
  }
});

t.test('PUT replaces: the path id wins, a different id in the body is 400', async (t) => {
  await createCampaign(pacer, campaign('put-1', { name: 'first', timezone: 'Asia/Tokyo' }));
  const r = await call(admin, 'PUT', '/v1/campaigns/put-1', { dailyBudgetMicros: 5_000 });
  t.equal(r.status, 200);
  t.same([r.body.campaign.id, r.body.campaign.name, r.body.campaign.timezone, r.body.campaign.version], ['put-1', 'put-1', 'UTC', 2],
    'fields absent from a PUT take their defaults');
  const other = await call(admin, 'PUT', '/v1/campaigns/put-1', { id: 'put-2', dailyBudgetMicros: 5_000 });
  t.equal(other.status, 400);
  t.equal(other.body.error.code, 'INVALID_FIELD');
  t.equal((await get(admin, '/v1/campaigns/put-2', auth)).status, 404);
  const created = await call(admin, 'PUT', '/v1/campaigns/put-3', { dailyBudgetMicros: 5_000 });
  t.equal(created.status, 201, 'PUT creates a campaign that does not exist');
});

t.test('POST keeps create-or-replace; If-None-Match: * answers 409 when the campaign exists', async (t) => {
  const first = await post(admin, '/v1/campaigns', campaign('inm-1'), { ...auth, 'if-none-match': '*' });
  t.equal(first.status, 201);
  const again = await post(admin, '/v1/campaigns', campaign('inm-1', { dailyBudgetMicros: 5 }), { ...auth, 'if-none-match': '*' });
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'CAMPAIGN_EXISTS');
  t.equal((await get(admin, '/v1/campaigns/inm-1', auth)).body.campaign.dailyBudgetMicros, 1_000_000);
  const replace = await post(admin, '/v1/campaigns', campaign('inm-1', { dailyBudgetMicros: 5 }), auth);
  t.equal(replace.status, 200, 'without the header a POST replaces');
});
