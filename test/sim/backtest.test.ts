import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { openAdminStores } from '../../src/admin/open.js';
import { loadConfig } from '../../src/config.js';
import { limits } from '../../shards/limits.js';
import { summarize } from '../../src/sim/backtest.js';
import { parseTrafficCsv } from '../../src/sim/traffic.js';
import type { MinuteRow } from '../../src/store/config-store.js';
import { auth, createCampaign, post, root, startPacer } from '../helpers/server.js';
import { createDatabase, dropRedisPrefix, redisUrl, uniqueName } from '../helpers/services.js';

/**
 * Backtests on the real server and the real command: two weeks of minute history stored in
 * PostgreSQL (through the store's own writeHistory: a week cannot be produced live in a test),
 * replayed by `npm run backtest` and by POST /v1/campaigns/:id/backtest; the EVEN row equals an
 * `npm run simulate` run on the same traffic (the CSV the backtest writes with --traffic-out).
 */
t.setTimeout(600_000);
const run = promisify(execFile);
const db = await createDatabase('backtest');
const prefix = uniqueName('pacer-bt');
const env = { PACER_STORE: 'redis', PACER_REDIS_URL: redisUrl, PACER_REDIS_KEY_PREFIX: prefix, PACER_DATABASE_URL: db.url };
const dir = mkdtempSync(join(tmpdir(), 'pacer-backtest-'));
t.teardown(async () => {
  rmSync(dir, { recursive: true, force: true });
  await dropRedisPrefix(redisUrl, prefix);
  await db.drop();
});

const id = 'bt-week-1';
const budget = 3_000_000;
const dayMs = 86_400_000;
const today = Math.floor(Date.now() / dayMs) * dayMs;
const from = new Date(today - 7 * dayMs).toISOString().slice(0, 10);
const to = new Date(today - dayMs).toISOString().slice(0, 10);

/**
 * Two diurnal weeks with a quieter weekend, 4 to 36 decisions a minute, half of them allowed and a
 * fifth of those won at 1,450 micros: the first week is before the backtest's range (the profile
 * the campaign starts with is fitted from it), the second is replayed.
 */
function history(campaignId = id, scale = 1): MinuteRow[] {
  const rows: MinuteRow[] = [];
  let x = 7;
  for (let m = today - 14 * dayMs; m < today; m += 60_000) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const d = new Date(m);
    const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6;
    const h = d.getUTCHours() + d.getUTCMinutes() / 60;
    const level = 4 + 32 * Math.exp(-((h - (weekend ? 20 : 12)) ** 2) / 18) * (weekend ? 0.7 : 1);
    const decisions = Math.max(0, Math.round(scale * level * (0.8 + 0.4 * (x / 2 ** 31))));
    const allowed = Math.round(decisions / 2);
    const wins = Math.round(allowed / 5);
    rows.push({
      campaignId,
      minuteMs: m,
      day: d.toISOString().slice(0, 10),
      decisions,
      allowed,
      denied: decisions - allowed,
      deniedByReason: decisions - allowed > 0 ? { PACING_THROTTLED: decisions - allowed } : {},
      spendEvents: wins,
      settledMicros: wins * 1_450,
      duplicateEvents: 0,
      unmatchedEvents: 0,
      expiredReservations: 0,
      budgetMicros: budget * scale,
      throttle: 0.5,
      breakerState: 'CLOSED',
    });
  }
  return rows;
}

const pacer = await startPacer({ env });
t.teardown(() => pacer.stop());
await createCampaign(pacer, { id, dailyBudgetMicros: budget, strategy: 'EVEN', timezone: 'UTC' });
await createCampaign(pacer, { id: 'bt-empty', dailyBudgetMicros: budget, strategy: 'EVEN', timezone: 'UTC' });
// A high-volume campaign: 25 times the traffic and the budget (3.3 million decisions a week, far
// above backtestRequestsPerStrategyMax), so the backtest thins it.
const highId = 'bt-high-1';
const highScale = 25;
await createCampaign(pacer, { id: highId, dailyBudgetMicros: budget * highScale, strategy: 'EVEN', timezone: 'UTC' });
const stores = await openAdminStores(loadConfig({ ...env, PACER_DATA_DIR: dir }));
await stores.config.writeHistory(history(), []);
await stores.config.writeHistory(history(highId, highScale), []);
await stores.sql?.close();

