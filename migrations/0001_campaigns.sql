-- Campaign configuration and its audit trail. The admin thread is the only writer; the shards
-- receive configuration as messages and never read these tables.

CREATE TABLE campaigns (
  id          text PRIMARY KEY,
  -- The full, validated CampaignConfig (money as integer micros), as the shards receive it.
  config      jsonb NOT NULL,
  -- Incremented on every change; shards ignore configurations older than the one they run.
  version     integer NOT NULL CHECK (version > 0),
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);

-- Every budget change: when, the old and the new value, who made it (X-Pacer-Actor).
-- Creation is recorded too, with old_micros NULL.
CREATE TABLE budget_changes (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id  text NOT NULL,
  changed_at   timestamptz NOT NULL,
  -- 'daily' or 'lifetime'
  budget       text NOT NULL CHECK (budget IN ('daily', 'lifetime')),
  old_micros   bigint CHECK (old_micros >= 0),
  new_micros   bigint CHECK (new_micros >= 0),
  actor        text NOT NULL,
  version      integer NOT NULL
);
-- The audit trail is read per campaign, newest first.
CREATE INDEX budget_changes_campaign_at ON budget_changes (campaign_id, changed_at);
