import t from 'tap';
import { adminToken, auth, createCampaign, get, post, startPacer } from './helpers/server.js';

/**
 * The logs an operator ships: one JSON object per line on stderr with the thread that wrote it,
 * and an access line per admin request with method, route pattern, status, duration and actor;
 * never a body, never a token (the right one or a wrong one).
 */
const pacer = await startPacer({ env: { PACER_LOG_LEVEL: 'info' } });
t.teardown(() => pacer.stop());

const wrongToken = 'not-the-token-but-long-enough-9876';
const bodySecret = 'body-secret-name-4242';

await createCampaign(pacer, { id: 'log-1', name: bodySecret, dailyBudgetMicros: 1_000_000 });
await get(pacer.adminUrl, '/v1/campaigns/log-1', { ...auth, 'x-pacer-actor': 'alice' });
await get(pacer.adminUrl, '/v1/campaigns/nobody/status', auth);
await get(pacer.adminUrl, '/v1/campaigns', { authorization: `Bearer ${wrongToken}` });
await get(pacer.adminUrl, '/v1/campaigns');
await post(pacer.url, '/v1/decide', { campaignId: 'log-1' });

async function lines(wanted: (l: Record<string, unknown>) => boolean, count: number): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 100; i++) {
    const all = pacer.stderr().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const hits = all.filter(wanted);
    if (hits.length >= count) return hits;
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

t.test('every stderr line is one JSON object with a level, a time, the thread and a message', async (t) => {
  const all = await lines(() => true, 1);
  t.ok(all.length > 0);
  for (const l of all) {
    t.match(l, { level: /^(debug|info|warn|error)$/, time: /^\d{4}-\d{2}-\d{2}T/, msg: String }, JSON.stringify(l));
    t.match(l.thread, /^(main|admin|shard-\d+)$/, 'named after its thread');
  }
  t.ok(all.some((l) => l.thread === 'main' && l.msg === 'ready'), 'the router thread logs ready');
});

t.test('each admin request is logged with method, route pattern, status, duration and actor', async (t) => {
  const access = await lines((l) => l.msg === 'admin request', 5);
  t.equal(access.length, 5);
  for (const l of access) {
    t.equal(l.thread, 'admin');
    t.type(l.durationMs, 'number');
    t.ok((l.durationMs as number) >= 0);
  }
  t.match(access[0], { method: 'POST', route: '/v1/campaigns', status: 201, actor: 'admin-token' });
  t.match(access[1], { method: 'GET', route: '/v1/campaigns/:id', status: 200, actor: 'alice' }, 'the pattern, not the campaign id');
  t.match(access[2], { method: 'GET', route: '/v1/campaigns/:id/status', status: 404 });
  t.match(access[3], { method: 'GET', route: '/v1/campaigns', status: 403 });
  t.match(access[4], { method: 'GET', route: '/v1/campaigns', status: 401 });
});

t.test('no token and no body reaches the logs', async (t) => {
  await lines((l) => l.msg === 'admin request', 5);
  const err = pacer.stderr();
  t.notOk(err.includes(adminToken), 'the admin token');
  t.notOk(err.includes(wrongToken), 'a wrong token');
  t.notOk(err.includes(bodySecret), 'a request body');
  t.notOk(pacer.stdout().includes(adminToken), 'nor stdout');
});