t.test('npm run backtest replays the week; its EVEN row equals npm run simulate on the same traffic', async (t) => {
  const csv = join(dir, 'traffic.csv');
  const out = await run(process.execPath, [join(root, 'dist/src/sim/backtest-cli.js'), '--campaign', id, '--from', from, '--to', to, '--strategy', 'EVEN,ADAPTIVE', '--traffic-out', csv], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env, PACER_DATA_DIR: dir },
    maxBuffer: 1 << 24,
  });
  t.comment(out.stdout.split('\n').slice(0, 6).join('\n'));
  const lines = out.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.strategy), ['EVEN', 'ADAPTIVE'], 'one JSON line per strategy');
  const even = lines[0];
  t.equal(even.days, 7, 'every day of the week replayed');
  t.match(out.stdout, /starting profile fitted from the history before the range/);
  for (const k of ['deliveryRatio', 'overspend', 'slotPacingError', 'earlyExhaustion', 'breakerTrips']) t.type(even[k], 'number', k);
  t.ok(even.deliveryRatio > 0.9 && even.deliveryRatio <= 1.0001, `delivery ${even.deliveryRatio}`);
  const traffic = parseTrafficCsv(readFileSync(csv, 'utf8'), csv);
  const stored = history().filter((r) => r.minuteMs >= today - 7 * dayMs).reduce((s, r) => s + r.decisions, 0);
  t.equal(even.thinning, Math.max(1, Math.ceil(stored / limits.backtestRequestsPerStrategyMax)), 'thinned only as far as the limit needs');
  t.equal(traffic.requests.reduce((s, r) => s + r, 0), Math.floor(stored / even.thinning), 'the traffic file holds every stored decision (thinned by k)');

  // The printed simulate command for EVEN, run as it is printed.
  const cmd = out.stdout.split('\n').find((l) => l.trim().startsWith('npm run simulate -- --strategy EVEN'));
  t.ok(cmd, 'a replay command for EVEN');
  t.match(cmd, / --profile \S+traffic\.csv\.profile\.json /, 'with the starting profile');
  const args = cmd!.trim().replace(/^npm run simulate -- /, '').split(' ');
  const sim = await run(process.execPath, [join(root, 'dist/src/sim/cli.js'), ...args], { cwd: root, maxBuffer: 1 << 24 });
  const report = JSON.parse(sim.stdout);
  const fromSim = summarize('EVEN', report.daily);
  const { campaignId: _c, from: _f, to: _t, thinning: _k, ...row } = even;
  t.same(row, fromSim, 'the EVEN row is the simulator run on the same traffic');
  t.equal(report.daily.length, 7);

  // The same through the admin API, on its piscina pool.
  const api = await post(pacer.adminUrl, `/v1/campaigns/${id}/backtest`, { from, to, strategies: ['EVEN'] }, auth);
  t.equal(api.status, 200);
  t.same(api.body.strategies[0], fromSim, 'POST /v1/campaigns/:id/backtest gives the same EVEN row');
  t.equal(api.body.requests, stored);
  t.equal(api.body.startingProfile, true);
  t.equal(api.body.thinning, even.thinning, 'the API states the same thinning');
});

