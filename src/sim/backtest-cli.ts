import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { limits } from '../../shards/limits.js';
import { type Strategy } from '../../shards/types.js';
import { openAdminStores } from '../admin/open.js';
import { ConfigError, loadConfig } from '../config.js';
import { backtestReadFromMs, BacktestInputError, type BacktestJob, type BacktestRow, backtestSetup, backtestTable, backtestTaskUrl, parseBacktestRange, parseStrategies, runBacktest, simulateCommand, thinningNote } from './backtest.js';
import { timelineCsv } from './traffic.js';

/**
 * `npm run backtest -- --campaign ID --from DAY --to DAY [--strategy S ...]`: replays a campaign's
 * stored minute history through the simulator under each strategy (src/sim/backtest.ts). Reads the
 * store the server is configured with (the same PACER_* variables: PostgreSQL, or the embedded
 * database in PACER_DATA_DIR, which only one process may open at a time: stop the server first or
 * use POST /v1/campaigns/:id/backtest).
 */
const usage = `usage: npm run backtest -- --campaign ID --from YYYY-MM-DD --to YYYY-MM-DD [options]

  --campaign ID         the campaign whose stored minute history is replayed
  --from DAY, --to DAY  local dates (the campaign's time zone), at most backtestDaysMax days
  --strategy S          EVEN | ASAP | FRONT_LOADED | ADAPTIVE | AHEAD | CUSTOM; repeat or
                        comma-separate for several (default: all of them)
  --seed N              seed of the replayed arrivals and of the shard's generator (default 1)
  --thinning K          replay each K recorded requests as one (bid K times as large), exactly
                        K: without it the backtest thins above backtestRequestsPerStrategyMax
                        recorded requests on its own; --thinning 1 replays every request
                        however many (slow), to measure what thinning costs
  --traffic-out FILE    also write the replayed traffic as "time,requests" CSV (and the starting
                        profile as FILE.profile.json), and print for each strategy the
                        npm run simulate command that reproduces its row
  --help

Reads the store of PACER_STORE / PACER_DATABASE_URL / PACER_DATA_DIR, as the server does.
Prints a table, then one JSON line per strategy.
`;

class UsageError extends Error {}

interface Args {
  campaign: string;
  from: string;
  to: string;
  strategies: Strategy[];
  seed: number;
  trafficOut: string | null;
  thinning: number | null;
}

function parseArgs(argv: string[]): Args {
  let campaign: string | null = null;
  let from: string | null = null;
  let to: string | null = null;
  const asked: string[] = [];
  let seed = 1;
  let trafficOut: string | null = null;
  let thinning: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.includes('=') ? (flag.split(/=(.*)/s, 2) as [string, string]) : [flag, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--campaign': campaign = value(); break;
      case '--from': from = value(); break;
      case '--to': to = value(); break;
      case '--strategy': asked.push(...value().split(',')); break;
      case '--seed': {
        const n = Number(value());
        if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 32 - 1) throw new UsageError('--seed needs an integer from 0 to 4294967295');
        seed = n;
        break;
      }
      case '--traffic-out': trafficOut = value(); break;
      case '--thinning': {
        const n = Number(value());
        if (!Number.isSafeInteger(n) || n < 1 || n > limits.backtestThinningMax) throw new UsageError(`--thinning needs an integer from 1 to ${limits.backtestThinningMax}`);
        thinning = n;
        break;
      }
      case '--help': case '-h': process.stdout.write(usage); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  if (campaign === null || from === null || to === null) throw new UsageError('--campaign, --from and --to are required');
  let list: Strategy[];
  try {
    list = parseStrategies(asked.length === 0 ? undefined : asked);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { campaign, from, to, strategies: list, seed, trafficOut, thinning };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (config.store === 'memory') {
    process.stderr.write('PACER_STORE=memory keeps no history outside the server process: use POST /v1/campaigns/:id/backtest\n');
    return 2;
  }
  const stores = await openAdminStores(config);
  let pool: Piscina<BacktestJob, BacktestRow> | null = null;
  try {
    const record = (await stores.config.loadCampaigns()).find((r) => r.config.id === args.campaign);
    if (record === undefined) {
      process.stderr.write(`UNKNOWN_CAMPAIGN: no campaign ${JSON.stringify(args.campaign)} in the ${stores.config.kind} store\n`);
      return 1;
    }
    let range;
    try {
      range = parseBacktestRange(args.from, args.to, record.config.timezone, Date.now());
    } catch (err) {
      if (err instanceof BacktestInputError) {
        process.stderr.write(`${err.code}: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    const started = process.hrtime.bigint();
    const fromMs = backtestReadFromMs(range, config.profileHalfLifeDays, config.historyRetentionDays, Date.now());
    const { minutes } = await stores.config.history(record.config.id, fromMs, range.endMs);
    const setup = backtestSetup(record.config, minutes, range, args.seed, config.profileHalfLifeDays, args.thinning ?? 1, args.thinning !== null);
    if (setup === null) {
      process.stderr.write(`NO_HISTORY: campaign ${record.config.id} has no recorded decisions from ${range.fromKey} to ${range.toKey} (${record.config.timezone})\n`);
      return 1;
    }
    pool = new Piscina<BacktestJob, BacktestRow>({ filename: backtestTaskUrl, minThreads: 0, maxThreads: Math.max(1, Math.min(args.strategies.length, availableParallelism())) });
    const rows = await runBacktest(setup, args.strategies, (job) => pool!.run(job));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stdout.write(
      `backtest of ${record.config.id}: ${range.fromKey} to ${range.toKey} (${record.config.timezone}), ${setup.requests.toLocaleString('en-US')} requests ` +
        `in ${setup.minutesWithHistory.toLocaleString('en-US')} stored minutes, bid ${setup.recordedBidMicros} micros, win rate ${setup.options.winRate}, ` +
        `daily budget ${record.config.dailyBudgetMicros} micros; ` +
        `${setup.options.initialProfile ? 'starting profile fitted from the history before the range' : 'no history before the range: starts without a profile'}; ${seconds.toFixed(1)} s\n` +
        `${thinningNote(setup)}\n\n${backtestTable(rows)}\n\n`,
    );
    for (const r of rows) process.stdout.write(`${JSON.stringify({ campaignId: record.config.id, from: range.fromKey, to: range.toKey, thinning: setup.thinning, ...r })}\n`);
    if (args.trafficOut !== null) {
      writeFileSync(args.trafficOut, timelineCsv(setup.options.traffic!));
      const profileOut = setup.options.initialProfile ? `${args.trafficOut}.profile.json` : null;
      if (profileOut !== null) writeFileSync(profileOut, `${JSON.stringify(setup.options.initialProfile)}\n`);
      process.stdout.write(`\ntraffic written to ${args.trafficOut}${profileOut === null ? '' : `, the starting profile to ${profileOut}`}; each row replays with:\n`);
      for (const s of args.strategies) process.stdout.write(`  ${simulateCommand(setup, s, args.trafficOut, profileOut) ?? `(${s}: the campaign's schedule is not one daily window; the simulator's --window cannot express it)`}\n`);
    }
    return 0;
  } finally {
    await pool?.destroy();
    await stores.config.close().catch(() => undefined);
    await stores.sql?.close().catch(() => undefined);
  }
}

process.exitCode = await main();

