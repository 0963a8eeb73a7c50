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
  // Field by field, not a spread: a shard's configuration (shards/intern.ts, CompactConfig) reads
  // most of its settings through getters, which a spread does not copy.
  const shadow = config.shadow ?? null;
  return {
    id: config.id,
    name: config.name,
    status: config.status,
    dailyBudgetMicros: config.dailyBudgetMicros,
    timezone: config.timezone,
    strategy: shadow === null ? config.strategy : shadow.strategy,
    frontLoadedShare: shadow === null ? config.frontLoadedShare : shadow.frontLoadedShare,
    aheadPercent: shadow === null ? config.aheadPercent : shadow.aheadPercent,
    hourlyWeights: shadow === null ? config.hourlyWeights : shadow.hourlyWeights,
    schedule: config.schedule,
    startAtMs: config.startAtMs,
    endAtMs: config.endAtMs,
    lifetimeBudgetMicros: config.lifetimeBudgetMicros,
    catchUpMaxRatio: config.catchUpMaxRatio,
    velocityCapMultiple: config.velocityCapMultiple,
    breaker: config.breaker,
    version: config.version,
    archived: config.archived ?? false,
  };
}
