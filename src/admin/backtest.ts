import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { limits } from '../../shards/limits.js';
import { ApiError } from '../http/errors.js';
import type { CampaignRecord } from '../model/campaign.js';
import type { BacktestJob, BacktestRow } from '../sim/backtest.js';
import type { ConfigStore } from './registry.js';

const bodyFields = ['from', 'to', 'strategies', 'seed', 'thinning'];

/**
 * The simulator (src/sim/backtest.ts and the shard code it runs), loaded on the first backtest:
 * the admin thread otherwise never runs it, and its modules' source and compiled code would stay
 * in the thread's heap from startup (about 90 KB of source for src/sim alone).
 */
let simulator: Promise<typeof import('../sim/backtest.js')> | null = null;

/**
 * POST /v1/campaigns/:id/backtest (docs/api.md): the campaign's stored minute history replayed
 * through the simulator under each strategy (src/sim/backtest.ts), one piscina task per strategy,
 * off the admin thread's event loop; answered when every strategy has run. At most
 * limits.backtestsInFlightMax backtests at once.
 */
export class BacktestService {
  private pool: Piscina<BacktestJob, BacktestRow> | null = null;
  private inFlight = 0;

  constructor(
    private readonly store: ConfigStore,
    /** PACER_PROFILE_HALF_LIFE_DAYS and PACER_HISTORY_RETENTION_DAYS: the starting profile is fitted as the admin fits. */
    private readonly options: { halfLifeDays: number; historyRetentionDays: number },
  ) {}

  async run(record: CampaignRecord, body: unknown, nowMs: number = Date.now()): Promise<Record<string, unknown>> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('INVALID_BODY', 'the body must be a JSON object {from, to, strategies?, seed?, thinning?}');
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) if (!bodyFields.includes(k)) throw new ApiError('UNKNOWN_FIELD', `unknown field ${JSON.stringify(k.slice(0, 40))}: ${bodyFields.join(', ')}`);
    if (b.from === undefined || b.to === undefined) throw new ApiError('MISSING_FIELD', 'from and to (local dates YYYY-MM-DD) are required');
    const seed = b.seed ?? 1;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) throw new ApiError('INVALID_FIELD', 'seed must be an integer from 0 to 4294967295');
    const thinning = b.thinning ?? 1;
    if (typeof thinning !== 'number' || !Number.isSafeInteger(thinning) || thinning < 1 || thinning > limits.backtestThinningMax) {
      throw new ApiError('INVALID_FIELD', `thinning must be an integer from 1 to backtestThinningMax = ${limits.backtestThinningMax}`);
    }
    const { timezone, id } = record.config;
    const { backtestReadFromMs, BacktestInputError, backtestSetup, backtestTaskUrl, parseBacktestRange, parseStrategies, runBacktest } = await (simulator ??= import('../sim/backtest.js'));
    let range;
    let list;
    try {
      range = parseBacktestRange(b.from, b.to, timezone, nowMs);
      list = parseStrategies(b.strategies);
    } catch (err) {
      if (err instanceof BacktestInputError) throw new ApiError(err.code, err.message);
      throw err;
    }
    if (this.inFlight >= limits.backtestsInFlightMax) throw new ApiError('OVERLOADED', `${this.inFlight} backtests are running (backtestsInFlightMax = ${limits.backtestsInFlightMax}): try again when one has finished`);
    this.inFlight++;
    try {
      const started = performance.now();
      const fromMs = backtestReadFromMs(range, this.options.halfLifeDays, this.options.historyRetentionDays, nowMs);
      const { minutes } = await this.store.history(id, fromMs, range.endMs);
      const setup = backtestSetup(record.config, minutes, range, seed, this.options.halfLifeDays, thinning);
      if (setup === null) throw new ApiError('NO_HISTORY', `campaign ${id} has no recorded decisions from ${range.fromKey} to ${range.toKey} (${timezone})`);
      // Half the cores at most: the shards and routers share them with the pool.
      this.pool ??= new Piscina<BacktestJob, BacktestRow>({ filename: backtestTaskUrl, minThreads: 0, maxThreads: Math.max(1, Math.floor(availableParallelism() / 2)), idleTimeout: 30_000 });
      const pool = this.pool;
      const rows = await runBacktest(setup, list, (job) => pool.run(job));
      return {
        campaignId: id,
        from: range.fromKey,
        to: range.toKey,
        timezone,
        seed,
        requests: setup.requests,
        minutesWithHistory: setup.minutesWithHistory,
        dailyBudgetMicros: record.config.dailyBudgetMicros,
        bidMicros: setup.recordedBidMicros,
        thinning: setup.thinning,
        simulatedRequests: setup.simulatedRequests,
        simulatedBidMicros: setup.options.bidMicros,
        winRate: setup.options.winRate,
        startingProfile: setup.options.initialProfile !== null && setup.options.initialProfile !== undefined,
        seconds: Math.round(performance.now() - started) / 1000,
        strategies: rows,
      };
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
    this.pool = null;
  }
}