t.test('a high-volume week is thinned; its EVEN row still equals the printed npm run simulate command', async (t) => {
  const csv = join(dir, 'high.csv');
  const out = await run(process.execPath, [join(root, 'dist/src/sim/backtest-cli.js'), '--campaign', highId, '--from', from, '--to', to, '--strategy', 'EVEN', '--traffic-out', csv], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env, PACER_DATA_DIR: dir },
    maxBuffer: 1 << 24,
  });
  t.comment(out.stdout.split('\n').slice(0, 7).join('\n'));
  const stored = history(highId, highScale).filter((r) => r.minuteMs >= today - 7 * dayMs).reduce((s, r) => s + r.decisions, 0);
  const k = Math.ceil(stored / limits.backtestRequestsPerStrategyMax);
  t.ok(k > 1, `${stored} recorded decisions need thinning (k = ${k})`);
  const even = out.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))[0];
  t.equal(even.thinning, k, 'the JSON line states k');
  t.match(out.stdout, new RegExp(`^thinning: ${k} \\(each simulated request stands for ${k} recorded ones`, 'm'), 'the table states k');
  const traffic = parseTrafficCsv(readFileSync(csv, 'utf8'), csv);
  t.equal(traffic.requests.reduce((s, r) => s + r, 0), Math.floor(stored / k), 'the traffic file is the thinned traffic');
  t.ok(even.deliveryRatio > 0.9 && even.deliveryRatio <= 1.0001, `delivery ${even.deliveryRatio}`);
  t.equal(even.overspend, 0, 'no day overspent');

  const cmd = out.stdout.split('\n').find((l) => l.trim().startsWith('npm run simulate -- --strategy EVEN'));
  t.ok(cmd, 'a replay command for EVEN');
  t.match(cmd, new RegExp(` --bid-micros ${2_000 * k} `), 'with the bid scaled by k');
  const args = cmd!.trim().replace(/^npm run simulate -- /, '').split(' ');
  const sim = await run(process.execPath, [join(root, 'dist/src/sim/cli.js'), ...args], { cwd: root, maxBuffer: 1 << 24 });
  const report = JSON.parse(sim.stdout);
  const { campaignId: _c, from: _f, to: _t, thinning: _k, ...row } = even;
  t.same(row, summarize('EVEN', report.daily), 'the thinned EVEN row is the simulator run on the thinned traffic');

  const api = await post(pacer.adminUrl, `/v1/campaigns/${highId}/backtest`, { from, to, strategies: ['EVEN'] }, auth);
  t.equal(api.status, 200);
  t.equal(api.body.thinning, k);
  t.equal(api.body.requests, stored);
  t.equal(api.body.simulatedRequests, Math.floor(stored / k));
  t.equal(api.body.simulatedBidMicros, 2_000 * k);
  t.same(api.body.strategies[0], row, 'the API gives the same thinned EVEN row');
});

t.test('the API refuses bad input with coded errors and says when there is no history', async (t) => {
  const bt = (cid: string, body: unknown) => post(pacer.adminUrl, `/v1/campaigns/${cid}/backtest`, body, auth);
  t.equal((await bt(id, { from: '2026-02-30', to })).body.error.code, 'INVALID_FIELD', 'an impossible date');
  t.equal((await bt(id, { from: to, to: from })).body.error.code, 'INVALID_FIELD', 'from after to');
  t.equal((await bt(id, { from: '2025-01-01', to })).body.error.code, 'RANGE_TOO_LARGE');
  const tomorrow = new Date(today + dayMs).toISOString().slice(0, 10);
  t.equal((await bt(id, { from: tomorrow, to: tomorrow })).body.error.code, 'INVALID_FIELD', 'a day after today');
  const unknown = await bt(id, { from, to, strategies: ['EVEN', 'GREEDY'] });
  t.equal(unknown.status, 400);
  t.equal(unknown.body.error.code, 'UNKNOWN_STRATEGY');
  t.equal((await bt(id, { from, to, extra: 1 })).body.error.code, 'UNKNOWN_FIELD');
  t.equal((await bt(id, { to })).body.error.code, 'MISSING_FIELD');
  t.equal((await bt(id, { from, to, thinning: 0 })).body.error.code, 'INVALID_FIELD', 'a thinning below 1');
  t.equal((await bt(id, { from, to, thinning: 2.5 })).body.error.code, 'INVALID_FIELD', 'a fractional thinning');
  const deep = await bt(id, { from: { a: [1, 2, 3] }, to });
  t.equal(deep.body.error.code, 'INVALID_FIELD', 'an object for a date');
  t.match(deep.body.error.message, /got an object\)/, 'described by its type, not serialised');
  const missing = await bt('bt-nope', { from, to });
  t.equal(missing.status, 404);
  t.equal(missing.body.error.code, 'UNKNOWN_CAMPAIGN');
  const none = await bt('bt-empty', { from, to });
  t.equal(none.status, 404);
  t.equal(none.body.error.code, 'NO_HISTORY');
});
