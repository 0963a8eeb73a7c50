-- Shadow mode and A/B (shards/pacing/shadow.ts, docs/pacing.md "Shadow mode and A/B"): the minute
-- history of a campaign that runs a shadow strategy (or is in mode SHADOW) carries the shadow's
-- counters beside the real ones, so the day report shows both side by side. NULL: the campaign had
-- no shadow in that minute. The shadow's configuration itself lives in campaigns.config (jsonb)
-- and needs no column.
ALTER TABLE campaign_minutes ADD COLUMN shadow_strategy text;
ALTER TABLE campaign_minutes ADD COLUMN shadow_decisions bigint;
ALTER TABLE campaign_minutes ADD COLUMN shadow_allowed bigint;
-- Would-be spend: wins of bids the shadow allowed, plus the estimated spend of bids only it would
-- have made (shadow_estimated_micros, part of shadow_settled_micros).
ALTER TABLE campaign_minutes ADD COLUMN shadow_settled_micros bigint;
ALTER TABLE campaign_minutes ADD COLUMN shadow_estimated_micros bigint;
-- The shadow's denials by reason, {"PACED": 12, …}.
ALTER TABLE campaign_minutes ADD COLUMN shadow_denied_by_reason jsonb;
