import type { CampaignConfig } from '../types.js';

/*
 * What the admin thread needs of shadow mode (the reports ask whether a campaign has a shadow and
 * how it is configured), apart from shards/pacing/shadow.ts, whose actor imports the whole
 * campaign: through the reports, the admin thread loaded the campaign actor, its breaker and its
 * controller without ever running them.
 */

/** Whether a configuration asks for a shadow: a shadow strategy, or SHADOW mode. */
export function wantsShadow(config: CampaignConfig): boolean {
  return config.mode === 'SHADOW' || (config.shadow !== undefined && config.shadow !== null);
}

/** The configuration the shadow paces by: the campaign's, with the shadow's strategy, always enforcing. */
export function shadowConfigOf(config: CampaignConfig): CampaignConfig {
  const { mode: _m, shadow, ...rest } = config;
  if (shadow === undefined || shadow === null) return rest;
  return {
    ...rest,
    strategy: shadow.strategy,
    frontLoadedShare: shadow.frontLoadedShare,
    aheadPercent: shadow.aheadPercent,
    hourlyWeights: shadow.hourlyWeights,
  };
}
