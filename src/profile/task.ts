import { type FittedProfile } from '../../shards/pacing/profile.js';
import { fitProfile, type MinuteTraffic } from './fit.js';

/** One profile fit as a piscina task (src/profile/service.ts runs it off the admin thread's loop). */
export interface FitJob {
  rows: MinuteTraffic[];
  timeZone: string;
  nowMs: number;
  halfLifeDays: number;
}

export default function fit(job: FitJob): (FittedProfile & { hoursUsed: number }) | null {
  return fitProfile(job.rows, job.timeZone, job.nowMs, job.halfLifeDays);
}
