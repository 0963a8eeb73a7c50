-- Real-time counters when they live in SQL (the embedded store, PACER_STORE=embedded) rather than
-- in Redis. The Redis store keeps the same facts under pacer:{campaignId}:… keys (docs/storage.md).

-- Settled spend per campaign and local day. Kept (one small row per campaign and day): lifetime
-- budgets sum the days of their flight.
CREATE TABLE counter_days (
  campaign_id     text NOT NULL,
  day             date NOT NULL,
  settled_micros  bigint NOT NULL CHECK (settled_micros >= 0),
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (campaign_id, day)
);

-- Event IDs seen, with the batch that applied them: a batch retried under its ID gets the same
-- answer, any other batch finds the event a duplicate. Rows older than the dedupe window
-- (config.counterTtlSeconds, at least 48 hours) are deleted by the admin's retention sweep.
CREATE TABLE counter_events (
  campaign_id  text NOT NULL,
  event_id     text NOT NULL,
  batch_id     text NOT NULL,
  seen_at      timestamptz NOT NULL,
  PRIMARY KEY (campaign_id, event_id)
);
-- Only the retention sweep reads by time; rows arrive in time order, so BRIN is enough and tiny.
CREATE INDEX counter_events_seen_at ON counter_events USING brin (seen_at);

-- Live reservations (money in flight), so a restart does not forget them. Expired rows are
-- ignored on load and deleted by the retention sweep.
CREATE TABLE counter_reservations (
  campaign_id    text NOT NULL,
  request_id     text NOT NULL,
  amount_micros  bigint NOT NULL CHECK (amount_micros >= 0),
  expires_at_ms  bigint NOT NULL,
  PRIMARY KEY (campaign_id, request_id)
);
