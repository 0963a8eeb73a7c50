import { type BacktestJob, type BacktestRow, summarize } from './backtest.js';
import { simulate } from './run.js';

/** One strategy of a backtest as a piscina task: the simulator over the replayed history. */
export default async function runBacktestJob(job: BacktestJob): Promise<BacktestRow> {
  const report = await simulate({ ...job.options, strategy: job.strategy });
  return summarize(job.strategy, report.detail.daily);
}
