import { Campaign, type CampaignHooks } from '../../shards/campaign.js';
import type { BreakerTransition } from '../../shards/pacing/breaker.js';
import { GlobalProfile } from '../../shards/pacing/profile.js';
import { sfc32 } from '../../shards/rng.js';
import type { CampaignConfig } from '../../shards/types.js';
import { parseCampaign } from '../../src/model/campaign.js';

/** A campaign configuration as the admin API would produce it from this body. */
export function config(body: Record<string, unknown> = {}, version = 1): CampaignConfig {
  return parseCampaign({ id: 'c1', dailyBudgetMicros: 1_000_000, ...body }, version);
}

export interface Harness {
  campaign: Campaign;
  transitions: BreakerTransition[];
  rollovers: { day: string; settled: number; budget: number }[];
  random: () => number;
}

export function harness(cfg: CampaignConfig, nowMs: number, globalProfile = new GlobalProfile(), seed = 7): Harness {
  const transitions: BreakerTransition[] = [];
  const rollovers: Harness['rollovers'] = [];
  const hooks: CampaignHooks = {
    globalProfile,
    onBreaker: (_c, t) => transitions.push(t),
    onRollover: (_c, day, settled, budget) => rollovers.push({ day, settled, budget }),
  };
  return { campaign: new Campaign(cfg, nowMs, hooks), transitions, rollovers, random: sfc32(seed) };
}

export const always = (): number => 0;
export const iso = (s: string): number => Date.parse(s);
