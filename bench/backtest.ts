import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openAdminStores } from '../src/admin/open.js';
import { loadConfig } from '../src/config.js';
import { parseCampaign } from '../src/model/campaign.js';
import type { MinuteRow } from '../src/store/config-store.js';
import { root } from './lib/process.js';

/**
 * npm run bench:backtest [-- --per-minute N --days D --strategy S,... --thinning K]
 *
 * How long `npm run backtest` takes over a week of stored minute history: stores D days (default
 * 7) of a campaign's minute history in a fresh embedded database (a diurnal shape averaging N
 * decisions a minute, default 20, a tenth of them won at 1,450 micros), then runs the backtest
 * command on it for every strategy (or those given) and prints its output and the wall time of the
 * whole command (reading the history included). --thinning K is passed to the backtest (each K
 * recorded requests replayed as one, exactly K; 1 replays every request above the limit too: what
 * thinning costs in accuracy).
 * Last line: one JSON object (thinning: the factor the backtest used).
 */
const { values } = parseArgs({
  options: {
    'per-minute': { type: 'string', default: '20' },
    days: { type: 'string', default: '7' },
    strategy: { type: 'string' },
    thinning: { type: 'string' },
  },
});
const perMinute = Number(values['per-minute']);
const days = Number(values.days);
const dir = mkdtempSync(join(tmpdir(), 'pacer-bench-backtest-'));
const env = { PACER_STORE: 'embedded', PACER_DATA_DIR: dir };
const id = 'bench-backtest';
const dayMs = 86_400_000;
const today = Math.floor(Date.now() / dayMs) * dayMs;
try {
  const stores = await openAdminStores(loadConfig(env));
  const config = parseCampaign({ id, dailyBudgetMicros: Math.round(perMinute * 1440 * 0.1 * 1_450 * 0.5), timezone: 'UTC', strategy: 'EVEN' }, 1);
  const at = new Date().toISOString();
  await stores.config.saveCampaign({ config, createdAt: at, updatedAt: at, archivedAt: null }, null, 'bench');
  const rows: MinuteRow[] = [];
  let x = 11;
  for (let m = today - days * dayMs; m < today; m += 60_000) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const h = new Date(m).getUTCHours() + new Date(m).getUTCMinutes() / 60;
    const level = 0.25 + 1.5 * Math.exp(-((h - 14) ** 2) / 20);
    const decisions = Math.round(perMinute * level * (0.8 + 0.4 * (x / 2 ** 31)));
    const allowed = Math.round(decisions / 2);
    const wins = Math.round(allowed / 5);
    rows.push({
      campaignId: id, minuteMs: m, day: new Date(m).toISOString().slice(0, 10), decisions, allowed, denied: decisions - allowed, deniedByReason: {},
      spendEvents: wins, settledMicros: wins * 1_450, duplicateEvents: 0, unmatchedEvents: 0, expiredReservations: 0, budgetMicros: config.dailyBudgetMicros, throttle: 0.5, breakerState: 'CLOSED',
    });
  }
  await stores.config.writeHistory(rows, []);
  await stores.sql?.close();
  const from = new Date(today - days * dayMs).toISOString().slice(0, 10);
  const to = new Date(today - dayMs).toISOString().slice(0, 10);
  const args = [join(root, 'dist/src/sim/backtest-cli.js'), '--campaign', id, '--from', from, '--to', to, ...(values.strategy ? ['--strategy', values.strategy] : []), ...(values.thinning ? ['--thinning', values.thinning] : [])];
  const load = loadavg()[0]!;
  const started = process.hrtime.bigint();
  const out = execFileSync(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(out);
  const requests = rows.reduce((s, r) => s + r.decisions, 0);
  const thinning = Number(/^thinning: (\d+)/m.exec(out)?.[1] ?? NaN);
  process.stdout.write(`${JSON.stringify({ days, requests, thinning, strategies: out.split('\n').filter((l) => l.startsWith('{')).length, seconds: Math.round(seconds * 10) / 10, loadAverage: load })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
