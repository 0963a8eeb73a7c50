import t from 'tap';
import { auth, get, post, startPacer } from '../helpers/server.js';
import { call, campaign } from '../helpers/admin-client.js';

/** Bulk creation and cursor listing over real HTTP, at 50,000 campaigns. */
// Creating 50,000 campaigns takes 1-3 minutes on a loaded 2-core machine (bench/README.md).
t.setTimeout(600_000);
const pacer = await startPacer();
t.teardown(() => pacer.stop());
const admin = pacer.adminUrl;
const total = 50_000;
const id = (i: number): string => `bulk-${String(i).padStart(6, '0')}`;

t.test('50,000 campaigns created through bulk are each listed exactly once by cursor', async (t) => {
  for (let start = 0; start < total; start += 1_000) {
    const items = Array.from({ length: 1_000 }, (_, k) => campaign(id(start + k), { name: `Shop ${(start + k) % 7}`, status: k % 2 ? 'PAUSED' : 'ACTIVE' }));
    const r = await post(admin, '/v1/campaigns/bulk', { campaigns: items }, auth);
    if (r.status !== 200 || r.body.created !== 1_000) t.fail(`bulk at ${start}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  const seen = new Map<string, number>();
  let cursor = '';
  let pages = 0;
  for (;;) {
    const page = (await get(admin, `/v1/campaigns?limit=1000&q=bulk-${cursor}`, auth)).body;
    pages++;
    for (const c of page.campaigns) seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
    if (page.nextCursor === null) break;
    cursor = `&cursor=${page.nextCursor}`;
  }
  t.equal(seen.size, total, 'every campaign is listed');
  t.ok([...seen.values()].every((n) => n === 1), 'none twice');
  t.equal(pages, total / 1_000, 'in pages of the limit');
  const ids = [...seen.keys()];
  t.same(ids, [...ids].sort(), 'in ID order');
});

t.test('listing filters by status, strategy and a prefix of the id or the name', async (t) => {
  const list = async (q: string) => (await get(admin, `/v1/campaigns?${q}`, auth)).body;
  const paused = await list('q=bulk-0000&status=PAUSED');
  t.ok(paused.campaigns.length > 0 && paused.campaigns.every((c: { status: string }) => c.status === 'PAUSED'));
  t.equal((await list('q=bulk-00001&limit=1000')).campaigns.length, 10, 'an id prefix');
  const byName = await list('q=Shop%203&limit=5');
  t.ok(byName.campaigns.length === 5 && byName.campaigns.every((c: { name: string }) => c.name === 'Shop 3'), 'a name prefix');
  t.equal((await list('strategy=EVEN')).campaigns.length, 0, 'no EVEN campaigns here');
  t.equal((await list('')).campaigns.length, 100, 'the default page is 100');
  for (const q of ['limit=0', 'limit=1001', 'limit=ten', 'status=RUNNING', 'strategy=FAST', 'archived=maybe', 'cursor=%%%']) {
    const r = await get(admin, `/v1/campaigns?${q}`, auth);
    t.same([r.status, r.body.error.code], [400, 'INVALID_FIELD'], q);
  }
});

t.test('bulk answers per item: created, replaced, and coded errors', async (t) => {
  const r = await post(admin, '/v1/campaigns/bulk', {
    campaigns: [campaign('item-new'), campaign(id(0), { dailyBudgetMicros: 7 }), { id: 'item-bad' }, { id: 'bad id!' }, campaign('item-new'), 'x'],
  }, auth);
  t.equal(r.status, 200);
  t.same(r.body.results.map((x: { status: number }) => x.status), [201, 200, 400, 400, 400, 400]);
  t.same(r.body.results.slice(2).map((x: { error: { code: string } }) => x.error.code),
    ['MISSING_FIELD', 'INVALID_CAMPAIGN_ID', 'INVALID_FIELD', 'INVALID_BODY']);
  t.same([r.body.created, r.body.replaced, r.body.failed], [1, 1, 4]);
  t.equal(r.body.results[1].version, 2);
  t.equal((await get(admin, `/v1/campaigns/${id(0)}`, auth)).body.campaign.dailyBudgetMicros, 7);
  t.equal((await get(admin, '/v1/campaigns/item-bad', auth)).status, 404, 'a bad item stores nothing');
  await call(admin, 'DELETE', '/v1/campaigns/item-new');
  const archived = await post(admin, '/v1/campaigns/bulk', { campaigns: [campaign('item-new')] }, auth);
  t.same([archived.body.results[0].status, archived.body.results[0].error.code], [409, 'CAMPAIGN_ARCHIVED']);
});

t.test('bulk refuses more than 1,000 campaigns or an empty list whole', async (t) => {
  const many = await post(admin, '/v1/campaigns/bulk', { campaigns: Array.from({ length: 1_001 }, (_, i) => campaign(`too-${i}`)) }, auth);
  t.same([many.status, many.body.error.code], [400, 'BATCH_TOO_LARGE']);
  t.equal((await get(admin, '/v1/campaigns/too-0', auth)).status, 404);
  const none = await post(admin, '/v1/campaigns/bulk', { campaigns: [] }, auth);
  t.same([none.status, none.body.error.code], [400, 'EMPTY_BATCH']);
});
