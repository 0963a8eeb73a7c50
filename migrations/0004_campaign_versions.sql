-- Safe edits (docs/api.md, admin section). campaigns.version (0001) becomes the entity tag of a
-- campaign: every write is a compare-and-set on it (UPDATE … WHERE version = previous), so two
-- admins, or two pacers sharing this database, can never overwrite each other's edit.

-- DELETE archives rather than deletes: history and the audit trail stay, restore brings it back.
ALTER TABLE campaigns ADD COLUMN archived_at timestamptz;

-- Budget operations (POST /v1/campaigns/:id/budget) carry the operator's reason into the audit.
ALTER TABLE budget_changes ADD COLUMN reason text;

-- The audit trail is paged per campaign in insertion order (the cursor is the row id).
CREATE INDEX budget_changes_campaign_id ON budget_changes (campaign_id, id);
