import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Strategy } from '../../shards/types.js';
import { type SimOptions, type SimReport, simulate } from './run.js';
import { parseTrafficCsv } from './traffic.js';

/**
 * One simulator run as a piscina task: src/sim/report.ts runs its dozens of independent runs on a
 * pool of worker threads, one per core. Runs share nothing, so a task pool (not an actor) fits.
 */
export interface SimJob {
  root: string;
  file: string;
  strategy: Strategy;
  seed: number;
  days: number;
  options: Partial<SimOptions>;
}

export default async function runJob(job: SimJob): Promise<{ report: SimReport; seconds: number }> {
  const traffic = parseTrafficCsv(readFileSync(join(job.root, 'bench', 'traffic', job.file), 'utf8'), `bench/traffic/${job.file}`);
  const started = process.hrtime.bigint();
  const report = await simulate({ ...job.options, traffic, strategy: job.strategy, seed: job.seed, days: job.days });
  return { report, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
