-- Per-campaign, per-minute history, written by the admin thread in batches from the shards'
-- summaries (never on the hot path), and the breaker's transitions. Retention:
-- config.historyRetentionDays, enforced by the admin's hourly sweep.

CREATE TABLE campaign_minutes (
  campaign_id            text NOT NULL,
  minute                 timestamptz NOT NULL,
  -- The campaign's local day the minute belongs to.
  day                    date NOT NULL,
  decisions              bigint NOT NULL DEFAULT 0,
  allowed                bigint NOT NULL DEFAULT 0,
  denied                 bigint NOT NULL DEFAULT 0,
  -- Wins: spend events applied (duplicates excluded).
  spend_events           bigint NOT NULL DEFAULT 0,
  settled_micros         bigint NOT NULL DEFAULT 0,
  duplicate_events       bigint NOT NULL DEFAULT 0,
  unmatched_events       bigint NOT NULL DEFAULT 0,
  expired_reservations   bigint NOT NULL DEFAULT 0,
  -- State at the end of the minute.
  budget_micros          bigint NOT NULL,
  throttle               double precision NOT NULL,
  breaker_state          text NOT NULL,
  -- The primary key serves the one query pattern: one campaign over a time range.
  PRIMARY KEY (campaign_id, minute)
);
-- Retention deletes by time across campaigns; rows arrive in time order, so BRIN fits.
CREATE INDEX campaign_minutes_minute ON campaign_minutes USING brin (minute);

-- Denied decisions by reason, one row per reason that occurred in the minute (reasons may be
-- added to the wire format without a migration).
CREATE TABLE campaign_minute_denials (
  campaign_id  text NOT NULL,
  minute       timestamptz NOT NULL,
  reason       text NOT NULL,
  decisions    bigint NOT NULL,
  PRIMARY KEY (campaign_id, minute, reason)
);
CREATE INDEX campaign_minute_denials_minute ON campaign_minute_denials USING brin (minute);

CREATE TABLE breaker_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id  text NOT NULL,
  at           timestamptz NOT NULL,
  from_state   text NOT NULL,
  to_state     text NOT NULL,
  reason       text NOT NULL
);
CREATE INDEX breaker_events_campaign_at ON breaker_events (campaign_id, at);
CREATE INDEX breaker_events_at ON breaker_events USING brin (at);
