import t from 'tap';
import { auth, createCampaign, get, post, startPacer, status } from '../helpers/server.js';
import { call, campaign, mergePatch } from '../helpers/admin-client.js';

/** Archive and restore, and budgets as audited operations at the owning shard, over real HTTP. */
const pacer = await startPacer();
t.teardown(() => pacer.stop());
const admin = pacer.adminUrl;

t.test('an archived campaign answers CAMPAIGN_ARCHIVED and its late spend still counts', async (t) => {
  await createCampaign(pacer, campaign('arch-1'));
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'arch-1', bidMicros: 5_000, requestId: 'before-archive' });
  t.match(d.body, { allow: true, reserved: true });
  const del = await call(admin, 'DELETE', '/v1/campaigns/arch-1');
  t.equal(del.status, 200);
  t.equal(del.body.campaign.archived, true);
  t.type(del.body.campaign.archivedAt, 'string');
  t.equal(del.body.status.inactiveReason, 'CAMPAIGN_ARCHIVED');
  const after = await post(pacer.url, '/v1/decide', { campaignId: 'arch-1', bidMicros: 5_000, requestId: 'after-archive' });
  t.match(after.body, { allow: false, reason: 'CAMPAIGN_ARCHIVED', reserved: false });
  const win = await post(pacer.url, '/v1/spend', { campaignId: 'arch-1', eventId: 'late-win', amountMicros: 4_000, requestId: 'before-archive' });
  t.match(win.body, { status: 'applied', matchedReservation: true }, 'the win for a bid made before the archive is applied');
  const s = await status(pacer, 'arch-1');
  t.same([s.settledMicros, s.reservedMicros], [4_000, 0], 'and counted');
  const again = await call(admin, 'DELETE', '/v1/campaigns/arch-1');
  t.same([again.status, again.body.campaign.version], [200, del.body.campaign.version], 'archiving twice changes nothing');
});

t.test('archived campaigns leave the default listing, archived=true shows them, restore brings them back', async (t) => {
  await createCampaign(pacer, campaign('arch-list-a'));
  await createCampaign(pacer, campaign('arch-list-b'));
  await call(admin, 'DELETE', '/v1/campaigns/arch-list-a');
  const ids = async (query: string) =>
    (await get(admin, `/v1/campaigns?q=arch-list-${query}`, auth)).body.campaigns.map((c: { id: string }) => c.id);
  t.same(await ids(''), ['arch-list-b']);
  t.same(await ids('&archived=true'), ['arch-list-a']);
  t.same(await ids('&archived=all'), ['arch-list-a', 'arch-list-b']);
  t.equal((await get(admin, '/v1/campaigns/arch-list-a', auth)).status, 200, 'an archived campaign can still be read');
  t.equal((await get(admin, '/v1/campaigns/arch-list-a/budget-changes', auth)).body.changes.length, 1, 'its audit stays');
  const edit = await call(admin, 'PATCH', '/v1/campaigns/arch-list-a', { name: 'x' }, mergePatch);
  t.same([edit.status, edit.body.error.code], [409, 'CAMPAIGN_ARCHIVED'], 'edits wait for a restore');
  const restored = await call(admin, 'POST', '/v1/campaigns/arch-list-a/restore');
  t.equal(restored.status, 200);
  t.equal(restored.body.campaign.archived, false);
  t.same(await ids(''), ['arch-list-a', 'arch-list-b']);
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'arch-list-a', bidMicros: 1, requestId: 'r' });
  t.equal(d.body.allow, true, 'a restored campaign decides again');
});

t.test('a budget add is audited with its actor and reason and is visible to the next decision', async (t) => {
  await createCampaign(pacer, campaign('budget-1', { dailyBudgetMicros: 1_000 }));
  t.equal((await post(pacer.url, '/v1/decide', { campaignId: 'budget-1', bidMicros: 1_000, requestId: 'b1' })).body.allow, true);
  t.match((await post(pacer.url, '/v1/decide', { campaignId: 'budget-1', bidMicros: 1_000, requestId: 'b2' })).body,
    { allow: false, reason: 'BUDGET_EXHAUSTED' });
  const r = await post(admin, '/v1/campaigns/budget-1/budget', { add: 1_000, reason: 'Black Friday' }, { ...auth, 'x-pacer-actor': 'dana' });
  t.equal(r.status, 200);
  t.same(r.body.change, { budget: 'daily', oldMicros: 1_000, newMicros: 2_000, actor: 'dana', reason: 'Black Friday' });
  t.equal(r.body.status.budgetMicros, 2_000);
  t.equal(r.headers.get('etag'), '"2"');
  const d = await post(pacer.url, '/v1/decide', { campaignId: 'budget-1', bidMicros: 1_000, requestId: 'b3' });
  t.equal(d.body.allow, true, 'the next decision sees the added budget');
  const changes = (await get(admin, '/v1/campaigns/budget-1/budget-changes', auth)).body;
  t.match(changes.changes.at(-1), { budget: 'daily', oldMicros: 1_000, newMicros: 2_000, actor: 'dana', reason: 'Black Friday', version: 2 });
  t.equal(changes.nextCursor, null);
});

