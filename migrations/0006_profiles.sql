-- Fitted traffic profiles (src/profile/fit.ts): one row per campaign, and the shard-wide fallback
-- under the campaign_id '#global' ('#' is outside the campaign ID alphabet). Written by the admin
-- thread after each fit (each campaign's local midnight, on demand); read at startup and sent to
-- the shards, so a restart forgets nothing learned.
CREATE TABLE campaign_profiles (
  campaign_id     text PRIMARY KEY,
  fitted_at       timestamptz NOT NULL,
  half_life_days  double precision NOT NULL,
  -- Opportunities per ms by local weekday × 24 + hour (weekday 0 = Sunday), null where not learned:
  -- a JSON array of 168 numbers or nulls.
  density         jsonb NOT NULL,
  -- Local hours of history that went into the fit (for the API and operators).
  hours_used      integer NOT NULL
);
