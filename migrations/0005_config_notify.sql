-- Configuration everywhere (ARCHITECTURE.md, "Configuration reaches every instance"). Every stored
-- change to a campaign, and every breaker reset, becomes a row of config_changes; inserting that
-- row sends a NOTIFY on the channel pacer_config, which PostgreSQL delivers to every listening
-- pacer when (and only when) the transaction commits. An instance that was not listening reads the
-- rows it missed (by their time, with an overlap) when it reconnects.
CREATE TABLE config_changes (
  seq          bigserial PRIMARY KEY,
  campaign_id  text NOT NULL,
  -- 'config': the campaign row changed (created, edited, budget, archive, restore);
  -- 'breakerReset': an operator reset its breaker (POST /v1/campaigns/:id/breaker/reset).
  kind         text NOT NULL CHECK (kind IN ('config', 'breakerReset')),
  version      integer,
  -- The instance that made the change (its instance ID), '' when the database made it.
  origin       text NOT NULL DEFAULT '',
  at           timestamptz NOT NULL DEFAULT now()
);

-- Catch-up after a reconnect reads by time; the retention sweep deletes by time.
CREATE INDEX config_changes_at ON config_changes (at);

CREATE FUNCTION pacer_campaign_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO config_changes (campaign_id, kind, version) VALUES (NEW.id, 'config', NEW.version);
  RETURN NULL;
END
$$;

-- AFTER … FOR EACH ROW fires only for rows really written: a compare-and-set that lost
-- (ON CONFLICT … WHERE version = previous matched nothing) records no change.
CREATE TRIGGER campaigns_changed AFTER INSERT OR UPDATE ON campaigns
  FOR EACH ROW EXECUTE FUNCTION pacer_campaign_changed();

CREATE FUNCTION pacer_config_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pacer_config', json_build_object(
    'seq', NEW.seq, 'kind', NEW.kind, 'campaignId', NEW.campaign_id, 'version', NEW.version,
    'origin', NEW.origin, 'atMs', floor(extract(epoch FROM NEW.at) * 1000))::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER config_changes_notify AFTER INSERT ON config_changes
  FOR EACH ROW EXECUTE FUNCTION pacer_config_notify();
