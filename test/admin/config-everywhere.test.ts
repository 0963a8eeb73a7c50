import pg from 'pg';
import t, { type Test } from 'tap';
import { auth, createCampaign, type Pacer, post, startPacer, status } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Configuration everywhere: two real pacers on one PostgreSQL database and one Redis. A change made
 * through A's admin API (create, budget, archive, breaker reset) is seen by a decision on B within
 * a second, and B, cut off from the database's notifications while a change is made, reads it when
 * it reconnects.
 */
const db = await createDatabase('config_everywhere');
const prefix = uniqueName('pacer-config-everywhere');
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_DATABASE_URL: db.url, PACER_SHARDS: '1' };
// Each its own key prefix: two instances without leases on one prefix refuse to share it
// (PACER_ERR_INSTANCE_CONFLICT); this file tests the configuration they share, not the counters.
const a = await startPacer({ env: { ...env, PACER_REDIS_KEY_PREFIX: `${prefix}-a` } });
const b = await startPacer({ env: { ...env, PACER_REDIS_KEY_PREFIX: `${prefix}-b` } });
t.teardown(async () => {
  await a.stop();
  await b.stop();
  await dropRedisPrefix(redisUrl, `${prefix}-a`);
  await dropRedisPrefix(redisUrl, `${prefix}-b`);
  await db.drop();
});

/** Asks B's hot path until the decision matches; resolves with the time it took. */
async function seenOnB(t: Test, what: string, body: Record<string, unknown>, ok: (d: any) => boolean, withinMs = 1_000): Promise<number> {
  const start = Date.now();
  let last: unknown = null;
  for (;;) {
    const d = await post(b.url, '/v1/decide', body);
    last = d.body;
    const took = Date.now() - start;
    if (ok(d.body)) {
      t.ok(took <= withinMs, `${what}: seen on B after ${took} ms`);
      return took;
    }
    if (took > withinMs * 3) {
      t.fail(`${what}: not seen on B within ${withinMs * 3} ms; last answer ${JSON.stringify(last)}`);
      return took;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

const open = { strategy: 'ASAP', breaker: { enabled: false } };

t.test('a campaign created on A serves decisions on B within a second', async (t) => {
  await createCampaign(a, { id: 'ce-new', dailyBudgetMicros: 1_000_000, ...open });
  await seenOnB(t, 'create', { campaignId: 'ce-new', bidMicros: 1_000 }, (d) => d.allow === true);
  t.equal((await status(b, 'ce-new')).budgetMicros, 1_000_000, "B's admin knows it too");
});

t.test('a budget change on A is seen by a decision on B within a second', async (t) => {
  await createCampaign(a, { id: 'ce-budget', dailyBudgetMicros: 1_000_000, ...open });
  await seenOnB(t, 'create', { campaignId: 'ce-budget', bidMicros: 500_000 }, (d) => d.allow === true);
  const r = await post(a.adminUrl, '/v1/campaigns/ce-budget/budget', { set: 100_000, reason: 'config everywhere test' }, auth);
  t.equal(r.status, 200);
  await seenOnB(t, 'budget lowered', { campaignId: 'ce-budget', bidMicros: 500_000 }, (d) => d.allow === false && d.reason === 'BUDGET_EXHAUSTED');
  t.equal((await status(b, 'ce-budget')).budgetMicros, 100_000);
});

t.test('an archive on A is seen by a decision on B within a second', async (t) => {
  await createCampaign(a, { id: 'ce-archive', dailyBudgetMicros: 1_000_000, ...open });
  await seenOnB(t, 'create', { campaignId: 'ce-archive', bidMicros: 1_000 }, (d) => d.allow === true);
  const r = await fetch(`${a.adminUrl}/v1/campaigns/ce-archive`, { method: 'DELETE', headers: auth });
  t.equal(r.status, 200);
  await seenOnB(t, 'archive', { campaignId: 'ce-archive', bidMicros: 1_000 }, (d) => d.allow === false && d.reason === 'CAMPAIGN_ARCHIVED');
  const restored = await post(a.adminUrl, '/v1/campaigns/ce-archive/restore', {}, auth);
  t.equal(restored.status, 200);
  await seenOnB(t, 'restore', { campaignId: 'ce-archive', bidMicros: 1_000 }, (d) => d.allow === true);
});

t.test("a breaker reset on A resets B's breaker within a second", async (t) => {
  await createCampaign(a, { id: 'ce-brk', dailyBudgetMicros: 1_000, strategy: 'ASAP', breaker: { enabled: true } });
  await seenOnB(t, 'create', { campaignId: 'ce-brk', bidMicros: 1 }, (d) => d.allow === true);
  // A reservation past 95% of the budget on B trips B's breaker (A's own stays closed).
  t.equal((await post(b.url, '/v1/decide', { campaignId: 'ce-brk', bidMicros: 990, requestId: 'brk-1' })).body.allow, true);
  const open = await post(b.url, '/v1/decide', { campaignId: 'ce-brk', bidMicros: 1 });
  t.same([open.body.allow, open.body.reason], [false, 'BREAKER_OPEN'], "B's breaker is open");
  const reset = await post(a.adminUrl, '/v1/campaigns/ce-brk/breaker/reset', {}, auth);
  t.equal(reset.status, 200);
  await seenOnB(t, 'breaker reset', { campaignId: 'ce-brk', bidMicros: 1 }, (d) => d.allow === true);
  t.not((await status(b, 'ce-brk')).breaker.state, 'OPEN');
});

t.test('B, cut off from the notifications while A changes a budget, reads the change when it reconnects', async (t) => {
  await createCampaign(a, { id: 'ce-missed', dailyBudgetMicros: 1_000_000, ...open });
  await seenOnB(t, 'create', { campaignId: 'ce-missed', bidMicros: 500_000 }, (d) => d.allow === true);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());
  // B started second, so its listening connection is the newer of the two.
  const feeds = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'budget-pacer-config-feed' ORDER BY backend_start",
  );
  t.equal(feeds.rows.length, 2, 'each instance listens on its own connection');
  b.child.kill('SIGSTOP');
  try {
    await admin.query('SELECT pg_terminate_backend($1)', [feeds.rows[1]!.pid]);
    const r = await post(a.adminUrl, '/v1/campaigns/ce-missed/budget', { set: 100_000 }, auth);
    t.equal(r.status, 200, 'changed on A while B hears nothing');
  } finally {
    b.child.kill('SIGCONT');
  }
  await seenOnB(t, 'missed budget change', { campaignId: 'ce-missed', bidMicros: 500_000 }, (d) => d.allow === false && d.reason === 'BUDGET_EXHAUSTED', 3_000);
  t.match(b.stderr(), /config feed: listening again; missed changes read/, 'B reconnected and caught up');
});