t.test('a budget below today\'s settled + reserved is refused unless forced', async (t) => {
  await createCampaign(pacer, campaign('budget-2', { dailyBudgetMicros: 10_000 }));
  await post(pacer.url, '/v1/decide', { campaignId: 'budget-2', bidMicros: 3_000, requestId: 'r1' });
  await post(pacer.url, '/v1/spend', { campaignId: 'budget-2', eventId: 'e1', amountMicros: 2_000 });
  const low = await post(admin, '/v1/campaigns/budget-2/budget', { set: 4_000 }, auth);
  t.equal(low.status, 409);
  t.equal(low.body.error.code, 'BUDGET_BELOW_COMMITTED');
  t.equal(low.body.error.committedMicros, 5_000);
  t.equal((await status(pacer, 'budget-2')).budgetMicros, 10_000, 'a refused operation changes nothing');
  t.equal((await get(admin, '/v1/campaigns/budget-2', auth)).body.campaign.version, 1);
  const down = await post(admin, '/v1/campaigns/budget-2/budget', { add: -5_000 }, auth);
  t.equal(down.status, 200, 'lowering to exactly the committed money is allowed');
  const forced = await post(admin, '/v1/campaigns/budget-2/budget', { set: 1_000, force: true, reason: 'stop it' }, auth);
  t.equal(forced.status, 200);
  t.equal(forced.body.status.budgetMicros, 1_000);
  t.match((await post(pacer.url, '/v1/decide', { campaignId: 'budget-2', bidMicros: 1, requestId: 'r2' })).body, { allow: false, reason: 'BUDGET_EXHAUSTED' });
});

t.test('budget operations are validated against the model\'s bounds', async (t) => {
  await createCampaign(pacer, campaign('budget-3'));
  const cases: [unknown, string][] = [
    [{ set: 10_000_000_000_001 }, 'INVALID_AMOUNT'],
    [{ add: -1_000_000 }, 'INVALID_AMOUNT'],
    [{ set: 1.5 }, 'INVALID_AMOUNT'],
    [{ add: 1, set: 1 }, 'MISSING_FIELD'],
    [{}, 'MISSING_FIELD'],
    [{ add: 1, colour: 'red' }, 'UNKNOWN_FIELD'],
    [{ add: 1, budget: 'lifetime' }, 'INVALID_FIELD'],
    [{ add: 1, reason: 'a\u0000b' }, 'INVALID_FIELD'],
  ];
  for (const [body, code] of cases) {
    const r = await post(admin, '/v1/campaigns/budget-3/budget', body, auth);
    t.same([r.status, r.body.error.code], [400, code], JSON.stringify(body));
  }
  const big = await post(admin, '/v1/campaigns/budget-3/budget', { set: 10_000_000_000_001 }, auth);
  t.match(big.body.error.message, /dailyBudgetMicrosMax/, 'the message names the limit');
  const create = await post(admin, '/v1/campaigns', campaign('budget-4', { lifetimeBudgetMicros: 100_000_000_000_001 }), auth);
  t.same([create.status, create.body.error.code], [400, 'INVALID_AMOUNT']);
  t.match(create.body.error.message, /lifetimeBudgetMicrosMax/);
  const unknown = await post(admin, '/v1/campaigns/nobody/budget', { add: 1 }, auth);
  t.equal(unknown.status, 404);
  t.equal((await get(admin, '/v1/campaigns/budget-3', auth)).body.campaign.version, 1, 'nothing changed');
});

t.test('the budget audit trail pages by limit and cursor', async (t) => {
  await createCampaign(pacer, campaign('budget-5', { dailyBudgetMicros: 1_000 }));
  for (let i = 1; i <= 4; i++) await post(admin, '/v1/campaigns/budget-5/budget', { add: 1, reason: `step ${i}` }, auth);
  const seen: number[] = [];
  let cursor = '';
  for (;;) {
    const page = (await get(admin, `/v1/campaigns/budget-5/budget-changes?limit=2${cursor}`, auth)).body;
    t.ok(page.changes.length <= 2);
    seen.push(...page.changes.map((c: { newMicros: number }) => c.newMicros));
    if (page.nextCursor === null) break;
    cursor = `&cursor=${page.nextCursor}`;
  }
  t.same(seen, [1_000, 1_001, 1_002, 1_003, 1_004], 'every change once, oldest first');
  const bad = await get(admin, '/v1/campaigns/budget-5/budget-changes?cursor=nonsense!', auth);
  t.same([bad.status, bad.body.error.code], [400, 'INVALID_FIELD']);
});
