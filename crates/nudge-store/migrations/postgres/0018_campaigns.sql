-- Campaigns: one send of a template, or of A/B variants, to the members of segments.

CREATE TABLE campaigns (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    description     TEXT    NOT NULL DEFAULT '',
    definition      JSONB   NOT NULL,            -- nudge_core::campaign::CampaignDefinition
    status          TEXT    NOT NULL,            -- nudge_core::campaign::CampaignStatus
    schedule        JSONB,                        -- nudge_core::campaign::Schedule, once sent
    -- Each variant's [template id, version], fixed when sending starts (JSON list).
    versions        JSONB,
    start_at        BIGINT,
    snapshot_done   BOOLEAN NOT NULL DEFAULT FALSE,
    snapshot_cursor BIGINT NOT NULL DEFAULT 0,
    test_ends_at    BIGINT,
    winner          BIGINT,
    decision        JSONB,                        -- how the winner was chosen (JSON)
    -- Recipients in the snapshot, and what became of them so far.
    audience        BIGINT NOT NULL DEFAULT 0,
    held_out        BIGINT NOT NULL DEFAULT 0,
    queued          BIGINT NOT NULL DEFAULT 0,
    skipped         BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    completed_at    BIGINT
);

-- The audience snapshot: one row per recipient, taken when sending starts.
-- variant NULL: the remainder, waiting for the test's winner.
-- state: pending (its message not queued yet), queued, skipped (reason), held_out.
CREATE TABLE campaign_recipients (
    campaign_id BIGINT NOT NULL,
    contact_id  BIGINT NOT NULL,
    variant     BIGINT,
    state       TEXT    NOT NULL,
    due_at      BIGINT,
    message_id  BIGINT,
    reason      TEXT,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, state, due_at)
    WHERE state = 'pending';

-- Per campaign and variant: recipients, sent, delivered, opened (unique and total), ...
-- (nudge_core::protocol::CampaignCounter), kept as messages change.
CREATE TABLE campaign_stats (
    campaign_id BIGINT NOT NULL,
    variant     BIGINT NOT NULL,
    counter     TEXT    NOT NULL,
    value       DOUBLE PRECISION   NOT NULL,
    PRIMARY KEY (campaign_id, variant, counter)
);

-- What queued a message, continued: the campaign and variant.
ALTER TABLE messages ADD COLUMN origin_campaign_id BIGINT;
ALTER TABLE messages ADD COLUMN origin_variant BIGINT;
-- The first open and click of a message (unique opens and clicks are counted once).
ALTER TABLE messages ADD COLUMN first_opened_at BIGINT;
ALTER TABLE messages ADD COLUMN first_clicked_at BIGINT;
