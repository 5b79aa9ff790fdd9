-- Campaigns: one send of a template, or of A/B variants, to the members of segments.

CREATE TABLE campaigns (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    description     TEXT    NOT NULL DEFAULT '',
    definition      TEXT    NOT NULL,            -- nudge_core::campaign::CampaignDefinition
    status          TEXT    NOT NULL,            -- nudge_core::campaign::CampaignStatus
    schedule        TEXT,                        -- nudge_core::campaign::Schedule, once sent
    -- Each variant's [template id, version], fixed when sending starts (JSON list).
    versions        TEXT,
    start_at        INTEGER,
    snapshot_done   INTEGER NOT NULL DEFAULT 0,
    snapshot_cursor INTEGER NOT NULL DEFAULT 0,
    test_ends_at    INTEGER,
    winner          INTEGER,
    decision        TEXT,                        -- how the winner was chosen (JSON)
    -- Recipients in the snapshot, and what became of them so far.
    audience        INTEGER NOT NULL DEFAULT 0,
    held_out        INTEGER NOT NULL DEFAULT 0,
    queued          INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    completed_at    INTEGER
);

-- The audience snapshot: one row per recipient, taken when sending starts.
-- variant NULL: the remainder, waiting for the test's winner.
-- state: pending (its message not queued yet), queued, skipped (reason), held_out.
CREATE TABLE campaign_recipients (
    campaign_id INTEGER NOT NULL,
    contact_id  INTEGER NOT NULL,
    variant     INTEGER,
    state       TEXT    NOT NULL,
    due_at      INTEGER,
    message_id  INTEGER,
    reason      TEXT,
    PRIMARY KEY (campaign_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, state, due_at)
    WHERE state = 'pending';

-- Per campaign and variant: recipients, sent, delivered, opened (unique and total), ...
-- (nudge_core::protocol::CampaignCounter), kept as messages change.
CREATE TABLE campaign_stats (
    campaign_id INTEGER NOT NULL,
    variant     INTEGER NOT NULL,
    counter     TEXT    NOT NULL,
    value       REAL    NOT NULL,
    PRIMARY KEY (campaign_id, variant, counter)
) WITHOUT ROWID;

-- What queued a message, continued: the campaign and variant.
ALTER TABLE messages ADD COLUMN origin_campaign_id INTEGER;
ALTER TABLE messages ADD COLUMN origin_variant INTEGER;
-- The first open and click of a message (unique opens and clicks are counted once).
ALTER TABLE messages ADD COLUMN first_opened_at INTEGER;
ALTER TABLE messages ADD COLUMN first_clicked_at INTEGER;
